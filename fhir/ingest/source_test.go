package ingest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestChunker(t *testing.T) {
	lines := []string{
		`{"resourceType":"Patient","id":"a"}`,
		``,
		`{"resourceType":"Patient","id":"b"}`,
		`{"resourceType":"Patient","id":"a","active":true}`, // a again: a new chunk
		`not json`,
		`{"resourceType":"Nope","id":"x"}`,
		`["resourceType"]`,
		`{"id":"y"}`,
		`{"resourceType":"Patient","id":"bad id"}`,
		`{"resourceType":"Patient","gender":"male"}`,
		`{"resourceType":"Patient","id":"c"}`,
	}
	c := &chunker{src: &source{path: "/x.ndjson"}, url: "u", size: 3}
	var chunks []*chunk
	for _, l := range lines {
		if ch := c.add([]byte(l + "\r\n")); ch != nil {
			chunks = append(chunks, ch)
		}
	}
	chunks = append(chunks, c.finish())
	type got struct {
		From, N int
		Items   []string
		Errs    []string
	}
	var g []got
	for _, ch := range chunks {
		x := got{From: ch.key.from, N: ch.key.n}
		for _, it := range ch.items {
			x.Items = append(x.Items, it.at+" "+it.typ+"/"+it.id)
		}
		for _, e := range ch.errs {
			x.Errs = append(x.Errs, e.at+" "+e.msg)
		}
		g = append(g, x)
	}
	derived := derivedID([]byte(lines[9]))
	want := []got{
		{From: 1, N: 3, Items: []string{"1 Patient/a", "3 Patient/b"}},
		{From: 4, N: 8, Items: []string{"4 Patient/a", "10 Patient/" + derived, "11 Patient/c"}, Errs: []string{
			"5 not valid JSON (at byte 2)",
			"6 unknown resourceType",
			"7 not a JSON object: each line holds one resource",
			"8 no resourceType",
			"9 invalid id (1 to 64 of A-Z a-z 0-9 - .)",
		}},
	}
	if d := cmp.Diff(want, g); d != "" {
		t.Fatalf("chunks (-want +got):\n%s", d)
	}
	if raw := string(chunks[1].items[1].raw); raw != `{"id":"`+derived+`","resourceType":"Patient","gender":"male"}` {
		t.Errorf("id-less resource sent as %s", raw)
	}
	// The same lines cut again give the same chunk names (resumption).
	c2 := &chunker{src: &source{path: "/x.ndjson"}, url: "u", size: 3}
	var first *chunk
	for _, l := range lines {
		if ch := c2.add([]byte(l)); ch != nil && first == nil {
			first = ch
		}
	}
	if first.key != chunks[0].key {
		t.Errorf("chunk key changed: %+v, then %+v", chunks[0].key, first.key)
	}
}

func TestWithID(t *testing.T) {
	for in, want := range map[string]string{
		`{"resourceType":"Patient"}`:    `{"id":"x","resourceType":"Patient"}`,
		` { "resourceType":"Patient"}`:  ` {"id":"x", "resourceType":"Patient"}`,
		`{}`:                            `{"id":"x"}`,
		"{\n  \"resourceType\": \"P\"}": "{\"id\":\"x\",\n  \"resourceType\": \"P\"}",
	} {
		if got := string(withID([]byte(in), "x")); got != want {
			t.Errorf("withID(%s) = %s, want %s", in, got, want)
		}
	}
}

func TestInEntry(t *testing.T) {
	for in, want := range map[string]string{
		"Bundle.entry[3].resource.gender":                        "Patient.gender",
		"Bundle.entry[3].resource.patient.name[0]":               "Patient.name[0]",
		"Bundle.entry[12]":                                       "Patient",
		"Bundle.entry[0].resource.explanationOfBenefit.referral": "Patient.explanationOfBenefit.referral",
		"Bundle.entry[0].resource.Patient.identifier[0].value":   "Patient.identifier[0].value",
		"Bundle.entry[0].request.url":                            "Patient.request.url",
	} {
		if got := inEntry(in, "Patient"); got != want {
			t.Errorf("inEntry(%s) = %s, want %s", in, got, want)
		}
	}
}

func TestSameContent(t *testing.T) {
	a := `{"resourceType":"Observation","id":"o","valueQuantity":{"value":1.50}}`
	for b, same := range map[string]bool{
		`{"id":"o","meta":{"versionId":"3","lastUpdated":"2025-01-01T00:00:00Z"},"resourceType":"Observation","valueQuantity":{"value":1.50}}`: true,
		`{"id":"o","resourceType":"Observation","valueQuantity":{"value":1.5}}`:                                                                false,
		`{"id":"o","meta":{"source":"x"},"resourceType":"Observation","valueQuantity":{"value":1.50}}`:                                         false,
	} {
		if got := sameContent([]byte(a), []byte(b)); got != same {
			t.Errorf("sameContent(%s) = %v", b, got)
		}
	}
}

