package consent

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/big"
	"reflect"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"

	"github.com/fhirgate/fhirgate/contracts/consentsig"
)

const (
	tPatient = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
	tHash    = "0x1111111111111111111111111111111111111111111111111111111111111111"
	tSig     = "0x" + "ab" + "00000000000000000000000000000000000000000000000000000000000000" + "0000000000000000000000000000000000000000000000000000000000000001" + "1b"
)

func body(primary, msgExtra string) string {
	return fmt.Sprintf(`{"primaryType":%q,"domain":{"name":"fhirgate ConsentRegistry","version":"1","chainId":1337,"verifyingContract":"0x5FbDB2315678afecb367f032d93F642f64180aa3"},`+
		`"message":{"patient":%q,"grantee":%q,"scope":%q,"nonce":"0","deadline":"1767225600"%s},"signature":%q}`,
		primary, tPatient, tHash, tHash, msgExtra, tSig)
}

func TestDecodeRelayRequest(t *testing.T) {
	tests := []struct {
		name string
		in   string
		ok   bool
		want string // substring of the refusal
	}{
		{"grant, decimal string expiry", body("Grant", `,"expiry":"18446744073709551615"`), true, ""},
		{"grant, JSON number expiry", body("Grant", `,"expiry":1767225600`), true, ""},
		{"grant, hex expiry", body("Grant", `,"expiry":"0x6955b900"`), true, ""},
		{"revoke", body("Revoke", ``), true, ""},
		{"with types (ignored)", strings.Replace(body("Revoke", ``), `{"primaryType"`, `{"types":{"EIP712Domain":[]},"primaryType"`, 1), true, ""},
		{"domain left out", strings.Replace(body("Revoke", ``), `"domain":{"name":"fhirgate ConsentRegistry","version":"1","chainId":1337,"verifyingContract":"0x5FbDB2315678afecb367f032d93F642f64180aa3"},`, ``, 1), true, ""},
		{"hex chain id", strings.Replace(body("Revoke", ``), `"chainId":1337`, `"chainId":"0x539"`, 1), true, ""},
		{"grant without expiry", body("Grant", ``), false, "message.expiry: missing"},
		{"revoke with expiry", body("Revoke", `,"expiry":"1"`), false, "a Revoke has no expiry"},
		{"expiry beyond uint64", body("Grant", `,"expiry":"18446744073709551616"`), false, "uint64"},
		{"negative expiry", body("Grant", `,"expiry":-1`), false, "unsigned"},
		{"fractional expiry", body("Grant", `,"expiry":1.5`), false, "unsigned"},
		{"exponent expiry", body("Grant", `,"expiry":1e9`), false, "unsigned"},
		{"leading zero", body("Grant", `,"expiry":"0123"`), false, "unsigned"},
		{"unknown message field", body("Grant", `,"expiry":"1","extra":1`), false, "unknown field"},
		{"unknown top-level field", strings.Replace(body("Revoke", ``), `{"primaryType"`, `{"x":1,"primaryType"`, 1), false, "unknown field"},
		{"trailing data", body("Revoke", ``) + `{}`, false, "trailing"},
		{"other primary type", body("Permit", ``), false, "primaryType"},
		{"bad checksum", strings.Replace(body("Revoke", ``), tPatient, strings.Replace(tPatient, "C51", "c51", 1), 1), false, "checksum"},
		{"lowercase address", strings.Replace(body("Revoke", ``), tPatient, strings.ToLower(tPatient), 1), true, ""},
		{"short bytes32", strings.Replace(body("Revoke", ``), tHash, tHash[:64], 1), false, "64 hex"},
		{"signature not hex", strings.Replace(body("Revoke", ``), tSig, "0xzz", 1), false, "signature"},
		{"nonce beyond uint256", strings.Replace(body("Revoke", ``), `"nonce":"0"`, `"nonce":"0x1`+strings.Repeat("0", 64)+`"`, 1), false, "uint256"},
		{"domain with salt", strings.Replace(body("Revoke", ``), `"version":"1"`, `"version":"1","salt":"0x01"`, 1), false, "salt"},
		{"wrong domain name", strings.Replace(body("Revoke", ``), `fhirgate ConsentRegistry`, `Other`, 1), false, "domain name"},
		{"not an object", `[]`, false, "malformed"},
		{"too large", `{"primaryType":"` + strings.Repeat("a", MaxRelayRequestBytes) + `"}`, false, "larger"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := DecodeRelayRequest([]byte(tc.in))
			if tc.ok {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("accepted: %+v", s)
			}
			if !isRefusal(err, CodeMalformed) && !isRefusal(err, CodeWrongRegistry) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want %q", err, tc.want)
			}
		})
	}
	s, err := DecodeRelayRequest([]byte(body("Grant", `,"expiry":"0x6955b900"`)))
	if err != nil {
		t.Fatal(err)
	}
	g := s.(SignedGrant)
	if g.Expiry != 1767225600 || g.Patient != common.HexToAddress(tPatient) || g.Domain.ChainID.Int64() != 1337 || len(g.Signature) != 65 {
		t.Errorf("decoded %+v", g)
	}
}

