package consent_test

import (
	"context"
	"log"
	"time"

	"github.com/fhirgate/fhirgate/chain"
	"github.com/fhirgate/fhirgate/consent"
	"github.com/fhirgate/fhirgate/policy"
	"github.com/fhirgate/fhirgate/store"
)

// How serve wires the consent follower and the relay (dev mode shown;
// with --eth-rpc, Client is chain.Dial's, preferably ws://).
func Example_serve() {
	ctx := context.Background()
	var (
		dev      *chain.DevChain    // chain.StartDev(...)
		sender   *chain.Sender      // the gateway key's one Sender
		st       *store.Store       // the resource store
		registry chain.Deployment   // book.DeployOnce(ctx, sender, "ConsentRegistry", …)
		confirm  = uint64(1)        // --consent-confirmations
		maxLag   = 30 * time.Second // --consent-max-lag
	)
	pc, err := policy.NewConsent(time.Now)
	if err != nil {
		log.Fatal(err)
	}
	f, err := consent.NewFollower(ctx, consent.Config{
		Client:        dev.Client(),
		Registry:      registry.Address,
		StartBlock:    registry.Block,
		Engine:        st.Engine(),
		Grants:        pc.Grants(),
		Confirmations: confirm,
		MaxLag:        maxLag,
		Project: func(ctx context.Context, ps []consent.Projection) error {
			// Create-or-update Consent/<p.ID> (authored by the gateway,
			// read-only to clients) with p.Body; delete it when p.Body is nil.
			return nil
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	// Identities: every Patient wallet identifier and every grantee, then
	// on each Patient/Practitioner/Organization write and client
	// registration.
	_ = f.SetPatients(ctx, []consent.WalletPatient{{Wallet: "eip155:1337:0x70997970C51812dc3A010C7d01b50e0d17dc79C8", Patient: "Patient/7"}})
	_ = f.AddGrantees(ctx, "Practitioner/123", "Organization/abc", "client/ehr-1")
	go f.Run(ctx) //nolint:errcheck // until shutdown
	select {      // optional: serve once the mirror is current
	case <-f.Ready():
	case <-time.After(10 * time.Second):
	}
	decider := &policy.Decider{Consent: pc, Health: f.Health}
	_ = decider

	// Several replicas: one lease for the single sender (shared with the
	// anchor Log), the Sender gated by it (chain/outbox), kept running.
	lease := store.NewLease(st.Engine(), "sender", store.NewHolderID("gw-"), store.LeaseOptions{})
	go lease.Keep(ctx, nil)
	relay, err := consent.NewRelay(consent.RelayConfig{
		Sender: sender, Registry: registry.Address, Confirmations: confirm,
		Engine: st.Engine(), Lease: lease,
		KnownGrantee: f.KnowsGrantee, KnownPatient: f.KnowsWallet,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer relay.Close()

	// POST /consent/relay, POST /consent/relay/prepare, GET
	// /consent/relay/{id}: rest.Config.Relay, RelayPrepare, RelayStatus.
	api := &consent.RelayAPI{Relay: relay, ChainID: 1337}
	handle := api.Submit
	_ = handle
}
