package search

import (
	"errors"
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/fhirgate/fhirgate/store"
)

func TestParseQuery(t *testing.T) {
	now := time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		typ, query string
		check      func(q *Query) bool
		errParam   string
	}{
		{"Patient", "family=Chal", func(q *Query) bool {
			p := q.Store.Clauses[0].Preds[0]
			return p.Op == store.OpStringStarts && p.Text == "Chal" && p.Param == "family"
		}, ""},
		{"Patient", "family:exact=Chal,Wind", func(q *Query) bool {
			c := q.Store.Clauses[0]
			return len(c.Preds) == 2 && c.Preds[1].Op == store.OpStringExact && c.Preds[1].Text == "Wind"
		}, ""},
		{"Patient", `family=a\,b`, func(q *Query) bool { return q.Store.Clauses[0].Preds[0].Text == "a,b" }, ""},
		{"Patient", "identifier=urn:x|1", func(q *Query) bool {
			p := q.Store.Clauses[0].Preds[0]
			return p.Op == store.OpTokenSystemCode && p.System == "urn:x" && p.Code == "1"
		}, ""},
		{"Patient", "identifier=|1", func(q *Query) bool {
			p := q.Store.Clauses[0].Preds[0]
			return p.Op == store.OpTokenSystemCode && p.System == "" && p.Code == "1"
		}, ""},
		{"Patient", "identifier=urn:x|", func(q *Query) bool { return q.Store.Clauses[0].Preds[0].Op == store.OpTokenSystem }, ""},
		{"Patient", "gender:not=male", func(q *Query) bool { return q.Store.Clauses[0].Not }, ""},
		{"Patient", "gender:missing=true", func(q *Query) bool { return q.Store.Clauses[0].Preds[0].Missing }, ""},
		{"Patient", "birthdate=ge2020-03", func(q *Query) bool {
			p := q.Store.Clauses[0].Preds[0]
			lo := time.Date(2020, 3, 1, 0, 0, 0, 0, time.UTC).UnixMicro()
			hi := time.Date(2020, 4, 1, 0, 0, 0, 0, time.UTC).UnixMicro() - 1
			return p.Cmp == store.Ge && p.Lo == lo && p.Hi == hi
		}, ""},
		{"RiskAssessment", "probability=0.25", func(q *Query) bool {
			p := q.Store.Clauses[0].Preds[0]
			return p.NumLo > 0.2449 && p.NumLo < 0.2451 && p.NumHi > 0.2549 && p.NumHi < 0.2551
		}, ""},
		{"Observation", "value-quantity=lt5.4|http://unitsofmeasure.org|mg", func(q *Query) bool {
			p := q.Store.Clauses[0].Preds[0]
			return p.Op == store.OpQuantity && p.Cmp == store.Lt && p.System == "http://unitsofmeasure.org" && p.Code == "mg"
		}, ""},
		{"Observation", "subject=Patient/1", func(q *Query) bool { return q.Store.Clauses[0].Preds[0].Ref == "Patient/1" }, ""},
		{"Observation", "subject=http://base/fhir/Patient/1", func(q *Query) bool { return q.Store.Clauses[0].Preds[0].Ref == "Patient/1" }, ""},
		{"Observation", "subject=1", func(q *Query) bool { return q.Store.Clauses[0].Preds[0].Op == store.OpRefID }, ""},
		{"Observation", "subject:Patient=1", func(q *Query) bool { return q.Store.Clauses[0].Preds[0].Ref == "Patient/1" }, ""},
		{"Observation", "subject:Patient.family=x", func(q *Query) bool {
			p := q.Store.Clauses[0].Preds[0]
			return p.Op == store.OpChain && p.Inner.Type == "Patient"
		}, ""},
		{"Observation", "subject.name=x", func(q *Query) bool { return len(q.Store.Clauses[0].Preds) >= 2 }, ""},
		{"Patient", "_has:Observation:subject:code=1", func(q *Query) bool {
			p := q.Store.Clauses[0].Preds[0]
			return p.Op == store.OpHas && p.HasParam == "subject" && p.Inner.Type == "Observation"
		}, ""},
		{"Patient", "_id=a,b&_id=b,c", func(q *Query) bool { return len(q.Store.IDs) == 1 && q.Store.IDs[0] == "b" }, ""},
		{"Patient", "_sort=-birthdate,family&_count=5&_total=accurate", func(q *Query) bool {
			return len(q.Store.Sort) == 2 && q.Store.Sort[0].Desc && q.Count == 5 && q.Total == "accurate"
		}, ""},
		{"Observation", "_include=Observation:subject&_revinclude=Provenance:target&_include:iterate=Patient:general-practitioner", func(q *Query) bool {
			return len(q.Include) == 2 && len(q.RevInclude) == 1 && q.Include[0].Iterate != q.Include[1].Iterate
		}, ""},
		{"Patient", "nonsense=1", func(q *Query) bool { return len(q.Ignored) == 1 }, ""},
		{"Patient", "birthdate=yesterday", nil, "birthdate"},
		{"Patient", "gender:frob=x", nil, "gender:frob"},
		{"Patient", "_count=-1", nil, "_count"},
		{"Patient", "_sort=nonsense", nil, "_sort"},
		{"Observation", "subject.family.name=x", nil, "subject.family.name"},
		{"Patient", "_include=Observation:nonsense", nil, "_include"},
		{"Observation", "code-value-quantity=1$2", func(q *Query) bool { return len(q.Ignored) == 1 }, ""},
	}
	for _, tt := range tests {
		params, _ := url.ParseQuery(tt.query)
		q, err := ParseQuery(tt.typ, params, Options{Base: "http://base/fhir", Now: now})
		if tt.errParam != "" {
			var se *Error
			if !errors.As(err, &se) || se.Param != tt.errParam {
				t.Errorf("%s?%s: error %v, want one about %s", tt.typ, tt.query, err, tt.errParam)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s?%s: %v", tt.typ, tt.query, err)
			continue
		}
		if !tt.check(q) {
			t.Errorf("%s?%s: unexpected %+v", tt.typ, tt.query, q.Store)
		}
	}
	// Strict handling refuses what lenient handling ignores.
	if _, err := ParseQuery("Patient", url.Values{"nonsense": {"1"}}, Options{Strict: true}); err == nil {
		t.Error("strict handling accepted an unknown parameter")
	}
}

