package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fhirgate/fhirgate/auth"
	"github.com/fhirgate/fhirgate/internal/redistest"
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
