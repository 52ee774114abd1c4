package conformance

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
)

// searchData is a small world created once per run, tagged so that every
// query can be confined to this run's resources.
type searchData struct {
	tag      string // system|code of this run's tag
	ids      map[string]string
	families []string
}

var (
	worldOnce sync.Once
	world     searchData
)

func setupWorld(t *testing.T) *searchData {
	worldOnce.Do(func() {
		run := unique("run")
		world = searchData{tag: "urn:fhirgate:conformance|" + run, ids: map[string]string{}}
		meta := `"meta":{"tag":[{"system":"urn:fhirgate:conformance","code":"` + run + `"}],"profile":["http://example.org/StructureDefinition/test-` + run + `"]}`
		create := func(key, body string) {
			body = strings.Replace(body, "{", "{"+meta+",", 1)
			typ := strings.Split(strings.Split(body, `"resourceType":"`)[1], `"`)[0]
			r, err := srv.full.Do("POST", typ, []byte(body))
			if err != nil || r.Status != 201 {
				t.Fatalf("creating %s: %v %v %s", key, err, r, body)
			}
			world.ids[key] = r.JSON()["id"].(string)
		}
		create("dr", `{"resourceType":"Practitioner","name":[{"family":"Careful","given":["Adam"]}],"active":true}`)
		create("p1", `{"resourceType":"Patient","identifier":[{"system":"urn:oid:1.2.36.146.595.217.0.1","value":"`+run+`-A"}],"name":[{"family":"Chalmers","given":["Peter","James"]}],"gender":"male","birthDate":"1974-12-25","generalPractitioner":[{"reference":"Practitioner/`+world.ids["dr"]+`"}],"telecom":[{"system":"email","value":"peter@example.org"}]}`)
		create("p2", `{"resourceType":"Patient","identifier":[{"value":"`+run+`-B"}],"name":[{"family":"Élodie","given":["Anne"]}],"gender":"female","birthDate":"1980-02-29"}`)
		create("p3", `{"resourceType":"Patient","name":[{"family":"Windsor","given":["Peter"]}],"gender":"male","birthDate":"2001-07-01","deceasedBoolean":false}`)
		create("o1", `{"resourceType":"Observation","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"8867-4","display":"Heart rate"}]},"subject":{"reference":"Patient/`+world.ids["p1"]+`"},"effectiveDateTime":"2020-03-01T10:00:00+02:00","valueQuantity":{"value":72,"system":"http://unitsofmeasure.org","code":"/min","unit":"beats/minute"}}`)
		create("o2", `{"resourceType":"Observation","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"8867-4","display":"Heart rate"}]},"subject":{"reference":"Patient/`+world.ids["p2"]+`"},"effectiveDateTime":"2020-03-15","valueQuantity":{"value":110,"system":"http://unitsofmeasure.org","code":"/min"}}`)
		create("o3", `{"resourceType":"Observation","status":"amended","code":{"coding":[{"system":"http://loinc.org","code":"29463-7","display":"Body weight"}]},"subject":{"reference":"Patient/`+world.ids["p3"]+`"},"effectiveDateTime":"2021-01-01T00:00:00Z","valueQuantity":{"value":80.5,"system":"http://unitsofmeasure.org","code":"kg"}}`)
		create("r1", `{"resourceType":"RiskAssessment","status":"final","subject":{"reference":"Patient/`+world.ids["p1"]+`"},"prediction":[{"probabilityDecimal":0.25}]}`)
	})
	if len(world.ids) < 8 {
		t.Skip("search world could not be set up")
	}
	return &world
}

// find runs a search confined to this run and returns the keys of the
// resources it matched, in order, plus the bundle.
func (w *searchData) find(t *testing.T, c *Client, typ, query string, headers ...string) ([]string, map[string]any) {
	t.Helper()
	sep := "&"
	if query == "" {
		sep = ""
	}
	r := do(t, c, "GET", typ+"?"+query+sep+"_tag="+url.QueryEscape(w.tag), nil, headers...)
	wantStatus(t, r, 200)
	b := r.JSON()
	if b["resourceType"] != "Bundle" || b["type"] != "searchset" {
		t.Fatalf("not a searchset: %.300s", r.Body)
	}
	return w.keys(b, "match"), b
}

func (w *searchData) keys(b map[string]any, mode string) []string {
	byID := map[string]string{}
	for k, id := range w.ids {
		byID[id] = k
	}
	var out []string
	entries, _ := b["entry"].([]any)
	for _, e := range entries {
		e := e.(map[string]any)
		if e["search"].(map[string]any)["mode"] != mode {
			continue
		}
		res := e["resource"].(map[string]any)
		k := byID[res["id"].(string)]
		if k == "" {
			k = "?" + res["resourceType"].(string)
		}
		out = append(out, k)
	}
	return out
}

