package rest

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/fhirgate/fhirgate/auth"
	"github.com/fhirgate/fhirgate/fhir/search"
	"github.com/fhirgate/fhirgate/policy"
	"github.com/fhirgate/fhirgate/store"
	"github.com/fhirgate/fhirgate/store/storetest"
)

// TestRereadAcrossReplicas: two servers, each with its own Store (its own
// memory) over one engine that reports itself shared, as two replicas on
// one Redis. A read answers from the pointer its replica last saw and
// proves it current in its audit commit; when the other replica wrote in
// between, the proof fails and the read is answered again from the store.
// Hundreds of write-there/read-here pairs: no stale answer, every one
// caught, and reads of unchanged records answered without a reread.
func TestRereadAcrossReplicas(t *testing.T) {
	a := newAuditedParts(t)
	replica := func() *Server {
		st := store.New(storetest.SharedView(a.db), store.Options{Shared: search.Shared})
		if st.NewReadSet() == nil {
			t.Fatal("no ReadSet on a shared engine")
		}
		cfg := a.config(Config{})
		cfg.Store = st
		s := New(cfg)
		s.SetReady(true)
		return s
	}
	rs := [2]*Server{replica(), replica()}
	tok, err := a.key.Mint(auth.Grant{Scope: "system/*.cruds", TTL: time.Hour}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	res := serve(rs[0], "POST", "/fhir/Patient", mimeFHIRJSON, tok, []byte(`{"resourceType":"Patient","name":[{"family":"V1"}]}`))
	if res.StatusCode() != 201 {
		t.Fatalf("create: %d %s", res.StatusCode(), res.Body())
	}
	var created struct{ ID string }
	json.Unmarshal(res.Body(), &created)
	family := func(s *Server) (string, string) {
		t.Helper()
		res := serve(s, "GET", "/fhir/Patient/"+created.ID, "", tok, nil)
		if res.StatusCode() != 200 {
			t.Fatalf("read: %d %s", res.StatusCode(), res.Body())
		}
		var p struct {
			Meta struct{ VersionID string }
			Name []struct{ Family string }
		}
		if err := json.Unmarshal(res.Body(), &p); err != nil || len(p.Name) != 1 {
			t.Fatalf("read: %s %v", res.Body(), err)
		}
		return p.Name[0].Family, p.Meta.VersionID
	}
	rereads := func(s *Server) int { return int(testutil.ToFloat64(s.metrics.rereads)) }

	const pairs = 200
	for i := 2; i < pairs+2; i++ {
		w, r := rs[i%2], rs[(i+1)%2]
		family(r) // r holds what it read
		body := fmt.Sprintf(`{"resourceType":"Patient","id":"%s","name":[{"family":"V%d"}]}`, created.ID, i)
		if res := serve(w, "PUT", "/fhir/Patient/"+created.ID, mimeFHIRJSON, tok, []byte(body)); res.StatusCode() != 200 {
			t.Fatalf("update %d: %d %s", i, res.StatusCode(), res.Body())
		}
		if got, vid := family(r); got != fmt.Sprintf("V%d", i) || vid != fmt.Sprint(i) {
			t.Fatalf("pair %d: read %s (version %s) on the other replica after version %d was acknowledged", i, got, vid, i)
		}
	}
	if n := rereads(rs[0]) + rereads(rs[1]); n != pairs {
		t.Fatalf("%d rereads for %d stale hints", n, pairs)
	}
	// Nothing written since: answered from memory, proved, no reread; the
	// writer's own commit is its hint.
	before := rereads(rs[0]) + rereads(rs[1])
	for range 10 {
		family(rs[0])
		family(rs[1])
	}
	if n := rereads(rs[0]) + rereads(rs[1]); n != before {
		t.Fatalf("%d rereads of an unchanged record", n-before)
	}

	// The second pass decides again: a patient whose grant does not cover
	// the record gets the absent answer on both passes, and the trail
	// holds a refusal for each.
	other, err := a.key.Mint(auth.Grant{Scope: "patient/*.rs", FHIRUser: "Patient/someone-else", Role: policy.RolePatient, TTL: time.Hour}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	family(rs[1]) // rs[1] holds the current pointer
	body := fmt.Sprintf(`{"resourceType":"Patient","id":"%s","name":[{"family":"Last"}]}`, created.ID)
	if res := serve(rs[0], "PUT", "/fhir/Patient/"+created.ID, mimeFHIRJSON, tok, []byte(body)); res.StatusCode() != 200 {
		t.Fatalf("update: %d %s", res.StatusCode(), res.Body())
	}
	before = rereads(rs[1])
	if res := serve(rs[1], "GET", "/fhir/Patient/"+created.ID, "", other, nil); res.StatusCode() != 404 {
		t.Fatalf("another patient's read: %d %s", res.StatusCode(), res.Body())
	}
	if rereads(rs[1]) != before+1 {
		t.Fatal("the refused read's stale hint was not caught")
	}
	if got, _ := family(rs[1]); got != "Last" {
		t.Fatalf("after the refused read: %s", got)
	}
}
