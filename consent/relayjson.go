package consent

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"strings"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"

	"github.com/fhirgate/fhirgate/contracts/consentsig"
)

// MaxRelayRequestBytes bounds a relay request body.
const MaxRelayRequestBytes = 16 << 10

// RelayRequest is the body of POST /consent/relay: the EIP-712 typed data
// the patient's wallet signed (eth_signTypedData_v4 input, as
// Relay.Prepare returns it) plus the signature.
//
//	{
//	  "primaryType": "Grant",
//	  "domain": {"name": "fhirgate ConsentRegistry", "version": "1",
//	             "chainId": 1337, "verifyingContract": "0x…"},
//	  "message": {"patient": "0x…", "grantee": "0x…32 bytes", "scope": "0x…32 bytes",
//	              "expiry": "1767225600", "nonce": "0", "deadline": "1767222000"},
//	  "signature": "0x…65 bytes, v = 27/28"
//	}
//
// "types" may be present and is ignored: the relay verifies against the
// registry's own types, so a signature over other types fails. "domain" is
// optional; when present it must name this chain and registry (a clear
// "wrong-chain" refusal rather than a failed signature). Integers are
// decimal strings, JSON integers or 0x-hex strings. A Revoke has no
// expiry.
type RelayRequest struct {
	Types       json.RawMessage `json:"types,omitempty"`
	PrimaryType string          `json:"primaryType"`
	Domain      *RelayDomain    `json:"domain,omitempty"`
	Message     RelayMessage    `json:"message"`
	Signature   string          `json:"signature"`
}

// RelayDomain is the EIP-712 domain as the client sent it.
type RelayDomain struct {
	Name              string          `json:"name,omitempty"`
	Version           string          `json:"version,omitempty"`
	ChainID           json.RawMessage `json:"chainId,omitempty"`
	VerifyingContract string          `json:"verifyingContract,omitempty"`
	// Salt must be empty: the registry's domain has none.
	Salt string `json:"salt,omitempty"`
}

// RelayMessage holds the fields of Grant or Revoke as the contract names
// them.
type RelayMessage struct {
	Patient  string          `json:"patient"`
	Grantee  string          `json:"grantee"`
	Scope    string          `json:"scope"`
	Expiry   json.RawMessage `json:"expiry,omitempty"`
	Nonce    json.RawMessage `json:"nonce"`
	Deadline json.RawMessage `json:"deadline"`
}

// RelayResponse is the answer to an accepted POST /consent/relay (HTTP
// 202): the transaction's hash once sent (state "pending"), and the
// request id, which GET /consent/relay/{id} answers as well, also while
// the request waits to be sent (state "queued", no txHash).
type RelayResponse struct {
	TxHash    common.Hash `json:"txHash,omitzero"`
	RequestID common.Hash `json:"requestId,omitzero"`
	State     string      `json:"state"` // "pending" or "queued"
}

// RelayErrorResponse is the body of a refused request.
type RelayErrorResponse struct {
	Code  string `json:"code"`
	Error string `json:"error"`
}

// Signed is a patient-signed grant or revocation: SignedGrant or
// SignedRevoke.
type Signed interface{ isSigned() }

// SignedGrant is a Grant message and its signature. Domain, when set, is
// the domain the client says it signed for; the relay checks it names this
// chain and registry.
type SignedGrant struct {
	consentsig.Grant
	Signature []byte
	Domain    *consentsig.Domain
}

// SignedRevoke is a Revoke message and its signature.
type SignedRevoke struct {
	consentsig.Revoke
	Signature []byte
	Domain    *consentsig.Domain
}

func (SignedGrant) isSigned()  {}
func (SignedRevoke) isSigned() {}