func sortedKeys(k []string) string {
	s := slices.Clone(k)
	slices.Sort(s)
	return strings.Join(s, ",")
}

func TestSearchParameters(t *testing.T) {
	w := setupWorld(t)
	tests := []struct {
		section, typ, query, want string
	}{
		{"search.html#string: starts-with, case and accent insensitive", "Patient", "family=elo", "p2"},
		{"search.html#string: matches any name part", "Patient", "name=peter", "p1,p3"},
		{"search.html#modifiers: string :exact", "Patient", "family:exact=Chalmers", "p1"},
		{"search.html#modifiers: string :exact is case sensitive", "Patient", "family:exact=chalmers", ""},
		{"search.html#modifiers: string :contains", "Patient", "family:contains=ALM", "p1"},
		{"search.html#token: code", "Patient", "gender=male", "p1,p3"},
		{"search.html#token: system|code", "Observation", "code=http://loinc.org|8867-4", "o1,o2"},
		{"search.html#token: |code matches only codes without a system", "Patient", "identifier=|" + strings.Split(w.tag, "|")[1] + "-B", "p2"},
		{"search.html#token: system| matches any code of the system", "Observation", "code=http://loinc.org|", "o1,o2,o3"},
		{"search.html#modifiers: token :not includes resources without a value", "Observation", "code:not=8867-4", "o3"},
		{"search.html#modifiers: token :text", "Observation", "code:text=body", "o3"},
		{"search.html#modifiers: :missing=true", "Patient", "general-practitioner:missing=true", "p2,p3"},
		{"search.html#modifiers: :missing=false", "Patient", "general-practitioner:missing=false", "p1"},
		{"search.html#token: ContactPoint with where(system='email')", "Patient", "email=peter@example.org", "p1"},
		{"search.html#date: day precision equality", "Patient", "birthdate=1980-02-29", "p2"},
		{"search.html#date: year precision contains the days", "Observation", "date=2020", "o1,o2"},
		{"search.html#prefix: lt", "Patient", "birthdate=lt1980", "p1"},
		{"search.html#prefix: ge", "Patient", "birthdate=ge1980", "p2,p3"},
		{"search.html#prefix: gt", "Patient", "birthdate=gt1980", "p3"},
		{"search.html#prefix: le", "Patient", "birthdate=le1980-02-29", "p1,p2"},
		{"search.html#prefix: ne", "Observation", "date=ne2020-03", "o3"},
		{"search.html#prefix: sa", "Observation", "date=sa2020-03", "o3"},
		{"search.html#prefix: eb", "Observation", "date=eb2020-03-10", "o1"},
		{"search.html#date: time zones are honoured (10:00+02:00 is 08:00Z)", "Observation", "date=ge2020-03-01T08:00:00Z&date=lt2020-03-01T08:00:01Z", "o1"},
		{"search.html#quantity: number|system|code", "Observation", "value-quantity=gt75|http://unitsofmeasure.org|/min", "o2"},
		{"search.html#quantity: number alone matches any unit", "Observation", "value-quantity=gt75", "o2,o3"},
		{"search.html#quantity: number||code", "Observation", "value-quantity=80.5||kg", "o3"},
		{"search.html#number: implicit precision", "RiskAssessment", "probability=0.25", "r1"},
		{"search.html#number: prefixes", "RiskAssessment", "probability=gt0.3", ""},
		{"search.html#reference: Type/id", "Observation", "subject=Patient/" + w.ids["p2"], "o2"},
		{"search.html#reference: id only", "Observation", "subject=" + w.ids["p3"], "o3"},
		{"search.html#reference: :Type modifier", "Observation", "subject:Patient=" + w.ids["p3"], "o3"},
		{"search.html#reference: absolute URL on this server", "Observation", "subject=" + url.QueryEscape(srv.base+"/Patient/"+w.ids["p1"]), "o1"},
		{"search.html#chaining: subject:Patient.family", "Observation", "subject:Patient.family=chalmers", "o1"},
		{"search.html#chaining: subject.name (type inferred)", "Observation", "subject.name=anne", "o2"},
		{"search.html#has: _has:Observation:subject:code", "Patient", "_has:Observation:subject:code=8867-4", "p1,p2"},
		{"search.html#or: comma-separated values mean OR", "Patient", "family=windsor,elodie", "p2,p3"},
		{"search.html#and: repeated parameters mean AND", "Patient", "given=peter&family=wind", "p3"},
		{"search.html#id: _id", "Patient", "_id=" + w.ids["p1"] + "," + w.ids["p3"], "p1,p3"},
		{"search.html#profile: _profile", "Patient", "_profile=" + url.QueryEscape("http://example.org/StructureDefinition/test-"+strings.Split(w.tag, "|")[1]) + "&gender=female", "p2"},
		{"search.html#lastUpdated: _lastUpdated", "Patient", "_lastUpdated=gt2000-01-01&family=chalmers", "p1"},
		{"search.html#escaping: \\, in values", "Patient", "family=a\\,b", ""},
	}
	for _, tt := range tests {
		spec(t, tt.section, func(t *testing.T) {
			got, _ := w.find(t, srv.full, tt.typ, tt.query)
			if sortedKeys(got) != tt.want {
				t.Fatalf("%s?%s matched [%s], want [%s]", tt.typ, tt.query, sortedKeys(got), tt.want)
			}
		})
	}
}