func FuzzParseQuery(f *testing.F) {
	for _, s := range []string{"family=x", "subject:Patient.family=a,b", "_has:Observation:subject:code=1", "birthdate=ap2020",
		"value-quantity=5.4||mg", `family=a\,b\|c`, "_sort=-family&_count=3", "_include:iterate=Patient:link"} {
		f.Add("Observation", s)
		f.Add("Patient", s)
	}
	f.Fuzz(func(t *testing.T, typ, raw string) {
		params, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		q, err := ParseQuery(typ, params, Options{Base: "http://b/fhir"})
		if err != nil {
			var se *Error
			if !errors.As(err, &se) {
				t.Fatalf("error of type %T: %v", err, err)
			}
			return
		}
		if q.Store.Type != typ {
			t.Fatal("wrong type")
		}
	})
}

func TestMembers(t *testing.T) {
	idx := []store.IndexValue{
		{Param: "subject", Kind: store.IndexReference, Ref: "Patient/p1"},
		{Param: "patient", Kind: store.IndexReference, Ref: "Patient/p1"},
		{Param: "performer", Kind: store.IndexReference, Ref: "Practitioner/d1"},
		{Param: "subject", Kind: store.IndexReference, Ref: "Group/g"},
		{Param: "based-on", Kind: store.IndexReference, Ref: "Patient/not-a-compartment-param"},
	}
	got := Members("DiagnosticReport", "r", idx)
	if fmt.Sprint(got) != "[Patient/p1 Practitioner/d1]" {
		t.Fatalf("DiagnosticReport members %v", got)
	}
	if got := Members("Patient", "p9", nil); fmt.Sprint(got) != "[Patient/p9]" {
		t.Fatalf("Patient members %v", got)
	}
	if got := Members("Practitioner", "d9", nil); fmt.Sprint(got) != "[Practitioner/d9]" {
		t.Fatalf("Practitioner members %v", got)
	}
	if got := Members("Organization", "o", nil); len(got) != 0 {
		t.Fatalf("Organization members %v", got)
	}
}
