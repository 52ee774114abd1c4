package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/fhirgate/fhirgate/auth/siwe"
	"github.com/fhirgate/fhirgate/consent"
	"github.com/fhirgate/fhirgate/fhir"
	"github.com/fhirgate/fhirgate/fhir/fhirjson"
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
	// linking serializes wallet (un)mapping after Patient writes, so the
	// last to run sees the newest record (see onWrite).
	linking sync.Mutex
}

func setupConsent(ctx context.Context, chn *chainSetup, st *store.Store, grants *policy.Grants, confirmations uint64, maxLag time.Duration,
	project func(ctx context.Context, ps []consent.Projection) error, log *slog.Logger) (*consentWiring, error) {
	f, err := consent.NewFollower(ctx, consent.Config{
		Client: chn.client, Registry: chn.consent, StartBlock: chn.consentBlk, Engine: st.Engine(), Grants: grants,
		Confirmations: confirmations, MaxLag: maxLag, Project: project, Logger: log,
	})
	if err != nil {
		return nil, err
	}
	cw := &consentWiring{follower: f, st: st, chainID: chn.info.ChainID, log: log}
	if err := cw.seed(ctx, st); err != nil {
		return nil, err
	}
	cw.relay, err = consent.NewRelay(consent.RelayConfig{Sender: chn.sender, Registry: chn.consent, Confirmations: confirmations,
		KnownGrantee: f.KnowsGrantee, KnownPatient: f.KnowsWallet})
	if err != nil {
		return nil, err
	}
	return cw, nil
}

// seed tells the follower every wallet linked to a Patient and every
// possible grantee already in the store, and unmaps the wallets it still
// maps that no Patient lists any more.
func (cw *consentWiring) seed(ctx context.Context, st *store.Store) error {
	var links []consent.WalletPatient
	err := st.EachCurrent(ctx, "Patient", func(v store.Version) error {
		for _, w := range walletsOf(v.Body) {
			links = append(links, consent.WalletPatient{Wallet: w, Patient: "Patient/" + v.ID})
		}
		return nil
	})
	if err != nil {
		return err
	}
	links = cw.onChain(links)
	listed := map[string]string{}
	for _, l := range links {
		listed[strings.ToLower(l.Wallet)] = l.Patient
	}
	for _, w := range cw.follower.Wallets() {
		if listed[strings.ToLower(w.Wallet)] == "" {
			links = append(links, consent.WalletPatient{Wallet: w.Wallet}) // unmap
		}
	}
	if err := cw.follower.SetPatients(ctx, links); err != nil {
		return err
	}
	for _, typ := range []string{"Practitioner", "Organization"} {
		var refs []string
		if err := st.EachCurrent(ctx, typ, func(v store.Version) error {
			refs = append(refs, typ+"/"+v.ID)
			return nil
		}); err != nil {
			return err
		}
		if err := cw.follower.AddGrantees(ctx, refs...); err != nil {
			return err
		}
	}
	return nil
}

// onChain keeps the links of this chain (a wallet is chain-specific).
func (cw *consentWiring) onChain(links []consent.WalletPatient) []consent.WalletPatient {
	prefix := consent.CAIP10(cw.chainID, common.Address{})[:len("eip155:")+len(itoa(cw.chainID))+1]
	out := links[:0]
	for _, l := range links {
		if strings.HasPrefix(l.Wallet, prefix) {
			out = append(out, l)
		}
	}
	return out
}

// onWrite keeps the follower's identities current as records change. A
// wallet taken off a Patient (or the Patient deleted) is unmapped: its
// grants, past and future, no longer speak for that patient.
func (cw *consentWiring) onWrite(v store.Version) {
	ctx := context.Background()
	switch v.Type {
	case "Patient":
		if err := cw.relink(ctx, v); err != nil {
			cw.log.Warn("consent: cannot map a wallet", "err", err)
		}
	case "Practitioner", "Organization":
		if !v.Deleted {
			if err := cw.follower.AddGrantees(ctx, v.Type+"/"+v.ID); err != nil {
				cw.log.Warn("consent: cannot add a grantee", "err", err)
			}
		}
	}
}

// relink maps the wallets of the patient's newest record and unmaps those
// that v or the version before it listed and the newest does not. Writes
// of one patient can reach here out of order, so it reads the newest
// record itself, under a lock: whichever call runs last maps what is
// current.
func (cw *consentWiring) relink(ctx context.Context, v store.Version) error {
	if v.VID == 1 && walletsOf(v.Body) == nil {
		return nil // nothing to map, nothing before it to unmap
	}
	cw.linking.Lock()
	defer cw.linking.Unlock()
	ref := "Patient/" + v.ID
	cur, err := cw.st.Read(ctx, "Patient", v.ID) // a tombstone if deleted: no wallets
	if err != nil {
		return err
	}
	links := cw.onChain(wallets(ref, walletsOf(cur.Body)))
	keep := map[string]bool{}
	for _, l := range links {
		keep[strings.ToLower(l.Wallet)] = true
	}
	seen := walletsOf(v.Body)
	if v.VID > 1 {
		if prev, err := cw.st.Version(ctx, "Patient", v.ID, v.VID-1); err == nil {
			seen = append(seen, walletsOf(prev.Body)...)
		}
	}
	for _, w := range cw.onChain(wallets("", seen)) {
		if !keep[strings.ToLower(w.Wallet)] && cw.follower.PatientOf(w.Wallet) == ref {
			links = append(links, w) // Patient "": unmap
			keep[strings.ToLower(w.Wallet)] = true
		}
	}
	err = cw.follower.SetPatients(ctx, links)
	if errors.Is(err, consent.ErrOtherChain) {
		return nil
	}
	return err
}

func wallets(patient string, ws []string) []consent.WalletPatient {
	out := make([]consent.WalletPatient, len(ws))
	for i, w := range ws {
		out[i] = consent.WalletPatient{Wallet: w, Patient: patient}
	}
	return out
}

// walletsOf returns the CAIP-10 wallet identifiers of a stored resource
// body. Stored bodies are canonical JSON, which writes the system's URI as
// is, so a body without it has none (most Patients: no parse).
func walletsOf(body []byte) []string {
	if !bytes.Contains(body, []byte(siwe.CAIP10System)) {
		return nil
	}
	root, err := fhirjson.Parse(body, fhir.Limits)
	if err != nil {
		return nil
	}
	var out []string
	if ids := root.Get("identifier"); ids != nil {
		for i := range ids.Items {
			if ids.Items[i].GetString("system") == siwe.CAIP10System {
				if v := ids.Items[i].GetString("value"); v != "" {
					out = append(out, v)
				}
			}
		}
	}
	return out
}

// projector writes the Consent resources the follower projects from the
// chain, as the gateway (read-only to clients).
func projector(srv **rest.Server) func(ctx context.Context, ps []consent.Projection) error {
	return func(ctx context.Context, ps []consent.Projection) error {
		if *srv == nil {
			return errors.New("the server is not up yet")
		}
		for _, p := range ps {
			if err := (*srv).WriteAsGateway(ctx, "Consent", p.ID, p.Body); err != nil {
				return err
			}
		}
		return nil
	}
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

func itoa(n uint64) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + n%10)
		if n /= 10; n == 0 {
			return string(b[i:])
		}
	}
}