func TestSearchResults(t *testing.T) {
	w := setupWorld(t)
	spec(t, "search.html#sort: several keys and descending", func(t *testing.T) {
		got, _ := w.find(t, srv.full, "Patient", "_sort=gender,-birthdate")
		if strings.Join(got, ",") != "p2,p3,p1" {
			t.Fatalf("order %v", got)
		}
	})
	spec(t, "search.html#count: _count pages with next/previous/self links", func(t *testing.T) {
		_, b := w.find(t, srv.full, "Patient", "_count=1&_sort=birthdate")
		var seen []string
		links := func(b map[string]any) map[string]string {
			m := map[string]string{}
			for _, l := range b["link"].([]any) {
				l := l.(map[string]any)
				m[l["relation"].(string)] = l["url"].(string)
			}
			return m
		}
		for i := 0; ; i++ {
			seen = append(seen, w.keys(b, "match")...)
			l := links(b)
			if l["self"] == "" {
				t.Fatal("no self link")
			}
			if (i > 0) != (l["previous"] != "") {
				t.Fatalf("page %d previous link %q", i, l["previous"])
			}
			if l["next"] == "" {
				break
			}
			r := do(t, srv.full, "GET", l["next"], nil)
			wantStatus(t, r, 200)
			b = r.JSON()
		}
		if strings.Join(seen, ",") != "p1,p2,p3" {
			t.Fatalf("pages gave %v", seen)
		}
		r := do(t, srv.full, "GET", links(b)["previous"], nil)
		wantStatus(t, r, 200)
		if got := w.keys(r.JSON(), "match"); strings.Join(got, ",") != "p2" {
			t.Fatalf("previous page %v", got)
		}
	})
	spec(t, "search.html#count: a next link stays correct while writes happen", func(t *testing.T) {
		_, b := w.find(t, srv.full, "Observation", "_count=2")
		first := w.keys(b, "match")
		var next string
		for _, l := range b["link"].([]any) {
			if l := l.(map[string]any); l["relation"] == "next" {
				next = l["url"].(string)
			}
		}
		if next == "" {
			t.Fatal("no next link")
		}
		// A new matching resource arrives between the pages.
		body := `{"resourceType":"Observation","meta":{"tag":[{"system":"urn:fhirgate:conformance","code":"` + strings.Split(w.tag, "|")[1] + `-late"}]},"status":"final","code":{"text":"late"}}`
		wantStatus(t, do(t, srv.full, "POST", "Observation", []byte(body)), 201)
		r := do(t, srv.full, "GET", next, nil)
		wantStatus(t, r, 200)
		rest := w.keys(r.JSON(), "match")
		all := append(first, rest...)
		if sortedKeys(all) != "o1,o2,o3" {
			t.Fatalf("pages %v + %v", first, rest)
		}
	})
	spec(t, "search.html#total: _total=accurate and none", func(t *testing.T) {
		_, b := w.find(t, srv.full, "Observation", "_total=accurate&_count=1")
		if b["total"] != float64(3) {
			t.Fatalf("total %v", b["total"])
		}
		_, b = w.find(t, srv.full, "Observation", "_total=none")
		if _, ok := b["total"]; ok {
			t.Fatal("total present with _total=none")
		}
	})
	spec(t, "search.html#summary: _summary=count returns only the total", func(t *testing.T) {
		got, b := w.find(t, srv.full, "Observation", "_summary=count")
		if len(got) != 0 || b["total"] != float64(3) {
			t.Fatalf("entries %v total %v", got, b["total"])
		}
	})
	spec(t, "search.html#summary: _summary=true keeps summary elements and marks SUBSETTED", func(t *testing.T) {
		r := do(t, srv.full, "GET", "Patient?_id="+w.ids["p1"]+"&_summary=true", nil)
		wantStatus(t, r, 200)
		res := r.JSON()["entry"].([]any)[0].(map[string]any)["resource"].(map[string]any)
		if res["name"] == nil || res["telecom"] == nil || res["generalPractitioner"] != nil {
			t.Fatalf("summary: %v", res)
		}
		if !strings.Contains(fmt.Sprint(res["meta"]), "SUBSETTED") {
			t.Errorf("no SUBSETTED tag: %v", res["meta"])
		}
	})
	spec(t, "search.html#elements: _elements keeps the named elements", func(t *testing.T) {
		r := do(t, srv.full, "GET", "Patient?_id="+w.ids["p1"]+"&_elements=birthDate", nil)
		wantStatus(t, r, 200)
		res := r.JSON()["entry"].([]any)[0].(map[string]any)["resource"].(map[string]any)
		if res["birthDate"] == nil || res["name"] != nil {
			t.Fatalf("_elements=birthDate: %v", res)
		}
	})
	spec(t, "search.html#include: _include adds referenced resources with search.mode include", func(t *testing.T) {
		_, b := w.find(t, srv.full, "Observation", "code=8867-4&_include=Observation:subject")
		if sortedKeys(w.keys(b, "match")) != "o1,o2" || sortedKeys(w.keys(b, "include")) != "p1,p2" {
			t.Fatalf("matches %v includes %v", w.keys(b, "match"), w.keys(b, "include"))
		}
	})
	spec(t, "search.html#revinclude: _revinclude adds referring resources", func(t *testing.T) {
		_, b := w.find(t, srv.full, "Patient", "family=chalmers&_revinclude=Observation:subject")
		if sortedKeys(w.keys(b, "include")) != "o1" {
			t.Fatalf("includes %v", w.keys(b, "include"))
		}
	})
	spec(t, "search.html#include: :iterate follows included resources once more", func(t *testing.T) {
		_, b := w.find(t, srv.full, "Observation", "_id="+w.ids["o1"]+"&_include=Observation:subject&_include:iterate=Patient:general-practitioner")
		if sortedKeys(w.keys(b, "include")) != "dr,p1" {
			t.Fatalf("includes %v", w.keys(b, "include"))
		}
	})
	spec(t, "http.html#search: POST [type]/_search with a form body", func(t *testing.T) {
		r := do(t, srv.full, "POST", "Patient/_search", []byte("family=windsor&_tag="+url.QueryEscape(w.tag)), "Content-Type", "application/x-www-form-urlencoded")
		wantStatus(t, r, 200)
		if got := w.keys(r.JSON(), "match"); sortedKeys(got) != "p3" {
			t.Fatalf("matched %v", got)
		}
	})
	spec(t, "search.html#errors: unknown parameters are ignored with a warning", func(t *testing.T) {
		got, b := w.find(t, srv.full, "Patient", "family=windsor&no-such-param=1")
		if sortedKeys(got) != "p3" {
			t.Fatalf("matched %v", got)
		}
		if !strings.Contains(fmt.Sprint(b["entry"]), "outcome") {
			t.Fatal("no outcome entry with the warning")
		}
	})
	spec(t, "search.html#errors: under Prefer handling=strict unknown parameters are 400", func(t *testing.T) {
		r := do(t, srv.full, "GET", "Patient?no-such-param=1", nil, "Prefer", "handling=strict")
		wantOutcome(t, r, 400, "")
	})
	spec(t, "search.html#errors: a malformed value is 400", func(t *testing.T) {
		wantOutcome(t, do(t, srv.full, "GET", "Patient?birthdate=not-a-date", nil), 400, "")
		wantOutcome(t, do(t, srv.full, "GET", "Patient?gender:frob=male", nil), 400, "")
	})
	spec(t, "search.html#page: a paging link of another search is refused", func(t *testing.T) {
		_, b := w.find(t, srv.full, "Patient", "_count=1")
		var next string
		for _, l := range b["link"].([]any) {
			if l := l.(map[string]any); l["relation"] == "next" {
				next = l["url"].(string)
			}
		}
		u, _ := url.Parse(next)
		page := u.Query().Get("_page")
		wantOutcome(t, do(t, srv.full, "GET", "Observation?_page="+page, nil), 400, "")
	})
	spec(t, "search.html#sort: a sort the server cannot do is 400 not-supported (AuditEvent: by time only)", func(t *testing.T) {
		wantOutcome(t, do(t, srv.full, "GET", "AuditEvent?_sort=outcome", nil), 400, "not-supported")
		wantStatus(t, do(t, srv.full, "GET", "AuditEvent?_sort=-date&_count=2", nil), 200)
	})
	spec(t, "http.html#create: an AuditEvent claiming the gateway as its observer is refused (422 business-rule; others are recorded: auditrepo_test.go)", func(t *testing.T) {
		body := []byte(`{"resourceType":"AuditEvent","type":{"code":"rest"},"recorded":"2026-01-01T00:00:00Z","agent":[{"requestor":true}],"source":{"observer":{"display":"fhirgate"}}}`)
		wantOutcome(t, do(t, srv.full, "POST", "AuditEvent", body), 422, "business-rule")
	})
}

