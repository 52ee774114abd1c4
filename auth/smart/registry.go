package smart

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/fhirgate/fhirgate/policy"
)

// Registry is the set of registered backend clients, loaded from a JSON
// file (gateway serve --clients clients.json). It is immutable; load a new
// one and Server.SetRegistry to change it.
//
// File format (see testdata/clients.json):
//
//	{
//	  "clients": [
//	    {
//	      "client_id": "ehr-east",          // required, unique, printable ASCII, no spaces
//	      "name": "East Wing EHR",          // optional, for operators and logs
//	      "role": "system",                 // system (default), admin or regulator
//	      "scope": "system/*.rs system/Appointment.cu",
//	                                        // required: the scopes the client may be granted
//	                                        // (system/ context only; SMART v2 or v1 syntax)
//	      "jwks": {"keys": [ ... ]},        // public JWKs inline, and/or
//	      "jwks_file": "ehr-east.jwks.json",// a JWK Set file, relative to this file's directory
//	      "jwks_uri": "https://ehr-east.example/jwks.json",
//	                                        // optional: the only jku header value accepted
//	                                        // (not fetched: keys come from jwks/jwks_file)
//	      "disabled": false                 // true refuses the client without deleting it
//	    }
//	  ]
//	}
//
// Keys: RSA keys (kty RSA, n, e; 2048 to 8192 bits) verify RS384, EC
// P-384 keys (kty EC, crv P-384, x, y) verify ES384. Every key needs a kid.
// Keys of other kinds (P-256, "use": "enc", an "alg" other than RS384 or
// ES384) are ignored, but each client needs at least one usable key. A
// JWKS holding private or symmetric key material is refused. Unknown
// members of the file (not of the JWKs) are refused, to catch typos such
// as "scopes".
type Registry struct {
	clients map[string]*Client
}

// Client is one registered backend client.
type Client struct {
	ID       string
	Name     string
	Role     policy.Role
	Scopes   policy.Scopes // the scopes it may be granted
	JWKSURI  string
	Disabled bool
	keys     []verifyKey
}

// key returns the client's key for kid and alg, if it has exactly one.
func (c *Client) key(kid, alg string) (any, bool) {
	i := slices.IndexFunc(c.keys, func(k verifyKey) bool { return k.kid == kid && k.alg == alg })
	if i < 0 {
		return nil, false
	}
	return c.keys[i].pub, true
}

type clientEntry struct {
	ClientID string          `json:"client_id"`
	Name     string          `json:"name"`
	Role     policy.Role     `json:"role"`
	Scope    string          `json:"scope"`
	JWKS     json.RawMessage `json:"jwks"`
	JWKSFile string          `json:"jwks_file"`
	JWKSURI  string          `json:"jwks_uri"`
	Disabled bool            `json:"disabled"`
}

// LoadRegistry reads a client registry file.
func LoadRegistry(path string) (*Registry, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("smart: clients: %w", err)
	}
	r, err := ParseRegistry(data, filepath.Dir(path))
	if err != nil {
		return nil, fmt.Errorf("smart: %s: %w", path, err)
	}
	return r, nil
}

// ParseRegistry parses a client registry; relative jwks_file paths are
// resolved against dir.
func ParseRegistry(data []byte, dir string) (*Registry, error) {
	var file struct {
		Clients []clientEntry `json:"clients"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&file); err != nil {
		return nil, fmt.Errorf("clients: %w", err)
	}
	if dec.More() {
		return nil, errors.New("clients: trailing data after the JSON object")
	}
	r := &Registry{clients: make(map[string]*Client, len(file.Clients))}
	for i, e := range file.Clients {
		c, err := e.client(dir)
		if err != nil {
			return nil, fmt.Errorf("client %d (%q): %w", i, e.ClientID, err)
		}
		if _, dup := r.clients[c.ID]; dup {
			return nil, fmt.Errorf("client %d: client_id %q registered twice", i, c.ID)
		}
		r.clients[c.ID] = c
	}
	return r, nil
}

func (e *clientEntry) client(dir string) (*Client, error) {
	if !validClientID(e.ClientID) {
		return nil, errors.New("client_id must be 1 to 255 printable ASCII characters without spaces")
	}
	c := &Client{ID: e.ClientID, Name: e.Name, Role: e.Role, JWKSURI: e.JWKSURI, Disabled: e.Disabled}
	switch c.Role {
	case "":
		c.Role = policy.RoleSystem
	case policy.RoleSystem, policy.RoleAdmin, policy.RoleRegulator:
	default:
		return nil, fmt.Errorf("role %q: a backend client is system, admin or regulator", e.Role)
	}
	sc, err := policy.ParseScopes(e.Scope)
	if err != nil {
		return nil, fmt.Errorf("scope: %w", err)
	}
	if len(sc.Clinical) == 0 && len(sc.Other) == 0 {
		return nil, errors.New("scope: list the scopes the client may be granted")
	}
	for _, s := range sc.Clinical {
		if s.Context != "system" {
			return nil, fmt.Errorf("scope %s: backend clients get system/ scopes only", s)
		}
	}
	c.Scopes = sc
	if len(e.JWKS) > 0 && string(e.JWKS) != "null" {
		keys, err := parseJWKS(e.JWKS)
		if err != nil {
			return nil, err
		}
		c.keys = append(c.keys, keys...)
	}
	if e.JWKSFile != "" {
		path := e.JWKSFile
		if !filepath.IsAbs(path) {
			path = filepath.Join(dir, path)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("jwks_file: %w", err)
		}
		keys, err := parseJWKS(data)
		if err != nil {
			return nil, fmt.Errorf("jwks_file: %w", err)
		}
		for _, k := range keys {
			if _, dup := c.key(k.kid, k.alg); dup {
				return nil, fmt.Errorf("jwks_file: kid %q is also in jwks", k.kid)
			}
			c.keys = append(c.keys, k)
		}
	}
	if len(c.keys) == 0 {
		return nil, errors.New("no usable key: register an RSA (RS384) or EC P-384 (ES384) public key with a kid")
	}
	return c, nil
}

func validClientID(s string) bool {
	if len(s) == 0 || len(s) > 255 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return false
		}
	}
	return true
}

// Client returns the registered client with the given id.
func (r *Registry) Client(id string) (*Client, bool) {
	c, ok := r.clients[id]
	return c, ok
}

// Clients returns every registered client, sorted by id.
func (r *Registry) Clients() []*Client {
	out := make([]*Client, 0, len(r.clients))
	for _, c := range r.clients {
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b *Client) int {
		switch {
		case a.ID < b.ID:
			return -1
		case a.ID > b.ID:
			return 1
		}
		return 0
	})
	return out
}
