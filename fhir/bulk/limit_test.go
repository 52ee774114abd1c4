package bulk

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/fhirgate/fhirgate/policy"
	"github.com/fhirgate/fhirgate/store"
	"github.com/fhirgate/fhirgate/store/pebble"
)

// A caller with MaxJobs exports running is refused another (the jobs of
// other callers, and finished ones, do not count), so that no caller can
// fill the store with queued jobs.
func TestKickoffBoundedPerCaller(t *testing.T) {
	ctx := context.Background()
	db, err := pebble.New(ctx, pebble.Config{Dir: t.TempDir(), CacheBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	st := store.New(db, store.Options{})
	defer st.Close()
	x := New(Config{Store: st, MaxJobs: 2, Types: []string{"Patient"}})
	ehr := &policy.Principal{Subject: "client/ehr", Role: policy.RoleSystem}
	other := &policy.Principal{Subject: "client/other", Role: policy.RoleSystem}
	put := func(id string, p *policy.Principal, state string) {
		b, _ := json.Marshal(&job{ID: id, Principal: *p, State: state})
		var batch store.Batch
		batch.Set(jobKey(id), b)
		if err := db.Apply(ctx, &batch); err != nil {
			t.Fatal(err)
		}
	}
	put("a", ehr, stateRunning)
	put("b", ehr, stateComplete)
	put("c", other, stateRunning)
	put("d", other, stateRunning)
	if n, err := x.runningOf(ctx, ehr); err != nil || n != 1 {
		t.Fatalf("running of ehr: %d %v, want 1", n, err)
	}
	put("e", ehr, stateRunning)
	if _, err := x.Kickoff(ctx, ehr, Request{Level: System}); !errors.Is(err, ErrBusy) {
		t.Fatalf("a third export while two run: %v, want ErrBusy", err)
	}
	put("e", ehr, stateFailed)
	if n, err := x.runningOf(ctx, ehr); err != nil || n != 1 {
		t.Fatalf("after one failed: %d %v, want 1", n, err)
	}
	if n, err := x.runningOf(ctx, &policy.Principal{Subject: "client/ehr", Role: policy.RoleAdmin}); err != nil || n != 0 {
		t.Fatalf("another role with the same subject: %d %v, want 0", n, err)
	}
}
