package audit

import (
	"bytes"
	"reflect"
	"testing"

	"github.com/fhirgate/fhirgate/fhir/fhirjson"
	"github.com/fhirgate/fhirgate/store"
)

// TestRecordedRecord: a recorded event's record decodes to what was
// encoded, and every truncation of it is refused, not misread.
func TestRecordedRecord(t *testing.T) {
	idx := []store.IndexValue{
		{Param: "date", Kind: store.IndexDate, Lo: -5, Hi: 1 << 50},
		{Param: "entity", Kind: store.IndexReference, Ref: "Patient/p1"},
		{Param: "outcome", Kind: store.IndexToken, System: "urn:x", Code: "0", Text: "ok"},
		{Param: "x", Kind: store.IndexNumber, Num: 2.5},
	}
	body := []byte(`{"resourceType":"AuditEvent"}`)
	b := appendRecorded(nil, "client/ehr", idx, body)
	r, err := decodeRecorded(b)
	if err != nil {
		t.Fatal(err)
	}
	if r.author != "client/ehr" || !reflect.DeepEqual(r.idx, idx) || !bytes.Equal(r.body, body) {
		t.Fatalf("decoded %+v", r)
	}
	for n := range len(b) - len(body) {
		if _, err := decodeRecorded(b[:n]); err == nil {
			t.Fatalf("a record cut at %d decoded", n)
		}
	}
}

func FuzzDecodeRecorded(f *testing.F) {
	f.Add(appendRecorded(nil, "client/ehr", []store.IndexValue{{Param: "entity", Kind: store.IndexReference, Ref: "Patient/p1"}}, []byte("{}")))
	f.Add([]byte{recordedV1, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeRecorded(b)
		if err != nil {
			return
		}
		// Varints may be over-long in b: what it decodes to must survive
		// encoding again.
		enc := appendRecorded(nil, r.author, r.idx, r.body)
		again, err := decodeRecorded(enc)
		if err != nil || !bytes.Equal(appendRecorded(nil, again.author, again.idx, again.body), enc) {
			t.Fatalf("a decoded record re-encodes to %+v, %v", again, err)
		}
	})
}

func TestGatewayClaim(t *testing.T) {
	for body, want := range map[string]string{
		`{"source":{"observer":{"display":"EHR"}},"agent":[{"who":{"display":"Dr X"}}]}`:                             "",
		`{"source":{"observer":{"display":" FhirGate "}}}`:                                                           "AuditEvent.source.observer",
		`{"source":{"observer":{"identifier":{"value":"fhirgate"}}}}`:                                                "AuditEvent.source.observer",
		`{"source":{"observer":{"reference":"https://gw.example/fhir/Device/fhirgate"}}}`:                            "AuditEvent.source.observer",
		`{"source":{"observer":{"display":"fhirgate-ehr"}}}`:                                                         "",
		`{"source":{"observer":{"display":"EHR"}},"agent":[{"who":{"display":"x"}},{"who":{"display":"fhirgate"}}]}`: "AuditEvent.agent[1].who",
	} {
		v, err := fhirjson.Parse([]byte(body), fhirjson.Limits{MaxDepth: 20, MaxValues: 1000})
		if err != nil {
			t.Fatal(err)
		}
		if got := GatewayClaim(&v); got != want {
			t.Errorf("%s: %q, want %q", body, got, want)
		}
	}
}
