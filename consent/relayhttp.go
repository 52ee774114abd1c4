package consent

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"

	"github.com/ethereum/go-ethereum/common"

	"github.com/fhirgate/fhirgate/policy"
)

// RelayAPI is the relay's HTTP API for the signed-in patient: POST
// /consent/relay, POST /consent/relay/prepare and GET
// /consent/relay/{txHash or requestId}. Each method returns the status
// and the JSON body (fhir/rest serves them: rest.Config.Relay,
// RelayPrepare, RelayStatus). Every replica answers all three from the
// store.
type RelayAPI struct {
	Relay   *Relay
	ChainID uint64
	Logger  *slog.Logger
}

func relayRefuse(status int, code, msg string) (int, any) {
	return status, RelayErrorResponse{Code: code, Error: msg}
}

// Submit is POST /consent/relay: a signed-in patient hands over a Grant
// or Revoke they signed with their wallet; the gateway pays the gas. 202
// with the transaction hash once sent, or with the request id while
// queued for the replica that sends.
func (a *RelayAPI) Submit(ctx context.Context, p *policy.Principal, body []byte) (int, any) {
	if p.Role != policy.RolePatient || p.Wallet == "" {
		return relayRefuse(http.StatusForbidden, "forbidden", "only a patient signed in with their wallet can relay their consent")
	}
	s, err := DecodeRelayRequest(body)
	if err == nil && !strings.EqualFold(p.Wallet, CAIP10(a.ChainID, SignerOf(s))) {
		return relayRefuse(http.StatusForbidden, "forbidden", "the consent is signed by another wallet than the one you signed in with")
	}
	var acc Accepted
	if err == nil {
		acc, err = a.Relay.Submit(ctx, s)
	}
	if err != nil {
		return a.refusal(err, "consent relay failed")
	}
	return http.StatusAccepted, RelayResponse{TxHash: acc.TxHash, RequestID: acc.RequestID, State: acc.State}
}

// RelayStatusCode is the HTTP status of a relay error: refusals by their
// code, anything else 503 (the chain or the store is unavailable).
func RelayStatusCode(err error) (int, RelayErrorResponse) {
	var r *RefusedError
	if !errors.As(err, &r) {
		return http.StatusServiceUnavailable, RelayErrorResponse{Code: "unavailable", Error: "the chain is unavailable; try again later"}
	}
	status := http.StatusUnprocessableEntity
	switch r.Code {
	case CodeMalformed:
		status = http.StatusBadRequest
	case CodeNonce:
		status = http.StatusConflict
	case CodeBusy:
		status = http.StatusTooManyRequests
	}
	return status, RelayErrorResponse{Code: r.Code, Error: r.Reason}
}

func (a *RelayAPI) refusal(err error, what string) (int, any) {
	status, body := RelayStatusCode(err)
	if status == http.StatusServiceUnavailable && a.Logger != nil {
		a.Logger.Error(what, "err", err)
	}
	return status, body
}

// Prepare is POST /consent/relay/prepare: the EIP-712 typed data a
// signed-in patient's wallet signs for a Grant or Revoke, with their next
// nonce (counting the requests in flight on every replica), so that a
// portal needs no JSON-RPC access to the chain.
func (a *RelayAPI) Prepare(ctx context.Context, p *policy.Principal, body []byte) (int, any) {
	if p.Role != policy.RolePatient || p.Wallet == "" {
		return relayRefuse(http.StatusForbidden, "forbidden", "only a patient signed in with their wallet can prepare their consent")
	}
	var req PrepareRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return relayRefuse(http.StatusBadRequest, CodeMalformed, "the body is not a JSON prepare request")
	}
	if !common.IsHexAddress(req.Patient) || !strings.EqualFold(p.Wallet, CAIP10(a.ChainID, common.HexToAddress(req.Patient))) {
		return relayRefuse(http.StatusForbidden, "forbidden", "patient must be the wallet you signed in with")
	}
	td, err := a.Relay.Prepare(ctx, req)
	if err != nil {
		return a.refusal(err, "consent relay prepare failed")
	}
	return http.StatusOK, td
}

// Status is GET /consent/relay/{id}: queued, pending, mined, confirmed or
// failed; id is a transaction hash or a request id.
func (a *RelayAPI) Status(ctx context.Context, _ *policy.Principal, id string) (int, any) {
	if !IsHash32(id) {
		return relayRefuse(http.StatusBadRequest, "malformed", "not a transaction hash")
	}
	st, err := a.Relay.Status(ctx, common.HexToHash(id))
	if errors.Is(err, ErrUnknownTx) {
		return relayRefuse(http.StatusNotFound, "unknown", "no such relayed transaction")
	}
	if err != nil {
		return relayRefuse(http.StatusServiceUnavailable, "unavailable", "the chain is unavailable; try again later")
	}
	return http.StatusOK, st
}

// IsHash32 accepts a 0x-prefixed 32-byte hex hash.
func IsHash32(s string) bool {
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
