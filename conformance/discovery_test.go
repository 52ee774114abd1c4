package conformance

import (
	"encoding/json"
	"net/url"
	"slices"
	"strings"
	"testing"
)

// smartConfig is what SMART App Launch 2 ("Conformance") requires of
// [base]/.well-known/smart-configuration, and fhirgate's wallet extension.
type smartConfig struct {
	TokenEndpoint      string   `json:"token_endpoint"`
	GrantTypes         []string `json:"grant_types_supported"`
	AuthMethods        []string `json:"token_endpoint_auth_methods_supported"`
	SigningAlgs        []string `json:"token_endpoint_auth_signing_alg_values_supported"`
	Capabilities       []string `json:"capabilities"`
	CodeChallenge      []string `json:"code_challenge_methods_supported"`
	Scopes             []string `json:"scopes_supported"`
	Authorize          string   `json:"authorization_endpoint"`
	SignInWithEthereum *struct {
		NonceEndpoint  string `json:"nonce_endpoint"`
		SignInEndpoint string `json:"sign_in_endpoint"`
		ChainID        uint64 `json:"chain_id"`
	} `json:"sign_in_with_ethereum"`
}

func discover(t *testing.T) smartConfig {
	t.Helper()
	r := do(t, srv.anon, "GET", ".well-known/smart-configuration", nil, "Accept", "application/json")
	wantStatus(t, r, 200)
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("Content-Type %q, want application/json", ct)
	}
	var c smartConfig
	if err := json.Unmarshal(r.Body, &c); err != nil {
		t.Fatalf("not JSON: %v: %.300s", err, r.Body)
	}
	return c
}

func TestSmartDiscovery(t *testing.T) {
	spec(t, "smart-app-launch conformance: [base]/.well-known/smart-configuration without a token has the REQUIRED fields", func(t *testing.T) {
		c := discover(t)
		if u, err := url.Parse(c.TokenEndpoint); err != nil || !u.IsAbs() || u.Host == "" {
			t.Errorf("token_endpoint %q is not an absolute URL", c.TokenEndpoint)
		}
		if c.GrantTypes == nil || c.Capabilities == nil {
			t.Errorf("grant_types_supported and capabilities are REQUIRED arrays: %+v", c)
		}
		if !slices.Contains(c.CodeChallenge, "S256") || slices.Contains(c.CodeChallenge, "plain") {
			t.Errorf("code_challenge_methods_supported %v: must hold S256 and not plain", c.CodeChallenge)
		}
		for _, g := range c.GrantTypes {
			if g == "authorization_code" && c.Authorize == "" {
				t.Error("authorization_code without an authorization_endpoint")
			}
		}
	})
	spec(t, "smart-app-launch backend services: client_credentials comes with private_key_jwt, RS384 or ES384 and client-confidential-asymmetric", func(t *testing.T) {
		c := discover(t)
		if !slices.Contains(c.GrantTypes, "client_credentials") {
			t.Skip("client_credentials not offered (a gateway without --clients)")
		}
		if !slices.Contains(c.AuthMethods, "private_key_jwt") || !slices.Contains(c.Capabilities, "client-confidential-asymmetric") ||
			!slices.Contains(c.SigningAlgs, "RS384") && !slices.Contains(c.SigningAlgs, "ES384") {
			t.Errorf("%+v", c)
		}
	})
	spec(t, "smart-app-launch conformance: the CapabilityStatement's rest.security names SMART-on-FHIR and the same token endpoint in oauth-uris", func(t *testing.T) {
		c := discover(t)
		r := do(t, srv.anon, "GET", "metadata", nil)
		wantStatus(t, r, 200)
		var cs struct {
			Rest []struct {
				Security struct {
					Extension []struct {
						URL       string `json:"url"`
						Extension []struct {
							URL      string `json:"url"`
							ValueURI string `json:"valueUri"`
						} `json:"extension"`
					} `json:"extension"`
					Service []struct {
						Coding []struct{ System, Code string } `json:"coding"`
					} `json:"service"`
				} `json:"security"`
			} `json:"rest"`
		}
		if err := json.Unmarshal(r.Body, &cs); err != nil || len(cs.Rest) == 0 {
			t.Fatalf("CapabilityStatement: %v", err)
		}
		sec := cs.Rest[0].Security
		smartService := slices.ContainsFunc(sec.Service, func(s struct {
			Coding []struct{ System, Code string } `json:"coding"`
		}) bool {
			return slices.ContainsFunc(s.Coding, func(c struct{ System, Code string }) bool {
				return c.System == "http://terminology.hl7.org/CodeSystem/restful-security-service" && c.Code == "SMART-on-FHIR"
			})
		})
		if !smartService {
			t.Errorf("rest.security.service lacks SMART-on-FHIR: %+v", sec.Service)
		}
		token := ""
		for _, e := range sec.Extension {
			if e.URL == "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris" {
				for _, x := range e.Extension {
					if x.URL == "token" {
						token = x.ValueURI
					}
				}
			}
		}
		if token != c.TokenEndpoint {
			t.Errorf("oauth-uris token %q, well-known token_endpoint %q", token, c.TokenEndpoint)
		}
	})
	spec(t, "rfc6749 5.2: the token endpoint answers a request without client credentials with an OAuth error, not 404", func(t *testing.T) {
		c := discover(t)
		r := do(t, srv.anon, "POST", c.TokenEndpoint, []byte("grant_type=client_credentials&scope=system%2FPatient.rs"),
			"Content-Type", "application/x-www-form-urlencoded", "Accept", "application/json")
		if r.Status != 400 && r.Status != 401 {
			t.Fatalf("status %d, want 400 or 401: %.300s", r.Status, r.Body)
		}
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(r.Body, &e) != nil || !slices.Contains([]string{"invalid_request", "invalid_client", "unsupported_grant_type", "unauthorized_client"}, e.Error) {
			t.Fatalf("not an OAuth error: %.300s", r.Body)
		}
	})
	spec(t, "fhirgate sign_in_with_ethereum: the advertised nonce endpoint issues a nonce without a token", func(t *testing.T) {
		c := discover(t)
		if c.SignInWithEthereum == nil {
			t.Skip("no sign_in_with_ethereum extension (not a fhirgate, or wallets not offered)")
		}
		if c.SignInWithEthereum.ChainID == 0 || !strings.HasPrefix(c.SignInWithEthereum.SignInEndpoint, "http") {
			t.Errorf("%+v", c.SignInWithEthereum)
		}
		r := do(t, srv.anon, "GET", c.SignInWithEthereum.NonceEndpoint, nil)
		wantStatus(t, r, 200)
		var n struct {
			Nonce string `json:"nonce"`
		}
		if json.Unmarshal(r.Body, &n) != nil || len(n.Nonce) < 8 {
			t.Fatalf("nonce answer %.200s", r.Body)
		}
	})
}