// encodeSigned renders a decoded request back to JSON.
func encodeSigned(s Signed) []byte {
	m := map[string]any{}
	msg := map[string]any{}
	var sig []byte
	var dom *consentsig.Domain
	switch v := s.(type) {
	case SignedGrant:
		m["primaryType"] = "Grant"
		msg["patient"], msg["grantee"], msg["scope"] = v.Patient.Hex(), v.Grantee.Hex(), v.Scope.Hex()
		msg["expiry"], msg["nonce"], msg["deadline"] = fmt.Sprint(v.Expiry), v.Nonce.String(), v.Deadline.String()
		sig, dom = v.Signature, v.Domain
	case SignedRevoke:
		m["primaryType"] = "Revoke"
		msg["patient"], msg["grantee"], msg["scope"] = v.Patient.Hex(), v.Grantee.Hex(), v.Scope.Hex()
		msg["nonce"], msg["deadline"] = v.Nonce.String(), v.Deadline.String()
		sig, dom = v.Signature, v.Domain
	}
	if dom != nil {
		d := map[string]any{}
		if dom.ChainID != nil {
			d["chainId"] = dom.ChainID.String()
		}
		if dom.Registry != (common.Address{}) {
			d["verifyingContract"] = dom.Registry.Hex()
		}
		m["domain"] = d
	}
	m["message"] = msg
	m["signature"] = "0x" + common.Bytes2Hex(sig)
	b, _ := json.Marshal(m)
	return b
}

// Decoding never panics; what decodes re-encodes to the same request.
func FuzzDecodeRelayRequest(f *testing.F) {
	f.Add([]byte(body("Grant", `,"expiry":"18446744073709551615"`)))
	f.Add([]byte(body("Grant", `,"expiry":1767225600`)))
	f.Add([]byte(body("Revoke", ``)))
	f.Add([]byte(strings.Replace(body("Revoke", ``), `"chainId":1337`, `"chainId":"0x539"`, 1)))
	f.Add([]byte(`{"primaryType":"Grant","message":{}}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		s, err := DecodeRelayRequest(in)
		if err != nil {
			if !isRefusal(err, CodeMalformed) && !isRefusal(err, CodeWrongRegistry) {
				t.Fatalf("error is not a refusal: %v", err)
			}
			return
		}
		s2, err := DecodeRelayRequest(encodeSigned(s))
		if err != nil {
			t.Fatalf("re-encoded request refused: %v", err)
		}
		if !reflect.DeepEqual(normal(s), normal(s2)) {
			t.Fatalf("round trip differs:\n%+v\n%+v", s, s2)
		}
	})
}

// normal makes empty and nil slices, and big.Int forms, compare equal.
func normal(s Signed) string {
	var b bytes.Buffer
	switch v := s.(type) {
	case SignedGrant:
		fmt.Fprintf(&b, "G %s %s %s %d %s %s %x", v.Patient, v.Grantee, v.Scope, v.Expiry, v.Nonce, v.Deadline, v.Signature)
		if v.Domain != nil {
			fmt.Fprintf(&b, " %v %s", (*big.Int)(v.Domain.ChainID), v.Domain.Registry)
		}
	case SignedRevoke:
		fmt.Fprintf(&b, "R %s %s %s %s %s %x", v.Patient, v.Grantee, v.Scope, v.Nonce, v.Deadline, v.Signature)
		if v.Domain != nil {
			fmt.Fprintf(&b, " %v %s", (*big.Int)(v.Domain.ChainID), v.Domain.Registry)
		}
	}
	return b.String()
}
