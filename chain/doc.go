// Package chain is the gateway's Ethereum access layer.
//
// With zero configuration the gateway runs an embedded, persistent dev
// chain (StartDev): a go-ethereum node in the gateway's process, driven by
// a simulated beacon client, chain id 1337, today's mainnet fork rules,
// the gateway's own key (generated in its data directory,
// LoadOrCreateKeyFile) and ten accounts of the well-known development
// mnemonic (DevAccounts, for wallets and tests: public keys, no role)
// funded at genesis, serving JSON-RPC over HTTP and WebSocket on one
// loopback port for wallets and tools.
//
// Against a real network the gateway dials a node (Dial) and signs with a
// key from a keystore file (LoadKeyFile).
//
// Either way, a Sender sends transactions: local nonces (many in flight),
// EIP-1559 fees with bump-and-replace of stuck transactions, retries of
// transient RPC failures, receipts awaited with N confirmations, reorgs
// reported (ReorgError). Deployments.DeployOnce deploys a contract once
// per chain and remembers its address; Info describes the chain for
// /.well-known/fhirgate.
package chain
