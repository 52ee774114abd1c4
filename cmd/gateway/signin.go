package main

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"strings"

	"github.com/fhirgate/fhirgate/auth"
	"github.com/fhirgate/fhirgate/auth/siwe"
	"github.com/fhirgate/fhirgate/auth/smart"
	"github.com/fhirgate/fhirgate/chain/ethsig"
	"github.com/fhirgate/fhirgate/fhir/rest"
	"github.com/fhirgate/fhirgate/policy"
	"github.com/fhirgate/fhirgate/store"
)

// patientScopes lets patients read their records and book appointments
// and upload test reports in their own compartment (the portal's use case).
const patientScopes = "patient/*.rs patient/Appointment.cu patient/DiagnosticReport.c"

// devAdmin is the administrator of the embedded dev chain when the
// operator names none: dev account (9) of the well-known test mnemonic
// (its key is public: a development convenience, never a real network's).
const devAdmin = 9

// operators are the wallets the operator names with --admins and
// --regulators (siwe.ParseOperators); on the embedded dev chain without
// --admins, dev account (9) administers. It reports whether that default
// applies.
func operators(admins, regulators string, chn *chainSetup) (map[ethsig.Address]policy.Role, bool, error) {
	ops, err := siwe.ParseOperators(admins, regulators)
	if err != nil {
		return nil, false, fmt.Errorf("--admins/--regulators: %w", err)
	}
	if strings.TrimSpace(admins) != "" || chn.dev == nil || len(chn.dev.Accounts()) <= devAdmin {
		return ops, false, nil
	}
	a := ethsig.Address(chn.dev.Accounts()[devAdmin].Address)
	if r, ok := ops[a]; ok && r != policy.RoleAdmin {
		return ops, false, nil // named regulator: the operator's word stands
	}
	ops[a] = policy.RoleAdmin
	return ops, true, nil
}

// adminScopes: an administrator's wallet sign-in also decides
// registration requests.
const adminScopes = " " + policy.ScopeRegistrationAdmin

// signIn configures Sign-In With Ethereum for people (wallets linked to
// Patient or Practitioner records, wallets linked to nothing as
// applicants, and the operators' wallets ops) and, with a client
// registry, SMART Backend Services for EHR systems. It returns the
// registered clients as consent grantees ("client/<id>").
func signIn(cfg *rest.Config, st *store.Store, key *auth.Key, base string, chn *chainSetup, clients string, ops map[ethsig.Address]policy.Role) ([]string, error) {
	u, err := url.Parse(base)
	if err != nil {
		return nil, fmt.Errorf("--base-url: %w", err)
	}
	scopes := map[policy.Role]string{}
	for r, s := range siwe.DefaultScopes {
		scopes[r] = s
	}
	scopes[policy.RolePatient] = patientScopes
	scopes[policy.RoleAdmin] += adminScopes
	cfg.SIWE, err = siwe.New(siwe.Config{
		Domain:    u.Host,
		Origin:    u.Scheme + "://" + u.Host,
		ChainID:   chn.info.ChainID,
		Key:       key,
		Resolve:   rest.WalletResolver(st),
		Scopes:    scopes,
		Operators: ops,
		// In the store: a nonce one replica issued is good once on any.
		Nonces: siwe.NewStoreNonceStore(st.Engine(), 0),
	})
	if err != nil {
		return nil, fmt.Errorf("sign-in with ethereum: %w", err)
	}
	if clients == "" {
		return nil, nil
	}
	reg, err := smart.LoadRegistry(clients)
	if err != nil {
		return nil, fmt.Errorf("--clients: %w", err)
	}
	// Used assertion jtis live in the store until they expire: a restart
	// does not make an assertion usable again, and replicas share them.
	replay, err := smart.NewStoreReplayCache(context.Background(), st.Engine(), 0)
	if err != nil {
		return nil, err
	}
	if cfg.SMART, err = smart.New(smart.Config{Key: key, Registry: reg, TokenURL: smart.TokenEndpoint(strings.TrimSuffix(base, "/fhir")), Replay: replay}); err != nil {
		return nil, err
	}
	var grantees []string
	for _, c := range reg.Clients() {
		grantees = append(grantees, "client/"+c.ID)
	}
	return grantees, nil
}

// wellKnown is GET /.well-known/fhirgate: the chain and contracts a wallet
// or a verifier needs, where to read ConsentRegistry's events from, and
// the FHIR base (the host a sign-in message must name).
func wellKnown(c *chainSetup, base string) map[string]any {
	contracts := map[string]string{}
	for name, a := range c.info.Contracts {
		contracts[name] = a.Hex()
	}
	return map[string]any{
		"chainId":     c.info.ChainID,
		"chainName":   c.info.ChainName,
		"rpc":         c.info.RPCURL,
		"genesisHash": c.info.GenesisHash.Hex(),
		"dev":         c.info.Dev,
		"contracts":   contracts,
		"deployBlocks": map[string]uint64{
			"AuditAnchor": c.anchorBlk, "ConsentRegistry": c.consentBlk,
		},
		"fhirBaseUrl":  base,
		"consentRelay": true,
	}
}

// printChain says which chain the gateway uses; on the embedded dev chain
// it lists the development accounts, marking the default administrator
// (devAdminDefault: the operator named none).
func printChain(w io.Writer, c *chainSetup, devAdminDefault bool) {
	if c.dev == nil {
		fmt.Fprintf(w, "chain %d via RPC; AuditAnchor %s, ConsentRegistry %s\n", c.info.ChainID, c.anchor.Hex(), c.consent.Hex())
		return
	}
	fmt.Fprintf(w, "embedded dev chain %d, JSON-RPC %s; AuditAnchor %s, ConsentRegistry %s\n",
		c.info.ChainID, orNone(c.dev.HTTPURL()), c.anchor.Hex(), c.consent.Hex())
	fmt.Fprintf(w, "the gateway's account %s (key in %s): owner and anchorer of the AuditAnchor\n", c.sender.Address().Hex(), c.keyFile)
	fmt.Fprintln(w, "development accounts for wallets (the well-known test mnemonic; never use them on a real network):")
	for i, a := range c.dev.Accounts() {
		role := ""
		if devAdminDefault && i == devAdmin {
			role = " administrator (--admins)"
		}
		fmt.Fprintf(w, "  (%d) %s %s%s\n", i, a.Address.Hex(), a.PrivateKeyHex(), role)
	}
}
