package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/fhirgate/fhirgate/auth"
	"github.com/fhirgate/fhirgate/auth/siwe"
	"github.com/fhirgate/fhirgate/policy"
)

// token prints one access token and nothing else on stdout, signed with
// the store's signing key, so every replica on that store accepts it.
// With --store redis://… it reads the key from Redis (creating it on a new
// store, as the first replica would). On Pebble it reads the key file the
// gateway keeps equal to the store's key (Pebble admits one process, so
// it works while serve runs on the same directory), and opens the store
// only when that file is missing.
func token(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("token", stderr)
	data := fs.String("data", "./data", "data directory (with Pebble: holding the signing key)")
	var sc storeConfig
	sc.register(fs)
	scope := fs.String("scope", "", "space-separated SMART scopes, e.g. 'system/*.cruds' (required for system; other roles default to their usual scopes)")
	sub := fs.String("sub", auth.DefaultSubject, "subject of the token (the client it acts as)")
	ttl := fs.Duration("ttl", time.Hour, "lifetime of the token")
	role := fs.String("role", string(policy.RoleSystem), "role: system, patient, practitioner, admin, regulator or applicant")
	aud := fs.String("aud", "", "audience (default: this gateway)")
	fhirUser := fs.String("fhir-user", "", "the person's record for patient and practitioner tokens: Patient/<id> or Practitioner/<id>")
	wallet := fs.String("wallet", "", "the wallet a person's token is bound to, as a wallet sign-in binds it: eip155:<chainId>:<address> (required for --role applicant; the gateway then checks on every request that the wallet still speaks for the token)")
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
		if policy.Role(*role) == policy.RoleAdmin {
			*scope += adminScopes // as an administrator's wallet sign-in
		}
	}
	key, err := tokenKey(context.Background(), sc, *data, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "gateway token: %v\n", err)
		return 1
	}
	subject := *sub
	if *fhirUser != "" && subject == auth.DefaultSubject {
		subject = "" // a person's token is named after their record
	} else if *wallet != "" && subject == auth.DefaultSubject {
		subject = "did:pkh:" + *wallet // or their wallet, as a sign-in names it
	}
	tok, err := key.Mint(auth.Grant{Subject: subject, Role: policy.Role(*role), Scope: *scope, TTL: *ttl, Audience: *aud, FHIRUser: *fhirUser, Wallet: *wallet}, time.Now())
	if err != nil {
		fmt.Fprintf(stderr, "gateway token: %v\n", err)
		return 2
	}
	fmt.Fprintln(stdout, tok)
	return 0
}

// tokenKey returns the signing key of the store sc (see token).
func tokenKey(ctx context.Context, sc storeConfig, data string, stderr io.Writer) (*auth.Key, error) {
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if sc.shared() {
		db, err := openEngine(ctx, sc, "", log)
		if err != nil {
			return nil, err
		}
		defer db.Close()
		return auth.LoadOrCreateStoredKey(ctx, db, "")
	}
	path := filepath.Join(data, auth.KeyFile)
	_, err := os.Stat(path)
	if err == nil {
		return auth.LoadOrCreateKey(data) // the gateway keeps it equal to the store's
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(data, "store")); errors.Is(err, os.ErrNotExist) {
		// A new data directory: the gateway imports this key at its start.
		return auth.LoadOrCreateKey(data)
	}
	// A store but no key file: the gateway is not running (it would have
	// written the file), so the store can be opened.
	db, err := openEngine(ctx, sc, data, log)
	if err != nil {
		return nil, fmt.Errorf("%w (the key file %s is missing: restarting the gateway writes it again)", err, path)
	}
	defer db.Close()
	return auth.LoadOrCreateStoredKey(ctx, db, data)
}
