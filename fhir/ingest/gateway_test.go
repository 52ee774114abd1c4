package ingest

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fhirgate/fhirgate/internal/synth"
	"github.com/fhirgate/fhirgate/internal/testgateway"
)

// These tests run the real gateway binary (internal/testgateway) and
// import into it over its API.

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func writeGz(t *testing.T, path, content string) {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	zw.Write([]byte(content))
	zw.Close()
	writeFile(t, path, b.String())
}

type api struct {
	t     *testing.T
	base  string
	token string
}

func (a api) get(path string) (int, map[string]any) {
	a.t.Helper()
	u := path
	if !strings.HasPrefix(u, "http") {
		u = a.base + "/" + path
	}
	req, _ := http.NewRequest("GET", u, nil)
	req.Header.Set("Authorization", "Bearer "+a.token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer res.Body.Close()
	var m map[string]any
	json.NewDecoder(res.Body).Decode(&m)
	return res.StatusCode, m
}

// versions returns every version the gateway holds (system history), as
// "Type/id" -> number of versions.
func (a api) versions() map[string]int {
	a.t.Helper()
	out := map[string]int{}
	next := "_history?_count=1000"
	for next != "" {
		st, page := a.get(next)
		if st != 200 {
			a.t.Fatalf("history: %d %v", st, page)
		}
		entries, _ := page["entry"].([]any)
		for _, e := range entries {
			r := e.(map[string]any)["request"].(map[string]any)
			url := r["url"].(string)
			if r["method"] == "POST" {
				// A create's entry names the type; the fullUrl names the resource.
				full := e.(map[string]any)["fullUrl"].(string)
				url = full[strings.LastIndex(full[:strings.LastIndex(full, "/")], "/")+1:]
			}
			out[url]++
		}
		next = ""
		links, _ := page["link"].([]any)
		for _, l := range links {
			if l.(map[string]any)["relation"] == "next" {
				next = l.(map[string]any)["url"].(string)
			}
		}
	}
	return out
}

func startGateway(t *testing.T) (*testgateway.Gateway, string) {
	g := testgateway.Start(t, "")
	return g, g.Token(t, "system/*.cruds")
}

func TestImportKinds(t *testing.T) {
	g, tok := startGateway(t)
	a := api{t, g.URL, tok}
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "data", "Patient.ndjson"),
		`{"resourceType":"Patient","id":"p1","gender":"female"}`+"\n"+
			`{"resourceType":"Patient","id":"p2","birthDate":"1970-01-01"}`+"\n"+
			`{"resourceType":"Patient","name":[{"family":"NoId"}]}`+"\n")
	writeGz(t, filepath.Join(dir, "data", "Observation.ndjson.gz"),
		`{"resourceType":"Observation","id":"o1","status":"final","code":{"text":"t"},"subject":{"reference":"Patient/p1"},"valueQuantity":{"value":37.50}}`+"\n"+
			`{"resourceType":"Observation","id":"o2","status":"final","code":{"text":"t"},"subject":{"reference":"Patient/p2"}}`)
	writeFile(t, filepath.Join(dir, "data", "bundles", "tx.json"), `{"resourceType":"Bundle","type":"transaction","entry":[
		{"fullUrl":"urn:uuid:11111111-1111-4111-8111-111111111111","resource":{"resourceType":"Patient","name":[{"family":"Tx"}]},"request":{"method":"POST","url":"Patient"}},
		{"fullUrl":"urn:uuid:22222222-2222-4222-8222-222222222222","resource":{"resourceType":"Observation","status":"final","code":{"text":"t"},"subject":{"reference":"urn:uuid:11111111-1111-4111-8111-111111111111"}},"request":{"method":"POST","url":"Observation"}},
		{"resource":{"resourceType":"Organization","identifier":[{"system":"urn:x","value":"org1"}],"name":"Org"},"request":{"method":"POST","url":"Organization","ifNoneExist":"identifier=urn:x|org1"}}]}`)
	writeFile(t, filepath.Join(dir, "data", "bundles", "batch.json"), `{"resourceType":"Bundle","type":"batch","entry":[
		{"resource":{"resourceType":"Patient","id":"b1"},"request":{"method":"PUT","url":"Patient/b1"}},
		{"resource":{"resourceType":"Patient","gender":"other"},"request":{"method":"POST","url":"Patient"}}]}`)
	writeFile(t, filepath.Join(dir, "data", "bundles", "coll.json"), `{"resourceType":"Bundle","type":"collection","entry":[
		{"fullUrl":"urn:uuid:33333333-3333-4333-8333-333333333333","resource":{"resourceType":"Patient","name":[{"family":"Coll"}]}},
		{"fullUrl":"urn:uuid:44444444-4444-4444-8444-444444444444","resource":{"resourceType":"Observation","status":"final","code":{"text":"t"},"subject":{"reference":"urn:uuid:33333333-3333-4333-8333-333333333333"}}}]}`)
	writeFile(t, filepath.Join(dir, "data", "notes.txt"), "not imported")

	var progress bytes.Buffer
	opt := Options{URL: g.URL, Token: tok, State: filepath.Join(dir, "state"), Progress: &progress, Batch: 2, Concurrency: 3}
	sum, err := Run(context.Background(), opt, []string{filepath.Join(dir, "data")})
	if err != nil || sum.Failed != 0 || sum.Files != 5 || sum.Resources != 12 || sum.Created != 12 {
		t.Fatalf("import: %v, %+v\n%s", err, sum, progress.String())
	}
	// References between a transaction's and a collection's entries are
	// literal; the POSTs became PUTs of the fullUrl's uuid.
	for path, want := range map[string]string{
		"Observation/22222222-2222-4222-8222-222222222222": "Patient/11111111-1111-4111-8111-111111111111",
		"Observation/44444444-4444-4444-8444-444444444444": "Patient/33333333-3333-4333-8333-333333333333",
		"Observation/o1": "Patient/p1",
	} {
		st, res := a.get(path)
		if st != 200 {
			t.Fatalf("%s: %d %v", path, st, res)
		}
		if got := res["subject"].(map[string]any)["reference"]; got != want {
			t.Errorf("%s subject %v, want %s", path, got, want)
		}
	}
	if st, res := a.get("Observation/o1"); st != 200 || fmt.Sprint(res["valueQuantity"].(map[string]any)["value"]) != "37.5" {
		t.Errorf("o1: %v", res)
	}
	if st, res := a.get("Patient?family=NoId"); st != 200 || res["total"] != float64(1) {
		t.Errorf("the id-less Patient: %v", res)
	}

	// A rerun skips everything; with another state file, PUTs update and
	// the conditional create finds its match.
	sum, err = Run(context.Background(), opt, []string{filepath.Join(dir, "data")})
	if err != nil || sum.Skipped != 12 || sum.Created+sum.Updated+sum.Failed != 0 {
		t.Fatalf("rerun: %v, %+v", err, sum)
	}
	opt.State = filepath.Join(dir, "state2")
	sum, err = Run(context.Background(), opt, []string{filepath.Join(dir, "data")})
	if err != nil || sum.Created != 0 || sum.Updated != 11 || sum.Unchanged != 1 {
		t.Fatalf("rerun with a new state: %v, %+v", err, sum)
	}
	// Versions: one each, the PUTs of the last run two.
	v := a.versions()
	if len(v) != 12 || v["Organization/"+orgID(t, a)] != 1 || v["Patient/p1"] != 2 {
		t.Errorf("versions: %v", v)
	}
}

