package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fhirgate/fhirgate/fhir"
	"github.com/fhirgate/fhirgate/fhir/search"
	"github.com/fhirgate/fhirgate/store"
	"github.com/fhirgate/fhirgate/store/pebble"
)

// TestReindexMatchesFreshStore loads the official examples into two
// stores: one indexed as writes normally are, one with no index at all (a
// table that changed). After `gateway reindex` on the second, every search
// built from the first store's index values gives the same results on both.
func TestReindexMatchesFreshStore(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("..", "..", "..", "shared", "corpus", "examples", "*", "*.json"))
	if len(files) == 0 {
		if os.Getenv("FHIRGATE_REQUIRE_SERVICES") == "1" {
			t.Fatal("shared corpus missing")
		}
		t.Skip("SKIPPED: shared corpus not found")
	}
	ctx := context.Background()
	open := func(dir string) *store.Store {
		db, err := pebble.New(ctx, pebble.Config{Dir: filepath.Join(dir, "store"), CacheBytes: 8 << 20})
		if err != nil {
			t.Fatal(err)
		}
		return store.New(db, store.Options{Shared: shared})
	}
	freshDir, staleDir := t.TempDir(), t.TempDir()
	fresh, stale := open(freshDir), open(staleDir)
	defer fresh.Close()
	var queries []string // "Type?param=value"
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, f := range files {
		body, _ := os.ReadFile(f)
		res, err := fhir.Parse(body)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if res.ID == "" {
			continue
		}
		stamped := res.Stamp(res.ID, 1, at)
		idx, err := search.Extract(res.Type, &res.Root)
		if err != nil {
			t.Fatal(err)
		}
		v := store.Version{Type: res.Type, ID: res.ID, VID: 1, LastUpdated: at, Method: store.MethodUpdate, Body: stamped}
		if err := fresh.Commit(ctx, []store.Write{{New: v, Index: idx}}); err != nil {
			t.Fatal(err)
		}
		if err := stale.Commit(ctx, []store.Write{{New: v}}); err != nil {
			t.Fatal(err)
		}
		for _, iv := range idx {
			if q := queryFor(res.Type, iv); q != "" {
				queries = append(queries, q)
			}
		}
	}
	stale.Close()

	var out bytes.Buffer
	if code := run([]string{"reindex", "--data", staleDir}, &out, &out); code != 0 {
		t.Fatalf("gateway reindex: exit %d: %s", code, out.String())
	}
	if !strings.HasPrefix(out.String(), "reindexed ") {
		t.Fatalf("output %q", out.String())
	}
	reindexed := open(staleDir)
	defer reindexed.Close()

	if len(queries) < 500 {
		t.Fatalf("only %d queries", len(queries))
	}
	for _, q := range queries {
		typ, raw, _ := strings.Cut(q, "?")
		params, _ := url.ParseQuery(raw)
		sq, err := search.ParseQuery(typ, params, search.Options{})
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		want := ids(t, fresh, sq.Store)
		got := ids(t, reindexed, sq.Store)
		if want != got {
			t.Fatalf("%s: fresh store %s, after reindex %s", q, want, got)
		}
		if want == "[]" {
			t.Fatalf("%s finds nothing even in the fresh store", q)
		}
	}
	t.Logf("%d searches identical after reindex", len(queries))
}

func ids(t *testing.T, s *store.Store, q store.Query) string {
	q.Count = 10000
	page, err := s.Search(context.Background(), &q)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprint(page.IDs)
}

// queryFor builds a search that should find a resource holding iv.
func queryFor(typ string, iv store.IndexValue) string {
	esc := func(s string) string {
		return url.QueryEscape(strings.NewReplacer(`\`, `\\`, ",", `\,`, "|", `\|`, "$", `\$`).Replace(s))
	}
	p := typ + "?" + url.QueryEscape(iv.Param) + "="
	switch iv.Kind {
	case store.IndexString:
		if pd, ok := search.Lookup(typ, iv.Param); iv.Text == "" || !ok || pd.Phonetic {
			return "" // a phonetic index holds codes, not what clients send
		}
		return p + esc(iv.Text)
	case store.IndexToken:
		if iv.Code == "" {
			return ""
		}
		if iv.Param == "_id" {
			return p + esc(iv.Code)
		}
		return p + esc(iv.System) + "|" + esc(iv.Code)
	case store.IndexReference:
		if strings.Contains(iv.Ref, "://") || strings.HasPrefix(iv.Ref, "urn:") {
			return p + url.QueryEscape(iv.Ref)
		}
		return p + esc(iv.Ref)
	case store.IndexURI:
		return p + esc(iv.Text)
	case store.IndexDate:
		if iv.Lo < -62135596800000000 || iv.Hi > 253402300799999999 {
			return "" // open-ended periods
		}
		return p + "ge" + url.QueryEscape(time.UnixMicro(iv.Lo).UTC().Format(time.RFC3339Nano))
	}
	return ""
}

// TestReindexHoldsWallets: records linked to wallets before wallets were
// unique hold them after `gateway reindex`, so that no other record can
// be linked to them; a wallet two records already share is reported.
func TestReindexHoldsWallets(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	open := func() *store.Store {
		db, err := pebble.New(ctx, pebble.Config{Dir: filepath.Join(dir, "store"), CacheBytes: 8 << 20})
		if err != nil {
			t.Fatal(err)
		}
		return store.New(db, store.Options{Shared: shared})
	}
	st := open()
	const a, b = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8", "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"
	legacy := func(typ, id, addr string) {
		body := `{"resourceType":"` + typ + `","id":"` + id + `","identifier":[{"system":"https://chainagnostic.org/CAIPs/caip-10","value":"eip155:1337:` + addr + `"}]}`
		v := store.Version{Type: typ, ID: id, VID: 1, LastUpdated: time.Now(), Method: store.MethodCreate, Body: []byte(body)}
		if err := st.Commit(ctx, []store.Write{{New: v}}); err != nil {
			t.Fatal(err)
		}
	}
	legacy("Patient", "p1", a)
	legacy("Patient", "p2", a)
	legacy("Practitioner", "d1", b)
	st.Close()
	var out bytes.Buffer
	if code := run([]string{"reindex", "--data", dir}, &out, &out); code != 0 {
		t.Fatalf("gateway reindex: exit %d: %s", code, out.String())
	}
	if !strings.Contains(out.String(), "Patient/p2 and Patient/p1 are linked to one wallet") {
		t.Errorf("the shared wallet was not reported: %s", out.String())
	}
	st = open()
	defer st.Close()
	if h, err := st.UniqueHolder(ctx, "wallet:"+strings.ToLower(b)); err != nil || h != "Practitioner/d1" {
		t.Fatalf("wallet b held by %q, %v", h, err)
	}
	if h, _ := st.UniqueHolder(ctx, "wallet:"+strings.ToLower(a)); h != "Patient/p1" {
		t.Fatalf("wallet a held by %q", h)
	}
	v := store.Version{Type: "Patient", ID: "p3", VID: 1, LastUpdated: time.Now(), Method: store.MethodCreate, Body: []byte(`{}`)}
	if err := st.Commit(ctx, []store.Write{{New: v, HoldsUnique: true, Unique: []string{"wallet:" + strings.ToLower(b)}}}); !errors.Is(err, store.ErrTaken) {
		t.Fatalf("a third record took a held wallet: %v", err)
	}
}
