package rest

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/fhirgate/fhirgate/auth"
	"github.com/fhirgate/fhirgate/auth/siwe"
	"github.com/fhirgate/fhirgate/auth/smart"
)

// TestSmartDiscovery: GET [base]/.well-known/smart-configuration and the
// root one answer without a token, with and without a client registry
// (--clients); without one the document says client_credentials is not
// offered and the token endpoint answers an OAuth error instead of 404.
// The CapabilityStatement names the same token endpoint in oauth-uris.
func TestSmartDiscovery(t *testing.T) {
	const tokenURL = "http://test/auth/token"
	withSIWE := func(t *testing.T, s *Server) {
		key, err := auth.LoadOrCreateKey(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		svc, err := siwe.New(siwe.Config{Domain: "test", Origin: "http://test", ChainID: 1337, Key: key, Resolve: WalletResolver(s.store)})
		if err != nil {
			t.Fatal(err)
		}
		s.cfg.SIWE = svc
	}
	withClients := func(t *testing.T, s *Server) {
		reg, err := smart.LoadRegistry("../../auth/smart/testdata/clients.json")
		if err != nil {
			t.Fatal(err)
		}
		key, _ := auth.LoadOrCreateKey(t.TempDir())
		if s.cfg.SMART, err = smart.New(smart.Config{Key: key, Registry: reg, TokenURL: tokenURL}); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name                string
		setup               []func(*testing.T, *Server)
		grants, caps, scope string
		siwe, note          bool
	}{
		{name: "no clients, no wallets", grants: "", caps: "permission-v1 permission-v2", note: true},
		{name: "wallets only (gateway without --clients)", setup: []func(*testing.T, *Server){withSIWE},
			grants: "", caps: "permission-v1 permission-v2", siwe: true, note: true},
		{name: "wallets and clients", setup: []func(*testing.T, *Server){withSIWE, withClients},
			grants: "client_credentials", caps: "client-confidential-asymmetric permission-v1 permission-v2", scope: "system/*.cruds", siwe: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := newTestServer(t)
			for _, f := range tc.setup {
				f(t, s)
			}
			for _, path := range []string{"/fhir/.well-known/smart-configuration", "/.well-known/smart-configuration", "/fhir/.well-known/smart-configuration/"} {
				res := serve(s, "GET", path, "", "", nil)
				if res.StatusCode() != 200 || !strings.HasPrefix(string(res.Header.ContentType()), "application/json") {
					t.Fatalf("GET %s without a token: %d %s %s", path, res.StatusCode(), res.Header.ContentType(), res.Body())
				}
				var doc struct {
					smart.Configuration
					Authorize *string `json:"authorization_endpoint"`
					Issuer    *string `json:"issuer"`
				}
				if err := json.Unmarshal(res.Body(), &doc); err != nil {
					t.Fatal(err)
				}
				c := doc.Configuration
				if c.TokenEndpoint != tokenURL || strings.Join(c.GrantTypesSupported, " ") != tc.grants ||
					strings.Join(c.Capabilities, " ") != tc.caps || strings.Join(c.CodeChallengeMethodsSupported, " ") != "S256" {
					t.Fatalf("%s: %s", path, res.Body())
				}
				if tc.grants != "" && (strings.Join(c.TokenEndpointAuthMethodsSupported, " ") != "private_key_jwt" ||
					strings.Join(c.TokenEndpointAuthSigningAlgValuesSupported, " ") != "RS384 ES384" || !strings.Contains(strings.Join(c.ScopesSupported, " "), tc.scope)) {
					t.Fatalf("token endpoint auth: %s", res.Body())
				}
				if (c.BackendServices != "") != tc.note {
					t.Fatalf("backend_services %q", c.BackendServices)
				}
				if doc.Authorize != nil || doc.Issuer != nil {
					t.Fatal("authorization_endpoint or issuer advertised: the gateway has no App Launch nor OpenID Connect")
				}
				if w := c.SignInWithEthereum; (w != nil) != tc.siwe {
					t.Fatalf("sign_in_with_ethereum %+v", w)
				} else if w != nil {
					if w.NonceEndpoint != "http://test/auth/siwe/nonce" || w.SignInEndpoint != "http://test/auth/siwe" || w.Domain != "test" ||
						w.URIOrigin != "http://test" || w.ChainID != 1337 || w.NonceLifetime != 300 || w.MessageMaxAge != 600 ||
						w.ClockSkew != 60 || w.TokenLifetime != 3600 || w.Scopes["patient"] != siwe.DefaultScopes["patient"] {
						t.Fatalf("sign_in_with_ethereum %+v", w)
					}
				}
			}

			// The token endpoint: an OAuth error, never a 404.
			res := serve(s, "POST", "/auth/token", "application/x-www-form-urlencoded", "", []byte("grant_type=client_credentials"))
			var oe smart.Error
			json.Unmarshal(res.Body(), &oe)
			if tc.grants == "" && (res.StatusCode() != 400 || oe.Code != "unsupported_grant_type" || !strings.Contains(oe.Description, "--clients")) ||
				tc.grants != "" && (res.StatusCode() != 401 || oe.Code != "invalid_client") {
				t.Fatalf("POST /auth/token: %d %s", res.StatusCode(), res.Body())
			}

			// The CapabilityStatement: oauth-uris with the token endpoint,
			// service SMART-on-FHIR.
			res = serve(s, "GET", "/fhir/metadata", "", "", nil)
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
						Description string `json:"description"`
					} `json:"security"`
				} `json:"rest"`
			}
			if err := json.Unmarshal(res.Body(), &cs); err != nil || len(cs.Rest) != 1 {
				t.Fatalf("metadata: %v %s", err, res.Body())
			}
			sec := cs.Rest[0].Security
			if len(sec.Extension) != 1 || sec.Extension[0].URL != "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris" ||
				len(sec.Extension[0].Extension) != 1 || sec.Extension[0].Extension[0].URL != "token" || sec.Extension[0].Extension[0].ValueURI != tokenURL {
				t.Fatalf("security.extension %+v", sec.Extension)
			}
			if len(sec.Service) != 1 || sec.Service[0].Coding[0].Code != "SMART-on-FHIR" ||
				sec.Service[0].Coding[0].System != "http://terminology.hl7.org/CodeSystem/restful-security-service" {
				t.Fatalf("security.service %+v", sec.Service)
			}
			if strings.Contains(sec.Description, "Backend Services are not offered") != (tc.grants == "") {
				t.Fatalf("security.description %q", sec.Description)
			}
		})
	}
}
