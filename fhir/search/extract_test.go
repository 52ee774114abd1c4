package search

import (
	"errors"
	"strconv"
	"testing"

	"github.com/fhirgate/fhirgate/fhir/fhirjson"
	"github.com/fhirgate/fhirgate/fhir/search/internal/fhirpath"
	"github.com/fhirgate/fhirgate/store"
	"github.com/google/go-cmp/cmp"
)

func parse(t testing.TB, src string) *fhirjson.Value {
	t.Helper()
	v, err := fhirjson.Parse([]byte(src), fhirjson.Limits{})
	if err != nil {
		t.Fatalf("parse %s: %v", src, err)
	}
	return &v
}

// valuesOf returns the values of one parameter from Extract.
func valuesOf(t testing.TB, typ string, res *fhirjson.Value, code string) []store.IndexValue {
	t.Helper()
	vals, err := Extract(typ, res)
	if err != nil {
		t.Fatal(err)
	}
	var out []store.IndexValue
	for _, v := range vals {
		if v.Param == code {
			out = append(out, v)
		}
	}
	return out
}

// Shorthands for expected values; the parameter code is filled in by the
// test.
func str(s string) store.IndexValue { return store.IndexValue{Kind: store.IndexString, Text: s} }
func tok(system, code, text string) store.IndexValue {
	return store.IndexValue{Kind: store.IndexToken, System: system, Code: code, Text: text}
}
func ref(r string) store.IndexValue { return store.IndexValue{Kind: store.IndexReference, Ref: r} }
func uri(u string) store.IndexValue { return store.IndexValue{Kind: store.IndexURI, Text: u} }
func number(n float64) store.IndexValue {
	return store.IndexValue{Kind: store.IndexNumber, Num: n}
}
func qty(n float64, system, code string) store.IndexValue {
	return store.IndexValue{Kind: store.IndexQuantity, Num: n, System: system, Code: code}
}
func dateVal(t testing.TB, lo, hi string) store.IndexValue {
	v := store.IndexValue{Kind: store.IndexDate, Lo: MinTime, Hi: MaxTime}
	if lo != "" {
		v.Lo = us(t, lo)
	}
	if hi != "" {
		v.Hi = us(t, hi)
	}
	return v
}