func TestIsImportable(t *testing.T) {
	var got []string
	for _, n := range []string{"Patient.ndjson", "Obs.NDJSON.gz", "b.json", "b.json.gz", "x.txt", "state.import-state", "a.gz"} {
		if ok, isJSON, gz := isImportable(n); ok {
			got = append(got, strings.Join([]string{n, map[bool]string{true: "json", false: "ndjson"}[isJSON], map[bool]string{true: "gz", false: ""}[gz]}, " "))
		}
	}
	want := []string{"Patient.ndjson ndjson ", "Obs.NDJSON.gz ndjson gz", "b.json json ", "b.json.gz json gz"}
	if d := cmp.Diff(want, got); d != "" {
		t.Error(d)
	}
}

func TestTiers(t *testing.T) {
	dir := t.TempDir()
	put := func(name, first string) source {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(first), 0o644); err != nil {
			t.Fatal(err)
		}
		_, isJSON, gz := isImportable(name)
		return source{path: p, name: name, json: isJSON, gz: gz}
	}
	tests := []struct {
		src  source
		want int
	}{
		{put("Organization.000.ndjson", `{"resourceType":"Organization"}`+"\n"), 0},
		{put("hospitalInformation1.json", `{"resourceType":"Bundle"}`), 0},
		{put("x.ndjson", "\n\n"+`{"resourceType":"Practitioner","id":"a"}`+"\n"), 1},
		{put("practitionerInformation1.json", `{"resourceType":"Bundle"}`), 1},
		{put("Location.ndjson", `{"id":"l","resourceType":"Location"}`), 1},
		{put("PractitionerRole.000.ndjson", `{"resourceType":"PractitionerRole"}`), 2},
		{put("Encounter.000.ndjson", `{"resourceType":"Encounter"}`), lastTier},
		{put("Organization.json", `{"resourceType":"Organization"}`), lastTier}, // a JSON file: a Bundle or one resource
		{put("broken.ndjson", `{"resourceType":`), lastTier},
		{put("empty.ndjson", ""), lastTier},
	}
	var srcs []source
	for _, tt := range tests {
		if got := tt.src.tier(); got != tt.want {
			t.Errorf("%s: tier %d, want %d", tt.src.name, got, tt.want)
		}
		srcs = append(srcs, tt.src)
	}
	ph := tiers(srcs)
	if len(ph) != lastTier+1 || len(ph[0]) != 2 || ph[0][0].name != "Organization.000.ndjson" || len(ph[lastTier]) != 4 {
		t.Errorf("phases: %v", ph)
	}
}

// TestListSourcesDirectories: a directory given through a symbolic link
// is walked (filepath.WalkDir alone does not follow a root link: the
// import said "0 files" and succeeded), files are named as the user
// wrote the path, hidden entries are skipped, and a directory with
// nothing to import is an error, not an empty import.
func TestListSourcesDirectories(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	for _, name := range []string{"Patient.ndjson", "sub/Obs.ndjson.gz", ".hidden/x.ndjson", "notes.txt"} {
		p := filepath.Join(data, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("{}\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(data, link); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty")
	os.MkdirAll(filepath.Join(empty, "deeper"), 0o755)
	os.WriteFile(filepath.Join(empty, "readme.txt"), nil, 0o644)
	for _, root := range []string{data, link} {
		srcs, err := listSources([]string{root})
		if err != nil {
			t.Fatalf("%s: %v", root, err)
		}
		var names []string
		for _, s := range srcs {
			names = append(names, s.name)
		}
		want := []string{filepath.Join(root, "Patient.ndjson"), filepath.Join(root, "sub/Obs.ndjson.gz")}
		if strings.Join(names, ",") != strings.Join(want, ",") {
			t.Errorf("%s: %v, want %v", root, names, want)
		}
	}
	if _, err := listSources([]string{empty}); err == nil || !strings.Contains(err.Error(), "no .ndjson") {
		t.Errorf("a directory with nothing to import: %v", err)
	}
	// The same directory twice (directly and by its link) is one import.
	if srcs, err := listSources([]string{data, link}); err != nil || len(srcs) != 2 {
		t.Errorf("twice: %d sources, %v", len(srcs), err)
	}
}
