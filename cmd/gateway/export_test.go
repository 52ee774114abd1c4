package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/fhirgate/fhirgate/internal/synth"
	"github.com/fhirgate/fhirgate/internal/testgateway"
)

// TestExportReimport exports a synthetic population from the gateway
// binary with $export, loads the NDJSON into a fresh gateway with
// `gateway import` (which keeps the ids), exports that one too, and compares:
// the same resources with the same content, meta aside. Then a restart
// with a job in the store: the manifest is still served, the files too.
func TestExportReimport(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the gateway binary twice")
	}
	a := testgateway.Start(t, "")
	tokA := a.Token(t, "system/*.cruds")
	n := loadPlan(t, a.Base, tokA, 400)

	filesA := exportAll(t, a.Base, tokA, "/$export")
	got := 0
	for _, lines := range filesA {
		got += len(lines)
	}
	if got != n {
		t.Fatalf("exported %d resources, loaded %d", got, n)
	}

	// The files as downloaded, re-imported with `gateway import`.
	b := testgateway.Start(t, "")
	tokB := b.Token(t, "system/*.cruds")
	dir := t.TempDir()
	for typ, lines := range filesA {
		if err := os.WriteFile(filepath.Join(dir, typ+".ndjson"), []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var out bytes.Buffer
	if code := run([]string{"import", "--url", b.Base, "--token", tokB, "--state", filepath.Join(t.TempDir(), "state"), dir}, &out, &out); code != 0 {
		t.Fatalf("gateway import: exit %d: %s", code, out.String())
	}
	filesB := exportAll(t, b.Base, tokB, "/$export")
	if len(filesA) != len(filesB) {
		t.Errorf("types: %d exported, %d after re-import", len(filesA), len(filesB))
	}
	for typ, lines := range filesA {
		want, have := byID(t, lines), byID(t, filesB[typ])
		if len(want) != len(have) {
			t.Errorf("%s: %d exported, %d after re-import", typ, len(want), len(have))
		}
		for id, w := range want {
			if !reflect.DeepEqual(w, have[id]) {
				t.Errorf("%s/%s differs after re-import:\n%v\n%v", typ, id, w, have[id])
			}
		}
	}

	// A job survives a restart: its manifest and files are in the store.
	status := kickoff(t, a.Base, tokA, "/Patient/$export?_type=Patient")
	m := poll(t, status, tokA)
	a.Stop()
	if err := a.Restart(); err != nil {
		t.Fatal(err)
	}
	moved := func(u string) string { return a.Base + u[strings.Index(u, "/$export-"):] } // the port changed
	again := poll(t, moved(status), tokA)
	if !reflect.DeepEqual(m, again) || len(m.Output) != 1 {
		t.Errorf("manifest after restart:\n%v\n%v", again, m)
	}
	code, body := send(t, "GET", moved(m.Output[0].URL), tokA, "", nil)
	if code != 200 || bytes.Count(body, []byte("\n")) != m.Output[0].Count {
		t.Errorf("file after restart: %d, %d lines, want %d", code, bytes.Count(body, []byte("\n")), m.Output[0].Count)
	}
}

// loadPlan creates a synthetic population of about n resources
// (Practitioners, then transaction Bundles of Patients with their
// Appointments and DiagnosticReports) and returns how many it made.
func loadPlan(t *testing.T, base, tok string, n int) int {
	t.Helper()
	p := synth.NewPlan(7, n)
	g := p.Gen
	prac := make([]string, p.Practitioners)
	for k := range prac {
		_, h := sendH(t, "POST", base+"/Practitioner", tok, string(g.Practitioner(k)), 201)
		prac[k] = strings.Split(strings.SplitN(h.Get("Location"), "/Practitioner/", 2)[1], "/")[0]
	}
	pracRef := func(k int) synth.Ref { return g.PractitionerRef(k, "Practitioner/"+prac[k]) }
	count := len(prac)
	var entries []synth.Entry
	flush := func() {
		if len(entries) > 0 {
			sendH(t, "POST", base, tok, string(synth.TransactionBundle(entries)), 200)
			count += len(entries)
			entries = entries[:0]
		}
	}
	for i := range p.Patients {
		full := "urn:uuid:" + g.UUID(1, i, 0)
		entries = append(entries, synth.Entry{FullURL: full, Type: "Patient", Resource: g.Patient(i, pracRef(p.GP(i)))})
		pat := g.PatientRef(i, full)
		for j := range p.Appointments(i) {
			entries = append(entries, synth.Entry{FullURL: "urn:uuid:" + g.UUID(2, i, j), Type: "Appointment",
				Resource: g.Appointment(i, j, pat, pracRef(p.AppointmentPractitioner(i, j)))})
		}
		for j := range p.Reports(i) {
			entries = append(entries, synth.Entry{FullURL: "urn:uuid:" + g.UUID(3, i, j), Type: "DiagnosticReport",
				Resource: g.DiagnosticReport(i, j, pat, pracRef(p.ReportPractitioner(i, j)))})
		}
		if len(entries) >= 100 {
			flush()
		}
	}
	flush()
	return count
}

func send(t *testing.T, method, url, tok, body string, hdr map[string]string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+tok)
	if body != "" {
		req.Header.Set("Content-Type", "application/fhir+json")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, b
}

func sendH(t *testing.T, method, url, tok, body string, want int) ([]byte, http.Header) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/fhir+json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != want {
		t.Fatalf("%s %s: %d %.1000s", method, url, res.StatusCode, b)
	}
	return b, res.Header
}

