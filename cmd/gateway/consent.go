package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/fhirgate/fhirgate/consent"
	"github.com/fhirgate/fhirgate/fhir/rest"
	"github.com/fhirgate/fhirgate/policy"
	"github.com/fhirgate/fhirgate/store"
)

// consentWiring follows ConsentRegistry into the policy mirror, projects
// Consent resources, and relays patients' signed consents.
type consentWiring struct {
	follower *consent.Follower
	relay    *consent.Relay
	relayAPI *consent.RelayAPI
	st       *store.Store
	chainID  uint64
	log      *slog.Logger
}

func setupConsent(ctx context.Context, chn *chainSetup, st *store.Store, sendLease *store.Lease, grants *policy.Grants, confirmations uint64, maxLag time.Duration,
	project func(ctx context.Context, ps []consent.Projection) error, log *slog.Logger) (*consentWiring, error) {
	f, err := consent.NewFollower(ctx, consent.Config{
		Client: chn.client, Registry: chn.consent, StartBlock: chn.consentBlk, Engine: st.Engine(), Grants: grants,
		Confirmations: confirmations, MaxLag: maxLag, Project: project, Logger: log,
		Directory: st, WalletsOf: rest.WalletIdentifiers,
	})
	if err != nil {
		return nil, err
	}
	cw := &consentWiring{follower: f, st: st, chainID: chn.info.ChainID, log: log}
	if err := f.SeedIdentities(ctx); err != nil {
		return nil, err
	}
	cw.relay, err = consent.NewRelay(consent.RelayConfig{Sender: chn.sender, Registry: chn.consent, Confirmations: confirmations,
		Engine: st.Engine(), Lease: sendLease, KnownGrantee: f.KnowsGrantee, KnownPatient: f.KnowsWallet, Logger: log})
	if err != nil {
		return nil, err
	}
	cw.relayAPI = &consent.RelayAPI{Relay: cw.relay, ChainID: chn.info.ChainID, Logger: log}
	return cw, nil
}

// onWrite tells the follower of this replica's committed versions (it
// reads wallet changes back from the store at once).
func (cw *consentWiring) onWrite(w *store.Write) { cw.follower.Noticed(w) }

// projector writes the Consent resources the follower projects from the
// chain through the server, once it is up.
func projector(srv **rest.Server) func(ctx context.Context, ps []consent.Projection) error {
	return consent.Projector(func() consent.ConsentWriter {
		if *srv == nil {
			return nil
		}
		return *srv
	})
}