func orgID(t *testing.T, a api) string {
	_, res := a.get("Organization?identifier=urn:x|org1")
	return res["entry"].([]any)[0].(map[string]any)["resource"].(map[string]any)["id"].(string)
}

func TestImportReportsBadLines(t *testing.T) {
	g, tok := startGateway(t)
	a := api{t, g.URL, tok}
	dir := t.TempDir()
	file := filepath.Join(dir, "Patient.ndjson")
	writeFile(t, file, strings.Join([]string{
		`{"resourceType":"Patient","id":"ok1"}`,
		`{"resourceType":"Patient","id":"bad1","gender":"bogus"}`,
		`{"resourceType":"Patient","id":"ok2"`,
		`{"resourceType":"Patient","id":"bad2","unknownElement":1}`,
		`{"resourceType":"Patient","id":"ok3"}`,
		`{"resourceType":"Patient","id":"ok4"}`,
	}, "\n"))
	var progress, errs bytes.Buffer
	sum, err := Run(context.Background(), Options{URL: g.URL, Token: tok, State: filepath.Join(dir, "state"),
		Progress: &progress, Errors: &errs, Batch: 10}, []string{file})
	if err != nil || sum.Created != 3 || sum.Failed != 3 {
		t.Fatalf("import: %v, %+v\n%s", err, sum, progress.String())
	}
	var got []string
	sc := bufio.NewScanner(&errs)
	for sc.Scan() {
		var f Failure
		if err := json.Unmarshal(sc.Bytes(), &f); err != nil {
			t.Fatal(err)
		}
		if f.File != file || f.Diagnostics == "" {
			t.Errorf("failure %+v", f)
		}
		got = append(got, fmt.Sprintf("%d %s/%s %d %v", f.Line, f.ResourceType, f.ID, f.Status, f.Expression))
	}
	slices.Sort(got) // the gateway names one refusal at a time, in its order
	want := []string{"2 Patient/bad1 400 [Patient.gender]", "3 / 0 []", "4 Patient/bad2 400 [Patient.unknownElement]"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("failures:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, line := range []string{file + ":2: Patient/bad1: 400 ", file + ":3: not valid JSON"} {
		if !strings.Contains(progress.String(), line) {
			t.Errorf("stderr lacks %q:\n%s", line, progress.String())
		}
	}
	for _, id := range []string{"ok1", "ok3", "ok4"} {
		if st, _ := a.get("Patient/" + id); st != 200 {
			t.Errorf("Patient/%s: %d", id, st)
		}
	}

	// --stop-on-error: nothing after the chunk of the first refusal.
	var lines []string
	for i := range 40 {
		lines = append(lines, fmt.Sprintf(`{"resourceType":"Patient","id":"s%d"}`, i))
	}
	lines[1] = `{"resourceType":"Patient","id":"s1","gender":"bogus"}`
	file2 := filepath.Join(dir, "stop.ndjson")
	writeFile(t, file2, strings.Join(lines, "\n"))
	sum, err = Run(context.Background(), Options{URL: g.URL, Token: tok, State: filepath.Join(dir, "state"),
		Progress: &progress, StopOnError: true, Batch: 5, Concurrency: 1}, []string{file2})
	if !errors.Is(err, ErrStopped) || sum.Failed != 1 || sum.Created != 0 {
		t.Fatalf("stop-on-error: %v, %+v", err, sum)
	}
	if st, _ := a.get("Patient/s39"); st != 404 {
		t.Errorf("Patient/s39 after --stop-on-error: %d", st)
	}
}

// TestResumeAfterKill kills `gateway import` midway and runs it again:
// the gateway holds each resource once, in one version.
func TestResumeAfterKill(t *testing.T) {
	g, tok := startGateway(t)
	a := api{t, g.URL, tok}
	dir := t.TempDir()
	data := filepath.Join(dir, "export")
	os.MkdirAll(data, 0o755)
	files := map[string]*os.File{}
	total := 0
	err := synth.NewPlan(7, 4000).NDJSON(func(typ string, line []byte) error {
		f := files[typ]
		if f == nil {
			var err error
			if f, err = os.Create(filepath.Join(data, typ+".ndjson")); err != nil {
				return err
			}
			files[typ] = f
		}
		total++
		_, err := f.Write(append(line, '\n'))
		return err
	})
	for _, f := range files {
		f.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(dir, "state")
	args := []string{"import", "--url", g.URL, "--token", tok, "--state", state, "--batch", "25", "--concurrency", "4", data}

	cmd := exec.Command(testgateway.Binary(t), args...)
	var out bytes.Buffer
	cmd.Stderr = &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Kill it once a few dozen chunks are done, with others in flight.
	deadline := time.Now().Add(2 * time.Minute)
	for {
		b, _ := os.ReadFile(state)
		if bytes.Count(b, []byte(`"done"`)) >= 30 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no progress:\n%s", out.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	before := len(a.versions())
	if before == 0 || before >= total {
		t.Fatalf("killed after %d of %d resources: not midway", before, total)
	}
	st, _ := os.ReadFile(state)
	t.Logf("killed with %d of %d resources stored; state: %d done, %d started", before, total,
		bytes.Count(st, []byte(`"done"`)), bytes.Count(st, []byte(`"start"`)))

	rerun := exec.Command(testgateway.Binary(t), args...)
	var out2 bytes.Buffer
	rerun.Stderr = &out2
	if err := rerun.Run(); err != nil {
		t.Fatalf("rerun: %v\n%s", err, out2.String())
	}
	t.Log(strings.TrimSpace(out2.String()))
	if !strings.Contains(out2.String(), " 0 failed") || strings.Contains(out2.String(), " 0 skipped") {
		t.Errorf("rerun summary: %s", out2.String())
	}
	v := a.versions()
	if len(v) != total {
		t.Errorf("the gateway holds %d resources, the files %d", len(v), total)
	}
	for k, n := range v {
		if n != 1 {
			t.Errorf("%s has %d versions", k, n)
		}
	}
}

// TestImportBulkNDJSONInDependencyOrder: Bulk Data NDJSON as Synthea's
// bulk exporter writes it (one type a file, conditional references to
// the care directory) loads whole whatever the files' lexical order: the
// directory's tiers go first, so no reference is left as a search.
func TestImportBulkNDJSONInDependencyOrder(t *testing.T) {
	g, tok := startGateway(t)
	a := api{t, g.URL, tok}
	dir := filepath.Join(t.TempDir(), "bulk")
	const npi, syn = "http://hl7.org/fhir/sid/us-npi", "https://github.com/synthetichealth/synthea"
	var enc, prac, role strings.Builder
	for i := range 6 {
		fmt.Fprintf(&prac, `{"resourceType":"Practitioner","id":"pr%d","identifier":[{"system":"%s","value":"99%d"}],"active":true}`+"\n", i, npi, i)
		fmt.Fprintf(&role, `{"resourceType":"PractitionerRole","id":"role%d","practitioner":{"reference":"Practitioner?identifier=%s|99%d"},"organization":{"reference":"Organization?identifier=%s|org1"}}`+"\n", i, npi, i, syn)
		fmt.Fprintf(&enc, `{"resourceType":"Encounter","id":"e%d","status":"finished","class":{"code":"AMB"},"subject":{"reference":"Patient/p1"},`+
			`"participant":[{"individual":{"reference":"Practitioner?identifier=%s|99%d"}}],"location":[{"location":{"reference":"Location?identifier=%s|loc1"}}],`+
			`"serviceProvider":{"reference":"Organization?identifier=%s|org1"}}`+"\n", i, npi, i, syn, syn)
	}
	writeFile(t, filepath.Join(dir, "Encounter.000.ndjson"), enc.String())
	writeFile(t, filepath.Join(dir, "Location.000.ndjson"), `{"resourceType":"Location","id":"l1","identifier":[{"system":"`+syn+`","value":"loc1"}],"managingOrganization":{"reference":"Organization?identifier=`+syn+`|org1"}}`+"\n")
	writeGz(t, filepath.Join(dir, "Organization.000.ndjson.gz"), `{"resourceType":"Organization","id":"o1","identifier":[{"system":"`+syn+`","value":"org1"}],"name":"Clinic"}`+"\n")
	writeFile(t, filepath.Join(dir, "Patient.000.ndjson"), `{"resourceType":"Patient","id":"p1"}`+"\n")
	writeFile(t, filepath.Join(dir, "Practitioner.000.ndjson"), prac.String())
	writeFile(t, filepath.Join(dir, "PractitionerRole.000.ndjson"), role.String())

	var progress bytes.Buffer
	opt := Options{URL: g.URL, Token: tok, State: filepath.Join(dir, "..", "state"), Progress: &progress, Batch: 1, Concurrency: 8}
	sum, err := Run(context.Background(), opt, []string{dir})
	if err != nil || sum.Failed != 0 || sum.Created != 21 {
		t.Fatalf("import: %v, %+v\n%s", err, sum, progress.String())
	}
	for _, typ := range []string{"Encounter", "Location", "PractitionerRole"} {
		st, page := a.get(typ + "?_count=100")
		if st != 200 {
			t.Fatalf("%s: %d", typ, st)
		}
		b, _ := json.Marshal(page["entry"])
		if strings.Contains(string(b), `?identifier`) {
			t.Errorf("%s: a reference is still a search: %s", typ, b)
		}
	}
	if st, page := a.get("Encounter?practitioner=Practitioner/pr3"); st != 200 || page["total"] != float64(1) {
		t.Errorf("Encounter?practitioner=Practitioner/pr3: %d %v", st, page["total"])
	}
}
