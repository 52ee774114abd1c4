package storetest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fhirgate/fhirgate/store"
)

// micro is a Unix-microsecond instant.
func micro(s string) int64 {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t.UnixMicro()
}

// day returns the [start, end] range of a calendar day in UTC.
func day(d string) (int64, int64) {
	lo := micro(d + "T00:00:00Z")
	return lo, lo + 24*3600*1_000_000 - 1
}

type fixture struct {
	typ, id string
	idx     []store.IndexValue
}

func str(param, text string) store.IndexValue {
	return store.IndexValue{Param: param, Kind: store.IndexString, Text: text}
}
func tok(param, system, code string) store.IndexValue {
	return store.IndexValue{Param: param, Kind: store.IndexToken, System: system, Code: code}
}

// tokt is a token with display text (a coding's display, or with no code
// a CodeableConcept's text).
func tokt(param, system, code, text string) store.IndexValue {
	return store.IndexValue{Param: param, Kind: store.IndexToken, System: system, Code: code, Text: text}
}
func ref(param, r string) store.IndexValue {
	return store.IndexValue{Param: param, Kind: store.IndexReference, Ref: r}
}
func date(param, d string) store.IndexValue {
	lo, hi := day(d)
	return store.IndexValue{Param: param, Kind: store.IndexDate, Lo: lo, Hi: hi}
}
func num(param string, n float64) store.IndexValue {
	return store.IndexValue{Param: param, Kind: store.IndexNumber, Num: n}
}
func qty(param string, n float64, system, code string) store.IndexValue {
	return store.IndexValue{Param: param, Kind: store.IndexQuantity, Num: n, System: system, Code: code}
}
func uri(param, u string) store.IndexValue {
	return store.IndexValue{Param: param, Kind: store.IndexURI, Text: u}
}

var searchFixtures = []fixture{
	{"Patient", "p1", []store.IndexValue{
		str("family", "Chalmers"), str("given", "Peter"), str("given", "James"), str("name", "Chalmers"),
		tok("gender", "http://hl7.org/fhir/administrative-gender", "male"),
		tok("identifier", "urn:oid:1.2.36.146.595.217.0.1", "12345"),
		date("birthdate", "1974-12-25"), ref("general-practitioner", "Practitioner/d1")}},
	{"Patient", "p2", []store.IndexValue{
		str("family", "Élodie-Chalmers"), str("given", "Anne"), str("name", "Élodie-Chalmers"),
		tok("gender", "http://hl7.org/fhir/administrative-gender", "female"),
		tok("identifier", "", "12345"),
		date("birthdate", "1980-02-29")}},
	{"Patient", "p3", []store.IndexValue{
		str("family", "Windsor"), str("given", "Peter"),
		tok("gender", "http://hl7.org/fhir/administrative-gender", "male"),
		date("birthdate", "2001-07-01"), ref("general-practitioner", "Practitioner/d2")}},
	{"Patient", "p4", []store.IndexValue{str("family", "Nobody")}},
	{"Practitioner", "d1", []store.IndexValue{str("name", "Adam Careful"), tok("active", "", "true")}},
	{"Practitioner", "d2", []store.IndexValue{str("name", "Eve Careless"), tok("active", "", "false")}},
	{"Observation", "o1", []store.IndexValue{
		ref("subject", "Patient/p1"), ref("patient", "Patient/p1"),
		tokt("code", "http://loinc.org", "8867-4", "Heart rate"), tokt("code", "", "", "heart RATE"),
		qty("value-quantity", 72, "http://unitsofmeasure.org", "/min"), date("date", "2020-03-01")}},
	{"Observation", "o2", []store.IndexValue{
		ref("subject", "Patient/p2"), ref("patient", "Patient/p2"),
		tokt("code", "http://loinc.org", "8867-4", "Heart rate"), tokt("code", "", "", "Pulse, résting"),
		qty("value-quantity", 110, "http://unitsofmeasure.org", "/min"), date("date", "2020-03-15")}},
	{"Observation", "o3", []store.IndexValue{
		ref("subject", "Patient/p3"), ref("patient", "Patient/p3"),
		tokt("code", "http://loinc.org", "29463-7", "Body weight"), tokt("code", "", "", "Weight"),
		qty("value-quantity", 80.5, "http://unitsofmeasure.org", "kg"), date("date", "2021-01-01"),
		ref("performer", "http://other.example.org/fhir/Practitioner/x9"), ref("performer", "Practitioner/d2")}},
	// A patient elsewhere (an absolute URL: patient keeps a key of its
	// own), and a subject that is no patient.
	{"Observation", "o4", []store.IndexValue{
		ref("subject", "http://other.example.org/fhir/Patient/x9"), ref("patient", "http://other.example.org/fhir/Patient/x9")}},
	{"Observation", "o5", []store.IndexValue{ref("subject", "Group/g1")}},
	{"RiskAssessment", "r1", []store.IndexValue{num("probability", 0.25)}},
	{"RiskAssessment", "r2", []store.IndexValue{num("probability", 0.5)}},
	{"ValueSet", "v1", []store.IndexValue{uri("url", "http://hl7.org/fhir/ValueSet/a/b")}},
	{"ValueSet", "v2", []store.IndexValue{uri("url", "http://hl7.org/fhir/ValueSet/a")}},
}

