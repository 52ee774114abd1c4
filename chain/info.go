package chain

import (
	"context"
	"fmt"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
)

// Info describes the chain the gateway uses, for GET /.well-known/fhirgate
// and for wallets (see AddEthereumChain).
type Info struct {
	ChainID     uint64                    `json:"chainId"`
	ChainName   string                    `json:"chainName,omitempty"`
	RPCURL      string                    `json:"rpcUrl,omitempty"` // public JSON-RPC URL for wallets and verifiers
	GenesisHash common.Hash               `json:"genesisHash"`
	Dev         bool                      `json:"dev"` // the embedded dev chain (well-known keys!)
	Contracts   map[string]common.Address `json:"contracts"`
}

// DevChainName is the name wallets show for the embedded dev chain.
const DevChainName = "fhirgate dev chain"

// NewInfo reads chain id and genesis hash from c. publicRPCURL is the URL
// clients outside the gateway should use (not necessarily the one the
// gateway dialled, which may carry credentials).
func NewInfo(ctx context.Context, c *Client, publicRPCURL string, contracts map[string]common.Address) (Info, error) {
	id, err := withRetry(ctx, defaultRetry, c.ChainID)
	if err != nil {
		return Info{}, fmt.Errorf("chain: eth_chainId: %w", err)
	}
	g, err := withRetry(ctx, defaultRetry, func(ctx context.Context) (*types.Header, error) {
		return c.HeaderByNumber(ctx, common.Big0)
	})
	if err != nil {
		return Info{}, fmt.Errorf("chain: genesis header: %w", err)
	}
	return Info{ChainID: id.Uint64(), RPCURL: publicRPCURL, GenesisHash: g.Hash(), Contracts: copyContracts(contracts)}, nil
}

// Info describes the dev chain; RPCURL is its HTTP URL ("" without
// listener; behind a proxy or in a container, set the public URL).
func (d *DevChain) Info(contracts map[string]common.Address) Info {
	return Info{
		ChainID:     DevChainID,
		ChainName:   DevChainName,
		RPCURL:      d.httpURL,
		GenesisHash: d.genesisHash,
		Dev:         true,
		Contracts:   copyContracts(contracts),
	}
}

// AddressesOf returns the addresses of deployments, by name.
func AddressesOf(deps map[string]Deployment) map[string]common.Address {
	out := make(map[string]common.Address, len(deps))
	for n, d := range deps {
		out[n] = d.Address
	}
	return out
}

func copyContracts(m map[string]common.Address) map[string]common.Address {
	out := make(map[string]common.Address, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// AddEthereumChainParameter is the EIP-3085 wallet_addEthereumChain
// parameter for the chain, for a web page to offer the network to
// MetaMask.
type AddEthereumChainParameter struct {
	ChainID        string         `json:"chainId"` // 0x-hex
	ChainName      string         `json:"chainName"`
	NativeCurrency NativeCurrency `json:"nativeCurrency"`
	RPCURLs        []string       `json:"rpcUrls"`
}

// NativeCurrency is part of AddEthereumChainParameter.
type NativeCurrency struct {
	Name     string `json:"name"`
	Symbol   string `json:"symbol"`
	Decimals int    `json:"decimals"`
}

// AddEthereumChain returns the wallet_addEthereumChain parameter for i.
func (i Info) AddEthereumChain() AddEthereumChainParameter {
	name := i.ChainName
	if name == "" {
		name = fmt.Sprintf("Chain %d", i.ChainID)
	}
	p := AddEthereumChainParameter{
		ChainID:        hexutil.EncodeUint64(i.ChainID),
		ChainName:      name,
		NativeCurrency: NativeCurrency{Name: "Ether", Symbol: "ETH", Decimals: 18},
		RPCURLs:        []string{},
	}
	if i.RPCURL != "" {
		p.RPCURLs = append(p.RPCURLs, i.RPCURL)
	}
	return p
}