func TestExtractTable(t *testing.T) {
	tests := []struct {
		name, typ, res, param string
		want                  []store.IndexValue
	}{
		{"date, leap-year month", "Patient", `{"resourceType":"Patient","birthDate":"2020-02"}`, "birthdate",
			[]store.IndexValue{dateVal(t, "2020-02-01T00:00:00Z", "2020-02-29T23:59:59.999999Z")}},
		{"choice: deceasedDateTime with zone", "Patient",
			`{"resourceType":"Patient","deceasedDateTime":"2015-02-14T13:42:00+10:00"}`, "death-date",
			[]store.IndexValue{dateVal(t, "2015-02-14T03:42:00Z", "2015-02-14T03:42:00.999999Z")}},
		{"choice: deceasedDateTime makes deceased true", "Patient",
			`{"resourceType":"Patient","deceasedDateTime":"2015"}`, "deceased", []store.IndexValue{tok("", "true", "")}},
		{"choice: deceasedBoolean is no death-date", "Patient",
			`{"resourceType":"Patient","deceasedBoolean":true}`, "death-date", nil},
		{"deceasedBoolean false", "Patient",
			`{"resourceType":"Patient","deceasedBoolean":false}`, "deceased", []store.IndexValue{tok("", "false", "")}},
		{"no deceased element is deceased=false", "Patient",
			`{"resourceType":"Patient"}`, "deceased", []store.IndexValue{tok("", "false", "")}},
		{"email filter", "Patient", telecom, "email", []store.IndexValue{tok("", "a@example.org", "")}},
		{"phone filter", "Patient", telecom, "phone", []store.IndexValue{tok("", "+1 555 0100", ""), tok("", "+1 555 0199", "")}},
		{"telecom: every value, system not a token system", "Patient", telecom, "telecom",
			[]store.IndexValue{tok("", "a@example.org", ""), tok("", "+1 555 0100", ""), tok("", "+1 555 0199", ""), tok("", "https://example.org", "")}},
		{"HumanName parts, deduplicated", "Patient",
			`{"resourceType":"Patient","name":[{"family":"Lévy","given":["Zoé","Anne"],"prefix":["Dr"],"suffix":["PhD"],"text":"Dr Zoé Lévy"},{"given":["Zoé"]}]}`,
			"name", []store.IndexValue{str("Lévy"), str("Zoé"), str("Anne"), str("Dr"), str("PhD"), str("Dr Zoé Lévy")}},
		{"phonetic: Soundex of each part", "Patient",
			`{"resourceType":"Patient","name":[{"family":"Smyth","given":["Zoé-Anne"]}]}`,
			"phonetic", []store.IndexValue{str("S530"), str("Z000"), str("A500")}},
		{"Address parts", "Practitioner",
			`{"resourceType":"Practitioner","address":[{"use":"work","line":["1 Main St","Apt 2"],"city":"Springfield","district":"Greene","state":"MO","postalCode":"65801","country":"US","text":"1 Main St"}]}`,
			"address", []store.IndexValue{str("Springfield"), str("US"), str("Greene"), str("1 Main St"), str("Apt 2"), str("65801"), str("MO")}},
		{"Identifier: system|value, type text", "Patient",
			`{"resourceType":"Patient","identifier":[{"system":"urn:oid:1.2.3","value":"123","type":{"coding":[{"code":"MR"}],"text":"MRN"}},{"value":"456"},{"system":"urn:x"}]}`,
			"identifier", []store.IndexValue{tok("urn:oid:1.2.3", "123", "MRN"), tok("", "456", "")}},
		{"CodeableConcept: codings with display, then text", "DiagnosticReport",
			`{"resourceType":"DiagnosticReport","code":{"coding":[{"system":"http://loinc.org","code":"58410-2","display":"CBC"},{"system":"http://x","code":"cbc"},{"system":"http://y"}],"text":"Blood count"}}`,
			"code", []store.IndexValue{tok("http://loinc.org", "58410-2", "CBC"), tok("http://x", "cbc", ""), tok("", "", "Blood count")}},
		{"Coding (meta.tag, meta.security)", "Patient",
			`{"resourceType":"Patient","meta":{"tag":[{"system":"http://t","code":"a","display":"A"}],"security":[{"system":"http://s","code":"R"}]}}`,
			"_tag", []store.IndexValue{tok("http://t", "a", "A")}},
		{"boolean token", "Practitioner", `{"resourceType":"Practitioner","active":false}`, "active", []store.IndexValue{tok("", "false", "")}},
		{"_id is not indexed (the store answers it from resource keys)", "Patient", `{"resourceType":"Patient","id":"p-1"}`, "_id", nil},
		{"_lastUpdated", "Patient", `{"resourceType":"Patient","meta":{"lastUpdated":"2024-05-06T07:08:09.123+02:00"}}`, "_lastUpdated",
			[]store.IndexValue{dateVal(t, "2024-05-06T05:08:09.123Z", "2024-05-06T05:08:09.123999Z")}},
		{"_profile and _source are uris", "Patient",
			`{"resourceType":"Patient","meta":{"profile":["http://p/1","http://p/2|1.0"],"source":"http://src#abc"}}`, "_profile",
			[]store.IndexValue{uri("http://p/1"), uri("http://p/2"), uri("http://p/2|1.0")}},
		{"references: relative, versioned, absolute; skip local, urn:uuid and identifier-only", "DiagnosticReport",
			`{"resourceType":"DiagnosticReport","contained":[{"resourceType":"Observation","id":"o"}],"result":[
			 {"reference":"Observation/1"},{"reference":"Observation/2/_history/3"},
			 {"reference":"https://other.org/fhir/Observation/4/_history/1"},{"reference":"#o"},
			 {"reference":"urn:uuid:61ebe359-bfdc-4613-8bf2-c5e300945f0a"},{"identifier":{"value":"x"}},
			 {"reference":"Observation/1"}]}`,
			"result", []store.IndexValue{ref("Observation/1"), ref("Observation/2"), ref("https://other.org/fhir/Observation/4")}},
		{"where(resolve() is Patient) by relative, absolute and contained references", "DiagnosticReport",
			`{"resourceType":"DiagnosticReport","subject":{"reference":"https://x.org/Patient/9"}}`,
			"patient", []store.IndexValue{ref("https://x.org/Patient/9")}},
		{"where(resolve() is Patient) drops a Group", "DiagnosticReport",
			`{"resourceType":"DiagnosticReport","subject":{"reference":"Group/9"}}`, "patient", nil},
		{"where(resolve() is X) across several actors", "Appointment", appointment, "practitioner",
			[]store.IndexValue{ref("Practitioner/d1"), ref("http://x.org/fhir/Practitioner/d2")}},
		{"where(resolve() is X): Location", "Appointment", appointment, "location", []store.IndexValue{ref("Location/room")}},
		{"where(resolve() is X): Patient", "Appointment", appointment, "patient", []store.IndexValue{ref("Patient/p")}},
		{"canonical reference with version", "QuestionnaireResponse",
			`{"resourceType":"QuestionnaireResponse","questionnaire":"http://q.org/Questionnaire/phq9|2.0"}`, "questionnaire",
			[]store.IndexValue{ref("http://q.org/Questionnaire/phq9"), ref("http://q.org/Questionnaire/phq9|2.0")}},
		{"Quantity: code and unit", "Observation",
			`{"resourceType":"Observation","valueQuantity":{"value":5.40,"unit":"mmol/L","system":"http://unitsofmeasure.org","code":"mmol/L"}}`,
			"value-quantity", []store.IndexValue{qty(5.4, "http://unitsofmeasure.org", "mmol/L")}},
		{"Quantity: unit differs from code", "Observation",
			`{"resourceType":"Observation","component":[{"valueQuantity":{"value":120,"unit":"mmHg","system":"http://unitsofmeasure.org","code":"mm[Hg]"}}]}`,
			"component-value-quantity", []store.IndexValue{qty(120, "http://unitsofmeasure.org", "mm[Hg]"), qty(120, "", "mmHg")}},
		{"Quantity: unit only", "Observation", `{"resourceType":"Observation","valueQuantity":{"value":1e3,"unit":"steps"}}`,
			"value-quantity", []store.IndexValue{qty(1000, "", "steps")}},
		{"choice: valueString is not a quantity", "Observation", `{"resourceType":"Observation","valueString":"5"}`, "value-quantity", nil},
		{"Money", "ChargeItem", `{"resourceType":"ChargeItem","priceOverride":{"value":12.5,"currency":"EUR"}}`, "price-override",
			[]store.IndexValue{qty(12.5, "urn:iso:std:iso:4217", "EUR")}},
		{"Age and Range ends", "Condition", `{"resourceType":"Condition","onsetRange":{"low":{"value":10,"unit":"a"},"high":{"value":20,"unit":"a"}}}`,
			"onset-age", []store.IndexValue{qty(10, "", "a"), qty(20, "", "a")}},
		{"number (decimal choice)", "RiskAssessment",
			`{"resourceType":"RiskAssessment","prediction":[{"probabilityDecimal":0.25},{"probabilityRange":{"low":{"value":1}}}]}`,
			"probability", []store.IndexValue{number(0.25)}},
		{"choice: valueDateTime and valuePeriod", "Observation",
			`{"resourceType":"Observation","valuePeriod":{"start":"2021-01-01T10:00:00Z"}}`, "value-date",
			[]store.IndexValue{dateVal(t, "2021-01-01T10:00:00Z", "")}},
		{"Period open start", "Consent", `{"resourceType":"Consent","provision":{"period":{"end":"2021-06"}}}`, "period",
			[]store.IndexValue{dateVal(t, "", "2021-06-30T23:59:59.999999Z")}},
		{"Period end before start", "Encounter", `{"resourceType":"Encounter","period":{"start":"2021-06-02","end":"2021-06-01"}}`, "date",
			[]store.IndexValue{dateVal(t, "2021-06-01T00:00:00Z", "2021-06-02T23:59:59.999999Z")}},
		{"Timing: outer limits of events and boundsPeriod", "CarePlan",
			`{"resourceType":"CarePlan","activity":[{"detail":{"scheduledTiming":{"event":["2020-05-03","2020-05-01T08:00:00Z"],"repeat":{"boundsPeriod":{"start":"2020-04-30","end":"2020-05-02"},"frequency":1}}}}]}`,
			"activity-date", []store.IndexValue{dateVal(t, "2020-04-30T00:00:00Z", "2020-05-03T23:59:59.999999Z")}},
		{"Timing: open boundsPeriod", "CarePlan",
			`{"resourceType":"CarePlan","activity":[{"detail":{"scheduledTiming":{"repeat":{"boundsPeriod":{"start":"2020-04-30"}}}}}]}`,
			"activity-date", []store.IndexValue{dateVal(t, "2020-04-30T00:00:00Z", "")}},
		{"Timing: Duration bounds give no date", "CarePlan",
			`{"resourceType":"CarePlan","activity":[{"detail":{"scheduledTiming":{"repeat":{"boundsDuration":{"value":3}}}}}]}`, "activity-date", nil},
		{"malformed date skipped", "Patient", `{"resourceType":"Patient","birthDate":"2020-13-01"}`, "birthdate", nil},
		{"uri", "AuditEvent", `{"resourceType":"AuditEvent","agent":[{"policy":["http://policy/1"]}]}`, "policy",
			[]store.IndexValue{uri("http://policy/1")}},
		{"inline resource is not a reference", "Bundle",
			`{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Composition","id":"c"}}]}`, "composition", nil},
		{"null array entries are absent", "Patient", `{"resourceType":"Patient","name":[null,{"family":"X"}]}`, "family",
			[]store.IndexValue{str("X")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for i := range tt.want {
				tt.want[i].Param = tt.param
			}
			got := valuesOf(t, tt.typ, parse(t, tt.res), tt.param)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("%s.%s (-want +got):\n%s", tt.typ, tt.param, diff)
			}
		})
	}
}

