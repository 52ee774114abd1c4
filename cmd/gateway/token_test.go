package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/fhirgate/fhirgate/auth"
	"github.com/fhirgate/fhirgate/internal/redistest"
	"github.com/fhirgate/fhirgate/policy"
	"github.com/fhirgate/fhirgate/store/redis"
)

// `gateway token --store redis://…` signs with the key in Redis: the key
// the replicas load (auth.LoadOrCreateStoredKey), whichever comes first.
func TestTokenFromRedisStore(t *testing.T) {
	srv := redistest.Start(t)
	prefix := redistest.Prefix(t)
	var out, errb bytes.Buffer
	if code := run([]string{"token", "--store", srv.URL(), "--store-prefix", prefix, "--scope", "system/*.rs"}, &out, &errb); code != 0 {
		t.Fatalf("gateway token: exit %d: %s", code, errb.String())
	}
	tok := strings.TrimSpace(out.String())
	ctx := context.Background()
	for i := range 2 { // two replicas, each with its own connection
		db, err := redis.Open(ctx, redis.Config{URL: srv.URL(), Prefix: prefix})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		key, err := auth.LoadOrCreateStoredKey(ctx, db, t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := auth.NewVerifier(key).Verify(tok); err != nil {
			t.Fatalf("replica %d refuses the token: %v", i, err)
		}
	}
	// Another keyspace has another key.
	out.Reset()
	if code := run([]string{"token", "--store", srv.URL(), "--store-prefix", prefix + "other:", "--scope", "system/*.rs"}, &out, &errb); code != 0 {
		t.Fatalf("gateway token: exit %d: %s", code, errb.String())
	}
	if strings.Split(strings.TrimSpace(out.String()), ".")[0] == strings.Split(tok, ".")[0] { // the header names the key
		t.Fatal("two keyspaces signed with one key")
	}
}

// On Pebble, `gateway token` reads the key file the gateway keeps equal to
// the store's key; with the file gone it reads the store (the gateway
// stopped) and the file is back.
func TestTokenFromPebbleStore(t *testing.T) {
	data := t.TempDir()
	ctx := context.Background()
	// A gateway's first start: the store is made and holds the key.
	db, err := openEngine(ctx, storeConfig{}, data, nil)
	if err != nil {
		t.Fatal(err)
	}
	key, err := auth.LoadOrCreateStoredKey(ctx, db, data)
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	mint := func() string {
		t.Helper()
		var out, errb bytes.Buffer
		if code := run([]string{"token", "--data", data, "--scope", "system/*.rs"}, &out, &errb); code != 0 {
			t.Fatalf("gateway token: exit %d: %s", code, errb.String())
		}
		return strings.TrimSpace(out.String())
	}
	v := auth.NewVerifier(key)
	if _, err := v.Verify(mint()); err != nil {
		t.Fatalf("token from the key file: %v", err)
	}
	if err := os.Remove(filepath.Join(data, auth.KeyFile)); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(mint()); err != nil {
		t.Fatalf("token with the key file gone: %v", err)
	}
	if f, err := auth.LoadOrCreateKey(data); err != nil || f.ID != key.ID {
		t.Fatalf("key file not written back: %v, %v", f, err)
	}
}

// `gateway token --wallet` binds a person's token to a wallet as a sign-in
// does: an applicant's token needs one.
func TestTokenWallet(t *testing.T) {
	data := t.TempDir()
	const w = "eip155:1337:0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
	for _, tc := range []struct {
		args    []string
		code    int
		role    string
		subject string
	}{
		{[]string{"--role", "applicant", "--wallet", w}, 0, "applicant", "did:pkh:" + w},
		{[]string{"--role", "admin", "--wallet", w}, 0, "admin", "did:pkh:" + w},
		{[]string{"--role", "applicant"}, 2, "", ""},
		{[]string{"--role", "applicant", "--wallet", "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"}, 2, "", ""},
	} {
		var out, errb bytes.Buffer
		code := run(append([]string{"token", "--data", data}, tc.args...), &out, &errb)
		if code != tc.code {
			t.Fatalf("%v: exit %d: %s", tc.args, code, errb.String())
		}
		if code != 0 {
			continue
		}
		key, err := auth.LoadOrCreateKey(data)
		if err != nil {
			t.Fatal(err)
		}
		p, err := auth.NewVerifier(key).Verify(strings.TrimSpace(out.String()))
		if err != nil {
			t.Fatal(err)
		}
		if string(p.Role) != tc.role || p.Wallet != w || p.Subject != tc.subject || p.Resource != "" ||
			(tc.role == "admin") != slices.Contains(p.Scopes.Other, policy.ScopeRegistrationAdmin) {
			t.Fatalf("%v: %+v", tc.args, p)
		}
	}
}