func kickoff(t *testing.T, base, tok, path string) string {
	t.Helper()
	req, _ := http.NewRequest("GET", base+path, nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Prefer", "respond-async")
	req.Header.Set("Accept", "application/fhir+json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 202 || res.Header.Get("Content-Location") == "" {
		t.Fatalf("kick-off %s: %d", path, res.StatusCode)
	}
	return res.Header.Get("Content-Location")
}

type manifestOut struct {
	TransactionTime string
	Output          []struct {
		Type, URL string
		Count     int
	}
}

func poll(t *testing.T, status, tok string) manifestOut {
	t.Helper()
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		code, body := send(t, "GET", status, tok, "", nil)
		switch code {
		case 202:
			continue
		case 200:
			var m manifestOut
			if err := json.Unmarshal(body, &m); err != nil {
				t.Fatal(err)
			}
			return m
		default:
			t.Fatalf("status: %d %s", code, body)
		}
	}
	t.Fatal("export did not complete")
	return manifestOut{}
}

// exportAll exports path and returns each type's NDJSON lines.
func exportAll(t *testing.T, base, tok, path string) map[string][]string {
	t.Helper()
	m := poll(t, kickoff(t, base, tok, path), tok)
	out := map[string][]string{}
	for _, f := range m.Output {
		req, _ := http.NewRequest("GET", f.URL, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Accept", "application/fhir+ndjson")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if res.StatusCode != 200 {
			t.Fatalf("download %s: %d", f.URL, res.StatusCode)
		}
		sc := bufio.NewScanner(res.Body)
		sc.Buffer(nil, 16<<20)
		k := 0
		for sc.Scan() {
			out[f.Type] = append(out[f.Type], sc.Text())
			k++
		}
		res.Body.Close()
		if k != f.Count {
			t.Errorf("%s: %d lines, count %d", f.URL, k, f.Count)
		}
	}
	return out
}

// byID parses NDJSON lines into id -> the resource without meta.
func byID(t *testing.T, lines []string) map[string]map[string]any {
	out := map[string]map[string]any{}
	for _, l := range lines {
		var r map[string]any
		d := json.NewDecoder(bytes.NewReader([]byte(l)))
		d.UseNumber()
		if err := d.Decode(&r); err != nil {
			t.Fatal(err)
		}
		delete(r, "meta")
		out[fmt.Sprint(r["id"])] = r
	}
	return out
}