const telecom = `{"resourceType":"Patient","telecom":[
 {"system":"email","value":"a@example.org","use":"work"},
 {"system":"phone","value":"+1 555 0100","rank":1},
 {"system":"phone","value":"+1 555 0199"},
 {"system":"url","value":"https://example.org"},
 {"system":"email"}]}`

const appointment = `{"resourceType":"Appointment","participant":[
 {"actor":{"reference":"Practitioner/d1"}},
 {"actor":{"reference":"Patient/p"}},
 {"actor":{"reference":"Location/room"}},
 {"actor":{"reference":"http://x.org/fhir/Practitioner/d2/_history/1"}},
 {"actor":{"display":"nurse"}}]}`

// TestExtractExtension covers extension('url'), which no core R4
// parameter uses but custom SearchParameters do.
func TestExtractExtension(t *testing.T) {
	p := &Param{Code: "nickname", Type: TypeString,
		Expression: "Patient.extension('http://example.org/nickname').value | Patient.name.extension('http://example.org/nickname').value"}
	c := compileParam(p)
	if c.err != nil {
		t.Fatal(c.err)
	}
	res := parse(t, `{"resourceType":"Patient",
	 "extension":[{"url":"http://example.org/nickname","valueString":"Bob"},{"url":"http://example.org/other","valueString":"no"}],
	 "name":[{"family":"X","extension":[{"url":"http://example.org/nickname","valueString":"Bobby"}]}]}`)
	var ctx fhirpath.Context
	e := emitter{}
	e.begin(p.Code)
	for _, it := range ctx.Eval(c.expr, "Patient", res) {
		e.item(p, it)
	}
	want := []store.IndexValue{str("Bob"), str("Bobby")}
	for i := range want {
		want[i].Param = "nickname"
	}
	if diff := cmp.Diff(want, e.out); diff != "" {
		t.Errorf("extension (-want +got):\n%s", diff)
	}
}

