package main

import (
	"fmt"
	"io"
	"time"

	"github.com/fhirgate/fhirgate/auth"
	"github.com/fhirgate/fhirgate/auth/siwe"
	"github.com/fhirgate/fhirgate/policy"
)

// token prints one access token and nothing else on stdout. It reads only
// the signing key (creating it if the data directory is new) and never
// opens the store, so it works while serve runs on the same directory.
func token(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("token", stderr)
	data := fs.String("data", "./data", "data directory holding the signing key")
	scope := fs.String("scope", "", "space-separated SMART scopes, e.g. 'system/*.cruds' (required for system; other roles default to their usual scopes)")
	sub := fs.String("sub", auth.DefaultSubject, "subject of the token (the client it acts as)")
	ttl := fs.Duration("ttl", time.Hour, "lifetime of the token")
	role := fs.String("role", string(policy.RoleSystem), "role: system, patient, practitioner, admin or regulator")
	aud := fs.String("aud", "", "audience (default: this gateway)")
	fhirUser := fs.String("fhir-user", "", "the person's record for patient and practitioner tokens: Patient/<id> or Practitioner/<id>")
	if err := parse(fs, args); err != nil {
		fmt.Fprintf(stderr, "gateway token: %v\n", err)
		return 2
	}
	if *scope == "" {
		// People and officers get their role's usual ceiling; a system
		// client must say what it needs.
		if *scope = siwe.DefaultScopes[policy.Role(*role)]; *scope == "" {
			fmt.Fprintln(stderr, "gateway token: --scope is required (for example --scope 'system/*.cruds')")
			return 2
		}
	}
	key, err := auth.LoadOrCreateKey(*data)
	if err != nil {
		fmt.Fprintf(stderr, "gateway token: %v\n", err)
		return 1
	}
	subject := *sub
	if *fhirUser != "" && subject == auth.DefaultSubject {
		subject = "" // a person's token is named after their record
	}
	tok, err := key.Mint(auth.Grant{Subject: subject, Role: policy.Role(*role), Scope: *scope, TTL: *ttl, Audience: *aud, FHIRUser: *fhirUser}, time.Now())
	if err != nil {
		fmt.Fprintf(stderr, "gateway token: %v\n", err)
		return 2
	}
	fmt.Fprintln(stdout, tok)
	return 0
}