// DecodeRelayRequest parses and checks the syntax of a relay request body
// (strict JSON, known fields only, bounded size). Errors are *RefusedError
// with code "malformed".
func DecodeRelayRequest(body []byte) (Signed, error) {
	if len(body) > MaxRelayRequestBytes {
		return nil, refuse(CodeMalformed, "request larger than %d bytes", MaxRelayRequestBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	var req RelayRequest
	if err := dec.Decode(&req); err != nil {
		return nil, refuse(CodeMalformed, "invalid JSON: %s", jsonErrText(err))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, refuse(CodeMalformed, "trailing data after the JSON object")
	}
	return req.Parse()
}

func jsonErrText(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("syntax error at byte %d", se.Offset)
	case errors.As(err, &te):
		return fmt.Sprintf("%s must be %s", te.Field, te.Type)
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return "unexpected end of input"
	case strings.HasPrefix(err.Error(), "json: unknown field"):
		return strings.TrimPrefix(err.Error(), "json: ")
	}
	return "unreadable"
}

// Parse checks the request's fields and returns the signed message.
func (req *RelayRequest) Parse() (Signed, error) {
	var dom *consentsig.Domain
	if d := req.Domain; d != nil {
		if d.Name != "" && d.Name != consentsig.DomainName {
			return nil, refuse(CodeWrongRegistry, "domain name %q is not %q", d.Name, consentsig.DomainName)
		}
		if d.Version != "" && d.Version != consentsig.DomainVersion {
			return nil, refuse(CodeWrongRegistry, "domain version %q is not %q", d.Version, consentsig.DomainVersion)
		}
		if d.Salt != "" {
			return nil, refuse(CodeWrongRegistry, "domain has a salt; the registry's domain has none")
		}
		dom = &consentsig.Domain{}
		if len(d.ChainID) > 0 {
			id, err := parseUint(d.ChainID, 256)
			if err != nil {
				return nil, refuse(CodeMalformed, "domain.chainId: %v", err)
			}
			dom.ChainID = id
		}
		if d.VerifyingContract != "" {
			a, err := parseAddress(d.VerifyingContract)
			if err != nil {
				return nil, refuse(CodeMalformed, "domain.verifyingContract: %v", err)
			}
			dom.Registry = a
		}
	}
	m := req.Message
	patient, err := parseAddress(m.Patient)
	if err != nil {
		return nil, refuse(CodeMalformed, "message.patient: %v", err)
	}
	grantee, err := parseBytes32(m.Grantee)
	if err != nil {
		return nil, refuse(CodeMalformed, "message.grantee: %v", err)
	}
	scope, err := parseBytes32(m.Scope)
	if err != nil {
		return nil, refuse(CodeMalformed, "message.scope: %v", err)
	}
	nonce, err := parseUint(m.Nonce, 256)
	if err != nil {
		return nil, refuse(CodeMalformed, "message.nonce: %v", err)
	}
	deadline, err := parseUint(m.Deadline, 256)
	if err != nil {
		return nil, refuse(CodeMalformed, "message.deadline: %v", err)
	}
	sig, err := hexutil.Decode(req.Signature)
	if err != nil || len(sig) > 1024 {
		return nil, refuse(CodeMalformed, "signature: want 0x-prefixed hex")
	}
	switch req.PrimaryType {
	case "Grant":
		exp, err := parseUint(m.Expiry, 64)
		if err != nil {
			return nil, refuse(CodeMalformed, "message.expiry: %v", err)
		}
		return SignedGrant{Grant: consentsig.Grant{Patient: patient, Grantee: grantee, Scope: scope, Expiry: exp.Uint64(), Nonce: nonce, Deadline: deadline}, Signature: sig, Domain: dom}, nil
	case "Revoke":
		if len(m.Expiry) > 0 {
			return nil, refuse(CodeMalformed, "message.expiry: a Revoke has no expiry")
		}
		return SignedRevoke{Revoke: consentsig.Revoke{Patient: patient, Grantee: grantee, Scope: scope, Nonce: nonce, Deadline: deadline}, Signature: sig, Domain: dom}, nil
	}
	return nil, refuse(CodeMalformed, "primaryType must be Grant or Revoke")
}

// parseAddress accepts 0x + 40 hex digits; mixed case must be a valid
// EIP-55 checksum.
func parseAddress(s string) (common.Address, error) {
	if !strings.HasPrefix(s, "0x") || len(s) != 42 || !common.IsHexAddress(s) {
		return common.Address{}, errors.New("want 0x and 40 hex digits")
	}
	a := common.HexToAddress(s)
	body := s[2:]
	if body != strings.ToLower(body) && body != strings.ToUpper(body) && a.Hex() != s {
		return common.Address{}, errors.New("bad EIP-55 checksum")
	}
	return a, nil
}

func parseBytes32(s string) (common.Hash, error) {
	if !strings.HasPrefix(s, "0x") || len(s) != 66 {
		return common.Hash{}, errors.New("want 0x and 64 hex digits")
	}
	b, err := hexutil.Decode(s)
	if err != nil {
		return common.Hash{}, errors.New("want 0x and 64 hex digits")
	}
	return common.BytesToHash(b), nil
}

// parseUint reads an unsigned integer of at most bits bits from a JSON
// integer, a decimal string or a 0x-hex string.
func parseUint(raw json.RawMessage, bits int) (*big.Int, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, errors.New("missing")
	}
	s := string(raw)
	if raw[0] == '"' {
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, errors.New("bad string")
		}
	}
	if s == "" || len(s) > 80 {
		return nil, errors.New("want an unsigned integer")
	}
	x := new(big.Int)
	ok := false
	if h, isHex := strings.CutPrefix(s, "0x"); isHex {
		if h != "" && strings.Trim(h, "0123456789abcdefABCDEF") == "" {
			_, ok = x.SetString(h, 16)
		}
	} else if strings.Trim(s, "0123456789") == "" && (len(s) == 1 || s[0] != '0') {
		_, ok = x.SetString(s, 10)
	}
	if !ok {
		return nil, errors.New("want an unsigned integer (decimal or 0x-hex)")
	}
	if x.BitLen() > bits {
		return nil, fmt.Errorf("does not fit in uint%d", bits)
	}
	return x, nil
}
