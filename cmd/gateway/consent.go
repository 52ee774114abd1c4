package main

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/common"

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
	st       *store.Store
	chainID  uint64
	log      *slog.Logger
}

func setupConsent(ctx context.Context, chn *chainSetup, st *store.Store, grants *policy.Grants, confirmations uint64, maxLag time.Duration,
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
		KnownGrantee: f.KnowsGrantee, KnownPatient: f.KnowsWallet})
	if err != nil {
		return nil, err
	}
	return cw, nil
}

// onWrite tells the follower of this replica's committed versions (it
// reads wallet changes back from the store at once).
func (cw *consentWiring) onWrite(v store.Version) { cw.follower.Noticed(v) }

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

// relayHandler is POST /consent/relay: a signed-in patient hands over a
// Grant or Revoke they signed with their wallet; the gateway pays the gas.
func (cw *consentWiring) relayHandler(ctx context.Context, p *policy.Principal, body []byte) (int, any) {
	refuse := func(status int, code, msg string) (int, any) {
		return status, consent.RelayErrorResponse{Code: code, Error: msg}
	}
	if p.Role != policy.RolePatient || p.Wallet == "" {
		return refuse(http.StatusForbidden, "forbidden", "only a patient signed in with their wallet can relay their consent")
	}
	s, err := consent.DecodeRelayRequest(body)
	if err == nil && !strings.EqualFold(p.Wallet, consent.CAIP10(cw.chainID, consent.SignerOf(s))) {
		return refuse(http.StatusForbidden, "forbidden", "the consent is signed by another wallet than the one you signed in with")
	}
	var h common.Hash
	if err == nil {
		h, err = cw.relay.Submit(ctx, s)
	}
	if err != nil {
		return cw.relayRefusal(err, "consent relay failed")
	}
	return http.StatusAccepted, consent.RelayResponse{TxHash: h, State: "pending"}
}

// relayRefusal answers an error of the relay: its refusals by their code,
// anything else as the chain being unavailable (logged as what).
func (cw *consentWiring) relayRefusal(err error, what string) (int, any) {
	var r *consent.RefusedError
	if !errors.As(err, &r) {
		cw.log.Error(what, "err", err)
		return http.StatusServiceUnavailable, consent.RelayErrorResponse{Code: "unavailable", Error: "the chain is unavailable; try again later"}
	}
	status := http.StatusUnprocessableEntity
	switch r.Code {
	case consent.CodeMalformed:
		status = http.StatusBadRequest
	case consent.CodeNonce:
		status = http.StatusConflict
	case consent.CodeBusy:
		status = http.StatusTooManyRequests
	}
	return status, consent.RelayErrorResponse{Code: r.Code, Error: r.Reason}
}

// relayPrepare is POST /consent/relay/prepare: the EIP-712 typed data a
// signed-in patient's wallet signs for a Grant or Revoke, with their next
// nonce (counting the relay's transactions in flight), so that a portal
// needs no JSON-RPC access to the chain.
func (cw *consentWiring) relayPrepare(ctx context.Context, p *policy.Principal, body []byte) (int, any) {
	refuse := func(status int, code, msg string) (int, any) {
		return status, consent.RelayErrorResponse{Code: code, Error: msg}
	}
	if p.Role != policy.RolePatient || p.Wallet == "" {
		return refuse(http.StatusForbidden, "forbidden", "only a patient signed in with their wallet can prepare their consent")
	}
	var req consent.PrepareRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return refuse(http.StatusBadRequest, consent.CodeMalformed, "the body is not a JSON prepare request")
	}
	if !common.IsHexAddress(req.Patient) || !strings.EqualFold(p.Wallet, consent.CAIP10(cw.chainID, common.HexToAddress(req.Patient))) {
		return refuse(http.StatusForbidden, "forbidden", "patient must be the wallet you signed in with")
	}
	td, err := cw.relay.Prepare(ctx, req)
	if err != nil {
		return cw.relayRefusal(err, "consent relay prepare failed")
	}
	return http.StatusOK, td
}

// relayStatus is GET /consent/relay/:tx: pending, mined, confirmed or
// failed.
func (cw *consentWiring) relayStatus(ctx context.Context, p *policy.Principal, tx string) (int, any) {
	if !isTxHash(tx) {
		return http.StatusBadRequest, consent.RelayErrorResponse{Code: "malformed", Error: "not a transaction hash"}
	}
	st, err := cw.relay.Status(ctx, common.HexToHash(tx))
	if errors.Is(err, consent.ErrUnknownTx) {
		return http.StatusNotFound, consent.RelayErrorResponse{Code: "unknown", Error: "no such relayed transaction"}
	}
	if err != nil {
		return http.StatusServiceUnavailable, consent.RelayErrorResponse{Code: "unavailable", Error: "the chain is unavailable; try again later"}
	}
	return http.StatusOK, st
}

// isTxHash accepts a 0x-prefixed 32-byte hex hash.
func isTxHash(s string) bool {
	h, ok := strings.CutPrefix(s, "0x")
	if !ok || len(h) != 64 {
		return false
	}
	for _, c := range h {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}