func TestConditionalInteractions(t *testing.T) {
	ident := unique("cond")
	q := "identifier=" + url.QueryEscape("urn:fhirgate:conformance|"+ident)
	spec(t, "http.html#ccreate: If-None-Exist creates when nothing matches, returns the match otherwise", func(t *testing.T) {
		r := do(t, srv.full, "POST", "Patient", patientJSON("Cond", ident), "If-None-Exist", q)
		wantStatus(t, r, 201)
		id := r.JSON()["id"]
		r = do(t, srv.full, "POST", "Patient", patientJSON("Cond", ident), "If-None-Exist", q)
		wantStatus(t, r, 200)
		if r.JSON()["id"] != id {
			t.Fatal("a second resource was created")
		}
	})
	spec(t, "http.html#ccreate: concurrent conditional creates make one resource", func(t *testing.T) {
		ident := unique("race")
		q := "identifier=" + url.QueryEscape("urn:fhirgate:conformance|"+ident)
		var wg sync.WaitGroup
		codes := make([]int, 8)
		for i := range codes {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				r, err := srv.full.Do("POST", "Patient", patientJSON("Race", ident), "If-None-Exist", q)
				if err == nil {
					codes[i] = r.Status
				}
			}(i)
		}
		wg.Wait()
		r := do(t, srv.full, "GET", "Patient?"+q+"&_total=accurate", nil)
		if r.JSON()["total"] != float64(1) {
			t.Fatalf("%v resources after 8 concurrent conditional creates (statuses %v)", r.JSON()["total"], codes)
		}
	})
	spec(t, "http.html#cond-update: conditional update updates the single match", func(t *testing.T) {
		r := do(t, srv.full, "PUT", "Patient?"+q, patientJSON("Updated", ident))
		wantStatus(t, r, 200)
		if vid, _ := meta(r); vid != "2" {
			t.Fatalf("version %s", vid)
		}
	})
	spec(t, "http.html#cond-update: no match creates", func(t *testing.T) {
		other := unique("cond-new")
		r := do(t, srv.full, "PUT", "Patient?identifier="+url.QueryEscape("urn:fhirgate:conformance|"+other), patientJSON("New", other))
		wantStatus(t, r, 201)
	})
	spec(t, "http.html#cond-update: several matches are 412", func(t *testing.T) {
		twin := unique("twin")
		createPatient(t, "Twin", twin)
		createPatient(t, "Twin", twin)
		r := do(t, srv.full, "PUT", "Patient?identifier="+url.QueryEscape("urn:fhirgate:conformance|"+twin), patientJSON("Twin", twin))
		wantOutcome(t, r, 412, "")
		wantOutcome(t, do(t, srv.full, "DELETE", "Patient?identifier="+url.QueryEscape("urn:fhirgate:conformance|"+twin), nil), 412, "")
		wantOutcome(t, do(t, srv.full, "POST", "Patient", patientJSON("Twin", twin), "If-None-Exist", "identifier="+url.QueryEscape("urn:fhirgate:conformance|"+twin)), 412, "")
	})
	spec(t, "http.html#cdelete: conditional delete removes the single match", func(t *testing.T) {
		wantStatus(t, do(t, srv.full, "DELETE", "Patient?"+q, nil), 204)
		r := do(t, srv.full, "GET", "Patient?"+q, nil)
		if r.JSON()["entry"] != nil {
			t.Fatal("the resource is still found")
		}
	})
	spec(t, "http.html#cond-update: criteria the server does not understand are refused, not ignored", func(t *testing.T) {
		wantOutcome(t, do(t, srv.full, "DELETE", "Patient?no-such-param=1", nil), 400, "")
	})
}
