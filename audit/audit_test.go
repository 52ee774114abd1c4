package audit

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fhirgate/fhirgate/fhir"
	"github.com/fhirgate/fhirgate/fhir/fhirjson"
	"github.com/fhirgate/fhirgate/fhir/search"
	"github.com/fhirgate/fhirgate/policy"
	"github.com/fhirgate/fhirgate/store"
	"github.com/fhirgate/fhirgate/store/pebble"
)

// openTrail returns a store on a real Pebble engine whose AuditEvents are
// the trail's, as the gateway wires them.
func openTrail(t testing.TB, e store.Engine) (*store.Store, *Trail) {
	t.Helper()
	if e == nil {
		db, err := pebble.New(context.Background(), pebble.Config{Dir: t.TempDir(), CacheBytes: 8 << 20})
		if err != nil {
			t.Fatal(err)
		}
		e = db
	}
	tr, err := OpenTrail(context.Background(), e)
	if err != nil {
		t.Fatal(err)
	}
	s := store.New(e, store.Options{Virtual: map[string]store.Virtual{"AuditEvent": tr}})
	t.Cleanup(func() { s.Close() })
	return s, tr
}

var doctor = &policy.Principal{Subject: "Practitioner/doc", Role: policy.RolePractitioner, Resource: "Practitioner/doc",
	Wallet: "eip155:1337:0x70997970C51812dc3A010C7d01b50e0d17dc79C8", ClientID: "portal"}

// TestEventsAreValidAuditEvents checks the direct rendering against the
// general path: each event is a valid R4 AuditEvent, its bytes are
// canonical, its index values are what search.Extract finds, and it lands
// in the compartments of the patients it concerns.
func TestEventsAreValidAuditEvents(t *testing.T) {
	patient := &policy.Principal{Subject: "did:pkh:eip155:1337:0xabc", Role: policy.RolePatient, Resource: "Patient/p9",
		Wallet: "eip155:1337:0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC", ClientID: "portal"}
	system := &policy.Principal{Subject: "client/ehr", Role: policy.RoleSystem, ClientID: "client/ehr"}
	at := time.Date(2026, 11, 21, 10, 15, 22, 117339_123, time.UTC)
	events := []Event{
		{Principal: doctor, Interaction: "read", Outcome: Success, Reason: "granted by Patient/p1",
			Entities: []string{"DiagnosticReport/r1/_history/2"}, Patients: []string{"Patient/p1"}, Source: "127.0.0.1"},
		{Principal: doctor, Interaction: "read", Outcome: Success, BreakGlass: "patient unconscious \"ER\"\n",
			Entities: []string{"DiagnosticReport/r2"}, Patients: []string{"Patient/p2"}},
		{Principal: system, Interaction: "search-type", Outcome: Success, Query: "DiagnosticReport?subject=Patient/p1&code=1234",
			Entities: []string{"DiagnosticReport/r1/_history/1", "Patient/p1/_history/3"}, Patients: []string{"Patient/p1", "Patient/p3"}},
		{Principal: doctor, Interaction: "update", Outcome: MinorFailure, Reason: "no live consent"},
		{Principal: patient, Interaction: "read", Outcome: MinorFailure, Reason: "patients reach their own records only",
			Entities: []string{"Observation/o1"}, Patients: []string{"Patient/p1", "Patient/p1"}, Source: "::1"},
		{Principal: system, Interaction: "", Outcome: SeriousFailure, Reason: "ünïcode <&> \u2028"},
		{Principal: nil, Interaction: "transaction", Outcome: Success, Query: "x"},
	}
	for i, e := range events {
		body := e.JSON("01a1fd9a-7b05-762c-a992-ce9a00a49eb7", at)
		r, err := fhir.Parse(body)
		if err != nil {
			t.Fatalf("event %d is not a valid AuditEvent: %v\n%s", i, err, body)
		}
		if c := fhirjson.Canonical(&r.Root); !bytes.Equal(c, body) {
			t.Fatalf("event %d is not canonical:\n got %s\nwant %s", i, body, c)
		}
		want, err := search.Extract("AuditEvent", &r.Root)
		if err != nil {
			t.Fatal(err)
		}
		if got := e.Index(at); !sameIndex(got, want) {
			t.Fatalf("event %d index values differ from search.Extract:\n got %+v\nwant %+v", i, got, want)
		}
		members := search.Members("AuditEvent", "x", want)
		for _, p := range e.Patients {
			if !slices.Contains(members, p) {
				t.Errorf("event %d is not in %s's compartment: %v", i, p, members)
			}
		}
		if e.Principal == patient && slices.Contains(members, patient.Resource) {
			t.Errorf("event %d puts a patient's attempt in their own compartment", i)
		}
	}
	if s := string(events[1].JSON("x", at)); !strings.Contains(s, "110113") || !strings.Contains(s, `"BTG"`) {
		t.Errorf("break-glass event is not a security alert: %s", s)
	}
}

// sameIndex compares index values as sets (the store writes each key
// once).
func sameIndex(a, b []store.IndexValue) bool {
	set := func(vs []store.IndexValue) map[string]bool {
		m := map[string]bool{}
		for _, v := range vs {
			m[fmt.Sprintf("%+v", v)] = true
		}
		return m
	}
	return maps.Equal(set(a), set(b))
}