func loadFixtures(t *testing.T, s *store.Store) {
	for i, f := range searchFixtures {
		v := version(f.typ, f.id, 1, t0.Add(time.Duration(i)*time.Second), `{"id":"`+f.id+`"}`)
		if err := s.Commit(context.Background(), []store.Write{{New: v, Index: f.idx}}); err != nil {
			t.Fatalf("load %s/%s: %v", f.typ, f.id, err)
		}
	}
}

func one(p store.Pred) []store.Clause { return []store.Clause{{Preds: []store.Pred{p}}} }

func runSearch(t *testing.T, newEngine NewEngine) {
	ctx := context.Background()
	_, s := open(t, newEngine)
	loadFixtures(t, s)
	lo2020, hi2020 := micro("2020-01-01T00:00:00Z"), micro("2020-12-31T23:59:59.999999Z")
	march := [2]int64{micro("2020-03-01T00:00:00Z"), micro("2020-03-31T23:59:59.999999Z")}
	tests := []struct {
		name string
		q    store.Query
		want string
	}{
		{"string starts, case and accent insensitive", store.Query{Type: "Patient",
			Clauses: one(store.Pred{Op: store.OpStringStarts, Param: "family", Text: "elo"})}, "[p2]"},
		{"string starts", store.Query{Type: "Patient",
			Clauses: one(store.Pred{Op: store.OpStringStarts, Param: "given", Text: "PET"})}, "[p1 p3]"},
		{"string exact", store.Query{Type: "Patient",
			Clauses: one(store.Pred{Op: store.OpStringExact, Param: "family", Text: "Chalmers"})}, "[p1]"},
		{"string exact is case sensitive", store.Query{Type: "Patient",
			Clauses: one(store.Pred{Op: store.OpStringExact, Param: "family", Text: "chalmers"})}, "[]"},
		{"string contains", store.Query{Type: "Patient",
			Clauses: one(store.Pred{Op: store.OpStringContains, Param: "family", Text: "HALM"})}, "[p1 p2]"},
		{"OR of values", store.Query{Type: "Patient", Clauses: []store.Clause{{Preds: []store.Pred{
			{Op: store.OpStringStarts, Param: "family", Text: "windsor"},
			{Op: store.OpStringStarts, Param: "family", Text: "nobody"}}}}}, "[p3 p4]"},
		{"AND of parameters", store.Query{Type: "Patient", Clauses: []store.Clause{
			{Preds: []store.Pred{{Op: store.OpStringStarts, Param: "given", Text: "peter"}}},
			{Preds: []store.Pred{{Op: store.OpStringStarts, Param: "family", Text: "wind"}}}}}, "[p3]"},
		{"token code", store.Query{Type: "Patient",
			Clauses: one(store.Pred{Op: store.OpTokenCode, Param: "identifier", Code: "12345"})}, "[p1 p2]"},
		{"token system|code", store.Query{Type: "Patient",
			Clauses: one(store.Pred{Op: store.OpTokenSystemCode, Param: "identifier", System: "urn:oid:1.2.36.146.595.217.0.1", Code: "12345"})}, "[p1]"},
		{"token |code (no system)", store.Query{Type: "Patient",
			Clauses: one(store.Pred{Op: store.OpTokenSystemCode, Param: "identifier", System: "", Code: "12345"})}, "[p2]"},
		{"token system|", store.Query{Type: "Observation",
			Clauses: one(store.Pred{Op: store.OpTokenSystem, Param: "code", System: "http://loinc.org"})}, "[o1 o2 o3]"},
		{"token :text in a coded value's display", store.Query{Type: "Observation",
			Clauses: one(store.Pred{Op: store.OpTokenText, Param: "code", Text: "BODY W"})}, "[o3]"},
		{"token :text in a text without a code", store.Query{Type: "Observation",
			Clauses: one(store.Pred{Op: store.OpTokenText, Param: "code", Text: "pulse, rest"})}, "[o2]"},
		{"token :text matches a text and a display alike", store.Query{Type: "Observation",
			Clauses: one(store.Pred{Op: store.OpTokenText, Param: "code", Text: "heart"})}, "[o1 o2]"},
		{"token :text starts with, not contains", store.Query{Type: "Observation",
			Clauses: one(store.Pred{Op: store.OpTokenText, Param: "code", Text: "rate"})}, "[]"},
		{"token :text as a second clause (checked on each match's keys)", store.Query{Type: "Observation",
			Clauses: []store.Clause{
				{Preds: []store.Pred{{Op: store.OpRef, Param: "subject", Ref: "Patient/p3"}}},
				{Preds: []store.Pred{{Op: store.OpTokenText, Param: "code", Text: "weight"}}}}}, "[o3]"},
		{"token :text second clause, display and text both miss", store.Query{Type: "Observation",
			Clauses: []store.Clause{
				{Preds: []store.Pred{{Op: store.OpRef, Param: "subject", Ref: "Patient/p1"}}},
				{Preds: []store.Pred{{Op: store.OpTokenText, Param: "code", Text: "pulse"}}}}}, "[]"},
		{"token :not includes missing", store.Query{Type: "Patient",
			Clauses: []store.Clause{{Not: true, Preds: []store.Pred{{Op: store.OpTokenCode, Param: "gender", Code: "male"}}}}}, "[p2 p4]"},
		{":missing=true", store.Query{Type: "Patient",
			Clauses: one(store.Pred{Op: store.OpMissing, Param: "gender", Missing: true})}, "[p4]"},
		{":missing=false", store.Query{Type: "Patient",
			Clauses: one(store.Pred{Op: store.OpMissing, Param: "general-practitioner", Missing: false})}, "[p1 p3]"},
		{"reference Type/id", store.Query{Type: "Observation",
			Clauses: one(store.Pred{Op: store.OpRef, Param: "subject", Ref: "Patient/p2"})}, "[o2]"},
		{"reference id of any type", store.Query{Type: "Observation",
			Clauses: one(store.Pred{Op: store.OpRefID, Param: "subject", Code: "p3"})}, "[o3]"},
		{"reference id with :Type", store.Query{Type: "Observation",
			Clauses: one(store.Pred{Op: store.OpRefID, Param: "subject", Code: "p3", System: "Group"})}, "[]"},
		{"date eq day", store.Query{Type: "Patient",
			Clauses: one(store.Pred{Op: store.OpDate, Param: "birthdate", Cmp: store.Eq, Lo: micro("1980-02-29T00:00:00Z"), Hi: micro("1980-02-29T23:59:59.999999Z")})}, "[p2]"},
		{"date eq year contains days", store.Query{Type: "Observation",
			Clauses: one(store.Pred{Op: store.OpDate, Param: "date", Cmp: store.Eq, Lo: lo2020, Hi: hi2020})}, "[o1 o2]"},
		{"date lt", store.Query{Type: "Patient",
			Clauses: one(store.Pred{Op: store.OpDate, Param: "birthdate", Cmp: store.Lt, Lo: micro("1980-01-01T00:00:00Z"), Hi: micro("1980-12-31T23:59:59.999999Z")})}, "[p1]"},
		{"date ge", store.Query{Type: "Patient",
			Clauses: one(store.Pred{Op: store.OpDate, Param: "birthdate", Cmp: store.Ge, Lo: micro("1980-01-01T00:00:00Z"), Hi: micro("1980-12-31T23:59:59.999999Z")})}, "[p2 p3]"},
		{"date gt", store.Query{Type: "Patient",
			Clauses: one(store.Pred{Op: store.OpDate, Param: "birthdate", Cmp: store.Gt, Lo: micro("1980-01-01T00:00:00Z"), Hi: micro("1980-12-31T23:59:59.999999Z")})}, "[p3]"},
		{"date le", store.Query{Type: "Patient",
			Clauses: one(store.Pred{Op: store.OpDate, Param: "birthdate", Cmp: store.Le, Lo: micro("1980-02-29T00:00:00Z"), Hi: micro("1980-02-29T23:59:59.999999Z")})}, "[p1 p2]"},
		{"date ne", store.Query{Type: "Observation",
			Clauses: one(store.Pred{Op: store.OpDate, Param: "date", Cmp: store.Ne, Lo: march[0], Hi: march[1]})}, "[o3]"},
		{"date sa", store.Query{Type: "Observation",
			Clauses: one(store.Pred{Op: store.OpDate, Param: "date", Cmp: store.Sa, Lo: march[0], Hi: march[1]})}, "[o3]"},
		{"date eb", store.Query{Type: "Observation",
			Clauses: one(store.Pred{Op: store.OpDate, Param: "date", Cmp: store.Eb, Lo: micro("2020-03-10T00:00:00Z"), Hi: micro("2020-03-10T23:59:59.999999Z")})}, "[o1]"},
		{"number eq with precision", store.Query{Type: "RiskAssessment",
			Clauses: one(store.Pred{Op: store.OpNumber, Param: "probability", Cmp: store.Eq, NumLo: 0.45, NumHi: 0.55})}, "[r2]"},
		{"number gt", store.Query{Type: "RiskAssessment",
			Clauses: one(store.Pred{Op: store.OpNumber, Param: "probability", Cmp: store.Gt, NumLo: 0.295, NumHi: 0.305})}, "[r2]"},
		{"number le", store.Query{Type: "RiskAssessment",
			Clauses: one(store.Pred{Op: store.OpNumber, Param: "probability", Cmp: store.Le, NumLo: 0.245, NumHi: 0.255})}, "[r1]"},
		{"quantity with unit", store.Query{Type: "Observation",
			Clauses: one(store.Pred{Op: store.OpQuantity, Param: "value-quantity", Cmp: store.Gt, NumLo: 75, NumHi: 75, System: "http://unitsofmeasure.org", Code: "/min"})}, "[o2]"},
		{"quantity any unit", store.Query{Type: "Observation",
			Clauses: one(store.Pred{Op: store.OpQuantity, Param: "value-quantity", Cmp: store.Gt, NumLo: 75, NumHi: 75})}, "[o2 o3]"},
		{"quantity eq with system and code", store.Query{Type: "Observation",
			Clauses: one(store.Pred{Op: store.OpQuantity, Param: "value-quantity", Cmp: store.Eq, NumLo: 80.45, NumHi: 80.55, System: "http://unitsofmeasure.org", Code: "kg"})}, "[o3]"},
		{"quantity eq with code only", store.Query{Type: "Observation",
			Clauses: one(store.Pred{Op: store.OpQuantity, Param: "value-quantity", Cmp: store.Eq, NumLo: 80.45, NumHi: 80.55, Code: "kg"})}, "[o3]"},
		{"quantity ne", store.Query{Type: "Observation",
			Clauses: one(store.Pred{Op: store.OpQuantity, Param: "value-quantity", Cmp: store.Ne, NumLo: 71.5, NumHi: 72.5, System: "http://unitsofmeasure.org", Code: "/min"})}, "[o2]"},
		{"date eq with a long prefix", store.Query{Type: "Observation",
			Clauses: one(store.Pred{Op: store.OpDate, Param: "date", Cmp: store.Eq, Lo: march[0], Hi: march[1]})}, "[o1 o2]"},
		{"quantity code only", store.Query{Type: "Observation",
			Clauses: one(store.Pred{Op: store.OpQuantity, Param: "value-quantity", Cmp: store.Ge, NumLo: 0, NumHi: 0, Code: "kg"})}, "[o3]"},
		{"uri exact", store.Query{Type: "ValueSet",
			Clauses: one(store.Pred{Op: store.OpURI, Param: "url", Text: "http://hl7.org/fhir/ValueSet/a"})}, "[v2]"},
		{"uri below", store.Query{Type: "ValueSet",
			Clauses: one(store.Pred{Op: store.OpURIBelow, Param: "url", Text: "http://hl7.org/fhir/ValueSet/a"})}, "[v1 v2]"},
		{"uri above", store.Query{Type: "ValueSet",
			Clauses: one(store.Pred{Op: store.OpURIAbove, Param: "url", Text: "http://hl7.org/fhir/ValueSet/a/b/c"})}, "[v1 v2]"},
		{"chain subject:Patient.family", store.Query{Type: "Observation",
			Clauses: one(store.Pred{Op: store.OpChain, Param: "subject", Inner: &store.Query{Type: "Patient",
				Clauses: one(store.Pred{Op: store.OpStringStarts, Param: "family", Text: "chalmers"})}})}, "[o1]"},
		{"_has:Observation:patient:code", store.Query{Type: "Patient",
			Clauses: one(store.Pred{Op: store.OpHas, HasParam: "patient", Inner: &store.Query{Type: "Observation",
				Clauses: one(store.Pred{Op: store.OpTokenCode, Param: "code", Code: "8867-4"})}})}, "[p1 p2]"},
		{"_id", store.Query{Type: "Patient", IDs: []string{"p3", "nope", "p1"}}, "[p1 p3]"},
		{"_id with a clause", store.Query{Type: "Patient", IDs: []string{"p3", "p1"},
			Clauses: one(store.Pred{Op: store.OpStringStarts, Param: "family", Text: "wind"})}, "[p3]"},
		{"everything", store.Query{Type: "Patient"}, "[p1 p2 p3 p4]"},
		{"sort by string asc", store.Query{Type: "Patient", Sort: []store.Sort{{Param: "family", Kind: store.IndexString}}}, "[p1 p2 p4 p3]"},
		{"sort by date desc", store.Query{Type: "Patient", Sort: []store.Sort{{Param: "birthdate", Kind: store.IndexDate, Desc: true}}}, "[p3 p2 p1 p4]"},
		{"sort by two keys", store.Query{Type: "Patient", Sort: []store.Sort{
			{Param: "gender", Kind: store.IndexToken}, {Param: "birthdate", Kind: store.IndexDate, Desc: true}}}, "[p2 p3 p1 p4]"},
		{"sort by _lastUpdated desc", store.Query{Type: "Observation", Sort: []store.Sort{{Param: "_lastUpdated", Desc: true}}}, "[o5 o4 o3 o2 o1]"},
		{"sort by reference", store.Query{Type: "Patient", Sort: []store.Sort{{Param: "general-practitioner", Kind: store.IndexReference, Desc: true}}}, "[p3 p1 p2 p4]"},
		{"shared reference Type/id", store.Query{Type: "Observation",
			Clauses: one(store.Pred{Op: store.OpRef, Param: "patient", Ref: "Patient/p2"})}, "[o2]"},
		{"shared reference of another type", store.Query{Type: "Observation",
			Clauses: one(store.Pred{Op: store.OpRef, Param: "patient", Ref: "Group/g1"})}, "[]"},
		{"shared reference by id", store.Query{Type: "Observation",
			Clauses: one(store.Pred{Op: store.OpRefID, Param: "patient", Code: "p3"})}, "[o3]"},
		{"shared reference by id and its type", store.Query{Type: "Observation",
			Clauses: one(store.Pred{Op: store.OpRefID, Param: "patient", Code: "p3", System: "Patient"})}, "[o3]"},
		{"shared reference by id and another type", store.Query{Type: "Observation",
			Clauses: one(store.Pred{Op: store.OpRefID, Param: "patient", Code: "g1", System: "Group"})}, "[]"},
		{"shared reference by id of another type", store.Query{Type: "Observation",
			Clauses: one(store.Pred{Op: store.OpRefID, Param: "patient", Code: "g1"})}, "[]"},
		{"shared reference by absolute URL", store.Query{Type: "Observation",
			Clauses: one(store.Pred{Op: store.OpRef, Param: "patient", Ref: "http://other.example.org/fhir/Patient/x9"})}, "[o4]"},
		{"shared references of two kinds", store.Query{Type: "Observation",
			Clauses: one(store.Pred{Op: store.OpRefIn, Param: "patient", Refs: []string{"Patient/p1", "http://other.example.org/fhir/Patient/x9", "Group/g1"}})}, "[o1 o4]"},
		{"shared :missing=false", store.Query{Type: "Observation",
			Clauses: one(store.Pred{Op: store.OpMissing, Param: "patient"})}, "[o1 o2 o3 o4]"},
		{"shared :missing=true", store.Query{Type: "Observation",
			Clauses: one(store.Pred{Op: store.OpMissing, Param: "patient", Missing: true})}, "[o5]"},
		{"shared :missing=true as a second clause", store.Query{Type: "Observation", Clauses: []store.Clause{
			{Preds: []store.Pred{{Op: store.OpRefIn, Param: "subject", Refs: []string{"Patient/p1", "Group/g1"}}}},
			{Preds: []store.Pred{{Op: store.OpMissing, Param: "patient", Missing: true}}}}}, "[o5]"},
		{"shared reference as a second clause", store.Query{Type: "Observation", Clauses: []store.Clause{
			{Preds: []store.Pred{{Op: store.OpTokenCode, Param: "code", Code: "8867-4"}}},
			{Preds: []store.Pred{{Op: store.OpRef, Param: "patient", Ref: "Patient/p2"}}}}}, "[o2]"},
		{"chain through a shared reference", store.Query{Type: "Observation",
			Clauses: one(store.Pred{Op: store.OpChain, Param: "patient", Inner: &store.Query{Type: "Patient",
				Clauses: one(store.Pred{Op: store.OpStringStarts, Param: "family", Text: "chalmers"})}})}, "[o1]"},
		{"sort by a shared reference", store.Query{Type: "Observation",
			Clauses: one(store.Pred{Op: store.OpMissing, Param: "patient"}),
			Sort:    []store.Sort{{Param: "patient", Kind: store.IndexReference, Desc: true}}}, "[o4 o3 o2 o1]"},
		{"reference by absolute URL", store.Query{Type: "Observation",
			Clauses: one(store.Pred{Op: store.OpRef, Param: "performer", Ref: "http://other.example.org/fhir/Practitioner/x9"})}, "[o3]"},
		{"reference of two kinds", store.Query{Type: "Observation",
			Clauses: one(store.Pred{Op: store.OpRefIn, Param: "performer", Refs: []string{"Practitioner/d2", "http://other.example.org/fhir/Practitioner/x9"}})}, "[o3]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, size := range []int{100, 1, 2} {
				got := collect(t, s, tt.q, size)
				want := tt.want
				if len(tt.q.Sort) == 0 {
					// Without _sort the order is by id; compare as sets.
					got, want = sorted(got), sorted(want)
				}
				if got != want {
					t.Fatalf("page size %d: got %s, want %s", size, got, want)
				}
			}
		})
	}

	// _include reads the references a resource holds, each once.
	for _, tc := range []struct{ id, param, want string }{
		{"o3", "performer", "[Practitioner/d2 http://other.example.org/fhir/Practitioner/x9]"},
		{"o3", "*", "[Patient/p3 Practitioner/d2 http://other.example.org/fhir/Practitioner/x9]"},
		{"o1", "subject", "[Patient/p1]"},
		{"o1", "patient", "[Patient/p1]"},
		{"o4", "patient", "[http://other.example.org/fhir/Patient/x9]"},
		{"o5", "patient", "[]"},
		{"o1", "code", "[]"},
	} {
		refs, err := s.References(ctx, "Observation", tc.id, tc.param)
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(refs)
		if got := fmt.Sprint(refs); got != tc.want {
			t.Errorf("References(%s, %s) = %s, want %s", tc.id, tc.param, got, tc.want)
		}
	}

	// Deletes and updates remove stale index entries.
	cur, _ := s.Current(ctx, "Patient", "p3")
	upd := version("Patient", "p3", 2, t0.Add(time.Hour), `{"id":"p3"}`)
	if err := s.Commit(ctx, []store.Write{{Prev: &cur, New: upd, Index: []store.IndexValue{str("family", "Tudor")}}}); err != nil {
		t.Fatal(err)
	}
	q := store.Query{Type: "Patient", Clauses: one(store.Pred{Op: store.OpStringStarts, Param: "family", Text: "wind"})}
	if got := collect(t, s, q, 10); got != "[]" {
		t.Errorf("after update, old value still found: %s", got)
	}
	q.Clauses = one(store.Pred{Op: store.OpStringStarts, Param: "family", Text: "tud"})
	if got := collect(t, s, q, 10); got != "[p3]" {
		t.Errorf("after update, new value not found: %s", got)
	}
	cur, _ = s.Current(ctx, "Patient", "p3")
	if err := s.Commit(ctx, []store.Write{{Prev: &cur, New: version("Patient", "p3", 3, t0.Add(2*time.Hour), "")}}); err != nil {
		t.Fatal(err)
	}
	for _, qq := range []store.Query{q, {Type: "Patient"}, {Type: "Patient", IDs: []string{"p3"}}} {
		if got := collect(t, s, qq, 10); strings.Contains(got, "p3") {
			t.Errorf("deleted resource found by %+v: %s", qq, got)
		}
	}

	// Previous links walk back through the same pages.
	for _, q := range []store.Query{
		{Type: "Observation"}, // streamed in id order
		{Type: "Observation", Sort: []store.Sort{{Param: "_lastUpdated", Desc: true}}},    // materialized
		{Type: "Patient", Clauses: one(store.Pred{Op: store.OpMissing, Param: "gender"})}, // filtered
	} {
		q.Count = 1
		var pages []string
		var last store.Page
		for cur := []byte(nil); ; {
			q.Cursor = cur
			page, err := s.Search(ctx, &q)
			if err != nil {
				t.Fatal(err)
			}
			if (len(pages) > 0) != page.HasPrev {
				t.Fatalf("%+v page %d: HasPrev %v", q, len(pages), page.HasPrev)
			}
			pages = append(pages, fmt.Sprint(page.IDs))
			last = page
			if page.Next == nil {
				break
			}
			cur = page.Next
		}
		for i := len(pages) - 2; i >= 0; i-- {
			q.Cursor = last.Prev
			page, err := s.Search(ctx, &q)
			if err != nil {
				t.Fatal(err)
			}
			if got := fmt.Sprint(page.IDs); got != pages[i] {
				t.Fatalf("%+v: back to page %d gives %s, want %s", q, i, got, pages[i])
			}
			last = page
		}
		if last.HasPrev {
			t.Fatalf("%+v: the first page reached backwards claims a previous page", q)
		}
	}

	// A filter applies before paging and counting, and behind chains: the
	// filtered-out resources are as if absent.
	hide := func(v *store.Version) bool { return v.ID != "p1" && v.ID != "o2" }
	for _, tc := range []struct {
		q    store.Query
		want string
	}{
		{store.Query{Type: "Patient", Filter: hide}, "[p2 p4]"}, // streamed (p3 was deleted above)
		{store.Query{Type: "Patient", Filter: hide, Sort: []store.Sort{{Param: "family", Kind: store.IndexString}}}, "[p2 p4]"},
		{store.Query{Type: "Observation", Filter: hide, Clauses: one(store.Pred{Op: store.OpTokenCode, Param: "code", Code: "8867-4"})}, "[o1]"},
		{store.Query{Type: "Observation", Filter: hide, Clauses: one(store.Pred{Op: store.OpChain, Param: "subject",
			Inner: &store.Query{Type: "Patient", Clauses: one(store.Pred{Op: store.OpStringStarts, Param: "family", Text: "chalmers"})}})}, "[]"},
		{store.Query{Type: "Patient", Filter: hide, Clauses: one(store.Pred{Op: store.OpHas, HasParam: "patient", Inner: &store.Query{Type: "Observation",
			Clauses: one(store.Pred{Op: store.OpTokenCode, Param: "code", Code: "8867-4"})}})}, "[]"},
	} {
		for _, size := range []int{1, 10} {
			if got := sorted(collect(t, s, tc.q, size)); got != tc.want {
				t.Errorf("filtered %+v, page size %d: %s, want %s", tc.q.Clauses, size, got, tc.want)
			}
		}
	}
	fp, err := s.Search(ctx, &store.Query{Type: "Patient", Filter: hide, Total: true, Count: 1})
	if err != nil || fp.Total != 2 {
		t.Errorf("filtered total %d (%v), want 2", fp.Total, err)
	}
	hp, err := s.History(ctx, store.HistoryQuery{Type: "Patient", Count: 100, Filter: func(v *store.Version) bool { return v.ID == "p2" }})
	if err != nil || len(hp.Versions) != 1 || hp.Versions[0].ID != "p2" {
		t.Errorf("filtered history %+v (%v)", hp.Versions, err)
	}

	// Totals.
	page, err := s.Search(ctx, &store.Query{Type: "Observation", Count: 1, Total: true,
		Clauses: one(store.Pred{Op: store.OpTokenSystem, Param: "code", System: "http://loinc.org"})})
	if err != nil || page.Total != 3 || len(page.IDs) != 1 || page.Next == nil {
		t.Errorf("page with total = %+v, %v", page, err)
	}
	page, err = s.Search(ctx, &store.Query{Type: "Patient", Count: 0, Total: true})
	if err != nil || page.Total != 3 || len(page.IDs) != 0 {
		t.Errorf("count only = %+v, %v", page, err)
	}
}

// collect reads every page of q with the given page size.
func collect(t *testing.T, s *store.Store, q store.Query, size int) string {
	t.Helper()
	q.Count = size
	var ids []string
	for i := 0; ; i++ {
		if i > 50 {
			t.Fatal("paging does not end")
		}
		page, err := s.Search(context.Background(), &q)
		if err != nil {
			t.Fatalf("Search: %v", err)
		}
		if len(page.IDs) > size {
			t.Fatalf("page of %d with size %d", len(page.IDs), size)
		}
		ids = append(ids, page.IDs...)
		if page.Next == nil {
			return fmt.Sprint(ids)
		}
		q.Cursor = page.Next
	}
}

func sorted(s string) string {
	f := strings.Fields(strings.Trim(s, "[]"))
	slices.Sort(f)
	return "[" + strings.Join(f, " ") + "]"
}
