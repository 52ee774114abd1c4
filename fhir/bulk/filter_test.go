package bulk

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/fhirgate/fhirgate/policy"
	"github.com/fhirgate/fhirgate/store"
	"github.com/fhirgate/fhirgate/store/pebble"
)

// TestTypeFilterAtScale: a _typeFilter is checked resource by resource
// as the type is streamed (each body's index values against the store's
// matcher), so an export of a few thousand resources keeps the matches
// only, and costs a parse per resource of a filtered type, not a search
// result held in memory. The test logs the time and the bytes allocated
// per resource, filtered and not.
func TestTypeFilterAtScale(t *testing.T) {
	const n = 3000
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	db, err := pebble.New(ctx, pebble.Config{Dir: t.TempDir(), CacheBytes: 8 << 20})
	if err != nil {
		t.Fatal(err)
	}
	st := store.New(db, store.Options{})
	defer st.Close()
	now := time.Now().UTC().Truncate(time.Microsecond)
	var ws []store.Write
	for i := range n {
		id := fmt.Sprintf("o%05d", i)
		body := fmt.Sprintf(`{"resourceType":"Observation","id":%q,"meta":{"versionId":"1","lastUpdated":%q},"status":"final","code":{"coding":[{"system":"http://loinc.org","code":"c%d"}],"text":"reading %d"},"subject":{"reference":"Patient/p%d"},"valueQuantity":{"value":%d,"unit":"mg"}}`,
			id, now.Format(time.RFC3339Nano), i%3, i, i%50, i)
		ws = append(ws, store.Write{New: store.Version{Type: "Observation", ID: id, VID: 1, LastUpdated: now,
			Author: "client/ehr", Creator: "client/ehr", Compartments: []string{fmt.Sprintf("Patient/p%d", i%50)}, Body: []byte(body)}})
		if len(ws) == 500 {
			if err := st.Commit(ctx, ws); err != nil {
				t.Fatal(err)
			}
			ws = ws[:0]
		}
	}
	x := New(Config{Store: st, Types: []string{"Observation"}, Poll: 10 * time.Millisecond,
		Decide: func(*policy.Principal, *store.Version) policy.Decision { return policy.Decision{Allow: true} }})
	ran := make(chan struct{})
	go func() { defer close(ran); x.Run(ctx) }()
	defer func() { cancel(); <-ran }()
	scopes, err := policy.ParseScopes("system/*.rs")
	if err != nil {
		t.Fatal(err)
	}
	p := &policy.Principal{Subject: "client/ehr", Role: policy.RoleSystem, Scopes: scopes}

	export := func(filters ...string) (int, time.Duration, uint64) {
		t.Helper()
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		start := time.Now()
		id, err := x.Kickoff(ctx, p, Request{Level: System, Types: []string{"Observation"}, TypeFilters: filters, Base: "http://test/fhir"})
		if err != nil {
			t.Fatal(err)
		}
		for {
			s, err := x.Status(ctx, p, id)
			if err != nil {
				t.Fatal(err)
			}
			if s.Done {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		took := time.Since(start)
		runtime.ReadMemStats(&after)
		s, _ := x.Status(ctx, p, id)
		var m struct{ Output []struct{ Count int } }
		if err := json.Unmarshal(s.Manifest, &m); err != nil {
			t.Fatal(err)
		}
		count := 0
		for i := range m.Output {
			count += m.Output[i].Count
			_, write, err := x.File(ctx, p, id, i+1)
			if err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			if err := write(&buf); err != nil {
				t.Fatal(err)
			}
			for line := range bytes.Lines(buf.Bytes()) {
				if len(filters) > 0 && !bytes.Contains(line, []byte(`"code":"c1"`)) && !bytes.Contains(line, []byte(`"value":8,`)) {
					t.Fatalf("exported a resource no filter matches: %s", line)
				}
			}
		}
		return count, took, (after.TotalAlloc - before.TotalAlloc) / n
	}
	all, tAll, bAll := export()
	some, tSome, bSome := export("Observation?code=http://loinc.org|c1", "Observation?value-quantity=8")
	if all != n || some != n/3+1 {
		t.Fatalf("exported %d unfiltered (want %d), %d filtered (want %d)", all, n, some, n/3+1)
	}
	t.Logf("%d Observations: unfiltered %v (%d B allocated per resource); two _typeFilter %v (%d B per resource)", n, tAll, bAll, tSome, bSome)
}