func TestExtractErrors(t *testing.T) {
	if _, err := Extract("Nope", parse(t, `{"resourceType":"Nope"}`)); !errors.Is(err, ErrUnknownType) {
		t.Errorf("unknown type: %v", err)
	}
	if _, err := Extract("Patient", parse(t, `{"resourceType":"Practitioner"}`)); err == nil {
		t.Error("type mismatch accepted")
	}
	if _, err := Extract("Patient", parse(t, `[1]`)); err == nil {
		t.Error("array accepted")
	}
	if _, err := Extract("Patient", nil); err == nil {
		t.Error("nil accepted")
	}
	// Wrong shapes everywhere: no error, no panic, no values from them.
	vals, err := Extract("Patient", parse(t, `{"resourceType":"Patient","id":7,"name":"x","birthDate":{"a":1},
	 "telecom":[1,"x",{"system":5}],"identifier":{"value":["a"]},"meta":[],"managingOrganization":"Organization/1",
	 "generalPractitioner":[{"reference":5}],"deceasedString":"yes","address":[{"city":["a",{"b":1}]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range vals {
		switch v.Param {
		case "deceased", "_id", "name", "phonetic", "managingOrganization", "organization", "telecom", "address", "address-city":
		default:
			t.Errorf("unexpected value %+v", v)
		}
	}
}

func TestPhonetic(t *testing.T) {
	for in, want := range map[string]string{
		"Robert": "R163", "Rupert": "R163", "Rubin": "R150", "Ashcraft": "A261", "Ashcroft": "A261",
		"Tymczak": "T522", "Pfister": "P236", "Honeyman": "H555", "Smith": "S530", "Smyth": "S530",
		"Lévy": "L100", "O'Brien": "O165", "Lee": "L000", "": "", "王": "", "A": "A000",
	} {
		if got := Phonetic(in); got != want {
			t.Errorf("Phonetic(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestExtractManyValues checks deduplication past the scan limit, and that
// a large array stays cheap.
func TestExtractManyValues(t *testing.T) {
	var b []byte
	b = append(b, `{"resourceType":"Group","member":[`...)
	const n = 20000
	for i := range n {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"entity":{"reference":"Patient/`...)
		b = strconv.AppendInt(b, int64(i%(n/2)), 10) // each twice
		b = append(b, `"}}`...)
	}
	b = append(b, `]}`...)
	got := valuesOf(t, "Group", parse(t, string(b)), "member")
	if len(got) != n/2 {
		t.Fatalf("%d member values, want %d", len(got), n/2)
	}
	if got[0].Ref != "Patient/0" || got[n/2-1].Ref != "Patient/9999" {
		t.Errorf("first %q, last %q", got[0].Ref, got[n/2-1].Ref)
	}
}

// TestExtractConcurrent runs first-use compilation and pooled evaluation
// from many goroutines (meaningful under -race).
func TestExtractConcurrent(t *testing.T) {
	res := parse(t, appointment)
	other := parse(t, `{"resourceType":"MedicinalProductUndesirableEffect"}`)
	want, err := Extract("Appointment", res)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan []store.IndexValue)
	for range 8 {
		go func() {
			var last []store.IndexValue
			for range 50 {
				last, _ = Extract("Appointment", res)
				Extract("MedicinalProductUndesirableEffect", other)
			}
			done <- last
		}()
	}
	for range 8 {
		if diff := cmp.Diff(want, <-done); diff != "" {
			t.Errorf("concurrent result differs (-want +got):\n%s", diff)
		}
	}
}
