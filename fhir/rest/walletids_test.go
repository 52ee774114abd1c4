package rest

import (
	"slices"
	"testing"
)

func TestWalletIdentifiers(t *testing.T) {
	const w = "eip155:1337:0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
	for _, tc := range []struct {
		name, body string
		want       []string
	}{
		{"none", `{"identifier":[{"system":"urn:oid:1.2.36.146.595.217.0.1","value":"12345"}],"resourceType":"Patient"}`, nil},
		{"one", `{"identifier":[{"system":"https://chainagnostic.org/CAIPs/caip-10","value":"` + w + `"}],"resourceType":"Patient"}`, []string{w}},
		{"two, among others", `{"identifier":[{"system":"https://chainagnostic.org/CAIPs/caip-10","value":"a"},{"system":"x","value":"b"},{"system":"https://chainagnostic.org/CAIPs/caip-10","value":"c"}],"resourceType":"Patient"}`, []string{"a", "c"}},
		{"system elsewhere", `{"resourceType":"Patient","text":{"div":"https://chainagnostic.org/CAIPs/caip-10","status":"generated"}}`, nil},
		{"empty value", `{"identifier":[{"system":"https://chainagnostic.org/CAIPs/caip-10","value":""}],"resourceType":"Patient"}`, nil},
		{"no body", ``, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := WalletIdentifiers([]byte(tc.body)); !slices.Equal(got, tc.want) {
				t.Errorf("WalletIdentifiers = %q, want %q", got, tc.want)
			}
		})
	}
}
