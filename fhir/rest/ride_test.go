package rest

import (
	"context"
	"encoding/json"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fhirgate/fhirgate/auth"
	"github.com/fhirgate/fhirgate/store"
)

// countingEngine counts commits, and fails the next one when told to.
type countingEngine struct {
	store.Engine
	applies atomic.Int64
	fail    atomic.Bool
}

func (e *countingEngine) Apply(ctx context.Context, b *store.Batch) error {
	e.applies.Add(1)
	if e.fail.CompareAndSwap(true, false) {
		return store.ErrUnavailable
	}
	return e.Engine.Apply(ctx, b)
}

// TestWriteRidesItsEvent: a create or an update is one durable commit
// holding the version and its AuditEvent (the event is not kept without
// the write, nor the write without it); a write whose commit fails keeps
// neither, and its refusal is recorded as before; reads are recorded by
// the group commit.
func TestWriteRidesItsEvent(t *testing.T) {
	e := &countingEngine{}
	a := newAuditedPartsOver(t, func(db store.Engine) store.Engine { e.Engine = db; return e })
	s := New(a.config(Config{}))
	s.SetReady(true)
	rec := a.rec
	tok, err := a.key.Mint(auth.Grant{Scope: "system/*.cruds", TTL: time.Hour}, time.Now())
	if err != nil {
		t.Fatal(err)
	}

	commits := func(f func()) int64 {
		before := e.applies.Load()
		f()
		return e.applies.Load() - before
	}
	var id string
	if n := commits(func() {
		res := serve(s, "POST", "/fhir/Patient", mimeFHIRJSON, tok, []byte(`{"resourceType":"Patient","name":[{"family":"Ride"}]}`))
		if res.StatusCode() != 201 {
			t.Fatalf("create: %d %s", res.StatusCode(), res.Body())
		}
		var p struct{ ID string }
		json.Unmarshal(res.Body(), &p)
		id = p.ID
	}); n != 1 {
		t.Fatalf("a create took %d commits", n)
	}
	if n := commits(func() {
		res := serve(s, "PUT", "/fhir/Patient/"+id, mimeFHIRJSON, tok, []byte(`{"resourceType":"Patient","id":"`+id+`","name":[{"family":"Ride2"}]}`))
		if res.StatusCode() != 200 {
			t.Fatalf("update: %d %s", res.StatusCode(), res.Body())
		}
	}); n != 1 {
		t.Fatalf("an update took %d commits", n)
	}
	if rec.Written() != 0 {
		t.Fatalf("the group commit wrote %d events of writes", rec.Written())
	}
	// The events are those the middleware writes: who, what, the outcome.
	for _, tc := range []struct{ action, version string }{{"C", "1"}, {"U", "2"}} {
		evs := auditEvents(t, s, "entity=Patient/"+id+"&action="+tc.action)
		if len(evs) != 1 {
			t.Fatalf("%d events of action %s", len(evs), tc.action)
		}
		raw, _ := json.Marshal(evs[0])
		var ev struct {
			Outcome string
			Entity  []struct{ What struct{ Reference string } }
			Agent   []struct{ Requestor bool }
		}
		json.Unmarshal(raw, &ev)
		named := false
		for _, en := range ev.Entity {
			named = named || en.What.Reference == "Patient/"+id+"/_history/"+tc.version
		}
		if ev.Outcome != "0" || !named || len(ev.Agent) == 0 {
			t.Fatalf("event of action %s: %s", tc.action, raw)
		}
	}

	// A read's event goes by the group commit.
	if res := serve(s, "GET", "/fhir/Patient/"+id, "", tok, nil); res.StatusCode() != 200 || rec.Written() != 1 {
		t.Fatalf("read: %d, %d events by the group commit", res.StatusCode(), rec.Written())
	}

	// A create whose commit fails: no version and no success event; the
	// refusal is recorded by the group commit.
	e.fail.Store(true)
	res := serve(s, "POST", "/fhir/Patient", mimeFHIRJSON, tok, []byte(`{"resourceType":"Patient","name":[{"family":"Lost"}]}`))
	if res.StatusCode() != 503 {
		t.Fatalf("a create whose commit failed: %d %s", res.StatusCode(), res.Body())
	}
	if evs := auditEvents(t, s, "action=C&outcome=0"); len(evs) != 1 {
		t.Fatalf("%d successful create events, want the first create's only", len(evs))
	}
	if rec.Written() != 2 || len(auditEvents(t, s, "action=C&outcome=8")) != 1 {
		t.Fatalf("the failed create's event: %d by the group commit, %d failures", rec.Written(), len(auditEvents(t, s, "action=C&outcome=8")))
	}
}
