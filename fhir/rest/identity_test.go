package rest

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/fhirgate/fhirgate/auth/siwe"
	"github.com/fhirgate/fhirgate/policy"
)

// TestWalletResolver: a wallet resolves to its record whatever the case
// the address was written in; a practitioner signs in only once an
// administrator has made the record active.
func TestWalletResolver(t *testing.T) {
	s, tok := newTestServer(t)
	const addr = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8" // EIP-55
	lower, upper := strings.ToLower(addr), "0x"+strings.ToUpper(addr[2:])
	mk := func(typ, value, extra string) string {
		body := `{"resourceType":"` + typ + `","identifier":[{"system":"` + siwe.CAIP10System + `","value":"eip155:1337:` + value + `"}]` + extra + `}`
		res := serve(s, "POST", "/fhir/"+typ, "application/fhir+json", tok, []byte(body))
		if res.StatusCode() != 201 {
			t.Fatalf("create %s: %d %s", typ, res.StatusCode(), res.Body())
		}
		loc := string(res.Header.Peek("Location"))
		return typ + "/" + strings.Split(strings.SplitN(loc, "/"+typ+"/", 2)[1], "/")[0]
	}
	pat := mk("Patient", upper, "")
	inactive := "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"
	mk("Practitioner", inactive, `,"active":false`)
	unset := "0x90F79bf6EB2c4f870365E785982E1f101E93b906"
	mk("Practitioner", strings.ToLower(unset), "")
	active := "0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65"
	doc := mk("Practitioner", active, `,"active":true`)

	resolve := WalletResolver(s.store)
	for _, tc := range []struct {
		name, address, want string
		err                 error
	}{
		{"patient written in upper case", addr, pat, nil},
		{"patient asked in lower case", lower, pat, nil},
		{"verified practitioner", active, doc, nil},
		{"practitioner marked inactive", inactive, "", ErrNotVerified},
		{"practitioner never verified", unset, "", ErrNotVerified},
		{"unknown wallet", "0x9965507D1a55bcC2695C58ba16FB37d819B0A4dc", "", siwe.ErrNotLinked},
	} {
		t.Run(tc.name, func(t *testing.T) {
			link, err := resolve(context.Background(), 1337, tc.address)
			if !errors.Is(err, tc.err) || link.Resource != tc.want {
				t.Fatalf("got %q, %v; want %q, %v", link.Resource, err, tc.want, tc.err)
			}
			if tc.err == ErrNotVerified && !errors.Is(err, policy.ErrDenied) {
				t.Fatal("a refusal must be a denial (403)")
			}
		})
	}
	if _, err := resolve(context.Background(), 1, addr); !errors.Is(err, siwe.ErrNotLinked) {
		t.Fatalf("a wallet on another chain resolved: %v", err)
	}
}
