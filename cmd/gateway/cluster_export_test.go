package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fhirgate/fhirgate/internal/testgateway"
	"github.com/fhirgate/fhirgate/store"
	"github.com/fhirgate/fhirgate/store/redis"
)

// Bulk Data export across the replicas of TestCluster: a job kicked off
// on one replica is polled, downloaded and cancelled through the others
// (its state and files are in the shared store), and a job whose replica
// is killed -9 in the middle is taken over by another one and completed,
// every resource exactly once.

// The replicas of TestCluster run with these (--export-file-resources,
// --export-block-bytes): several files per type, and a commit per
// resource or two, so that a job has many points to resume from and lasts
// long enough to be killed in the middle.
const (
	clusterExportFileResources = 40
	clusterExportBlockBytes    = 256
)

// exportCluster is what the export subtests use of TestCluster.
type exportCluster struct {
	gws                     []*testgateway.Gateway
	base                    string // the load balancer's FHIR base: the status and file URLs name it
	ehr, other, admin, regu string // the EHR's token; another system client's; an administrator's; a regulator's
	db                      store.Engine
}

// newExportCluster opens the replicas' Redis for the subtests to look
// at (job leases, what is left of a cancelled job) and mints the tokens
// of the principals a job is not.
func newExportCluster(t *testing.T, gws []*testgateway.Gateway, base, redisURL, prefix, ehr, admin string) *exportCluster {
	t.Helper()
	db, err := redis.Open(context.Background(), redis.Config{URL: redisURL, Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return &exportCluster{gws: gws, base: base, ehr: ehr, admin: admin, db: db,
		other: gws[2].Token(t, "system/*.cruds", "--sub", "client/other-ehr"),
		regu:  gws[0].Token(t, "", "--role", "regulator", "--sub", "regulator/audit")}
}

// at is u (a URL under the load balancer's base) sent to replica i.
func (c *exportCluster) at(t *testing.T, i int, u string) string {
	t.Helper()
	rest, ok := strings.CutPrefix(u, c.base)
	if !ok {
		t.Fatalf("%s is not under the public base %s", u, c.base)
	}
	return c.gws[i].URL + rest
}

// exportData is what a subtest wrote: "Type/id" -> the body the create
// answered (the bytes a read returns, which an export line is).
type exportData struct {
	since    string // an instant before the first write (for _since)
	patients []string
	written  map[string][]byte
}

// writeExportData writes two Patients and perPatient Observations,
// Conditions and Encounters for each through the replica at base (in
// transactions of 100, three at a time).
func writeExportData(t *testing.T, base, tok string, perPatient int) exportData {
	t.Helper()
	// Every write below is stamped at or after since, and every write of
	// the subtests before strictly before it.
	time.Sleep(2 * time.Millisecond)
	d := exportData{since: time.Now().UTC().Truncate(time.Millisecond).Format(time.RFC3339Nano), written: map[string][]byte{}}
	time.Sleep(2 * time.Millisecond)
	for _, name := range []string{"Export-Abara", "Export-Lindqvist"} {
		status, out, _ := httpDo(t, "POST", base+"/Patient", tok, []byte(`{"resourceType":"Patient","name":[{"family":"`+name+`"}]}`))
		var r struct{ ID string }
		if status != 201 || json.Unmarshal(out, &r) != nil || r.ID == "" {
			t.Fatalf("create Patient: %d %.300s", status, out)
		}
		d.patients = append(d.patients, "Patient/"+r.ID)
		d.written["Patient/"+r.ID] = out
	}
	var entries []string
	for i := range perPatient {
		for _, p := range d.patients {
			entries = append(entries,
				fmt.Sprintf(`{"resourceType":"Observation","status":"final","code":{"text":"export %d"},"subject":{"reference":"%s"},"valueQuantity":{"value":%d,"unit":"mmol/L"}}`, i, p, i),
				fmt.Sprintf(`{"resourceType":"Condition","code":{"text":"export %d"},"subject":{"reference":"%s"}}`, i, p),
				fmt.Sprintf(`{"resourceType":"Encounter","status":"finished","class":{"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"AMB"},"subject":{"reference":"%s"}}`, p))
		}
	}
	bundles := make(chan []string)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range bundles {
				var body strings.Builder
				body.WriteString(`{"resourceType":"Bundle","type":"transaction","entry":[`)
				for k, r := range b {
					if k > 0 {
						body.WriteByte(',')
					}
					typ := r[len(`{"resourceType":"`):]
					typ = typ[:strings.IndexByte(typ, '"')]
					body.WriteString(`{"resource":` + r + `,"request":{"method":"POST","url":"` + typ + `"}}`)
				}
				body.WriteString(`]}`)
				status, out, _ := httpDoWith(t, "POST", base, tok, []byte(body.String()), map[string]string{"Prefer": "return=representation"})
				var res struct {
					Entry []struct {
						Resource json.RawMessage `json:"resource"`
					} `json:"entry"`
				}
				if status != 200 || json.Unmarshal(out, &res) != nil || len(res.Entry) != len(b) {
					t.Errorf("transaction of %d creates: %d %.300s", len(b), status, out)
					continue
				}
				mu.Lock()
				for _, e := range res.Entry {
					var r struct{ ResourceType, ID string }
					if json.Unmarshal(e.Resource, &r) != nil || r.ID == "" {
						t.Errorf("transaction response entry without a resource: %.300s", e.Resource)
					}
					d.written[r.ResourceType+"/"+r.ID] = e.Resource
				}
				mu.Unlock()
			}
		}()
	}
	for len(entries) > 0 {
		n := min(len(entries), 100)
		bundles <- entries[:n]
		entries = entries[n:]
	}
	close(bundles)
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	return d
}

// query is the kick-off of everything d wrote (and nothing the other
// subtests wrote).
func (d exportData) query() string {
	return "/$export?_type=Patient,Observation,Condition,Encounter&_since=" + url.QueryEscape(d.since)
}

// kickoff starts an export through replica i and returns its status URL
// (under the public base).
func (c *exportCluster) kickoff(t *testing.T, i int, path string) string {
	t.Helper()
	status, out, h := httpDoWith(t, "GET", c.gws[i].URL+path, c.ehr, nil, map[string]string{"Prefer": "respond-async", "Accept": "application/fhir+json"})
	loc := h.Get("Content-Location")
	if status != 202 || !strings.HasPrefix(loc, c.base+"/$export-poll-status/") {
		t.Fatalf("kick-off %s on replica %d: %d Content-Location %q %.300s", path, i, status, loc, out)
	}
	return loc
}

type clusterManifest struct {
	TransactionTime     string `json:"transactionTime"`
	Request             string `json:"request"`
	RequiresAccessToken bool   `json:"requiresAccessToken"`
	Output              []struct {
		Type, URL string
		Count     int
		Extension struct{ SHA256 string }
	} `json:"output"`
	Error []any `json:"error"`
	raw   []byte
}

var progressRE = regexp.MustCompile(`(\d+) resources written`)

// progress is the number of resources X-Progress says are written.
func progress(h string) int {
	m := progressRE.FindStringSubmatch(h)
	if m == nil {
		return -1
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// poll polls status through the replicas named, in turn, until the
// manifest comes, and returns it with the number of polls answered 202.
func (c *exportCluster) poll(t *testing.T, status string, replicas ...int) (clusterManifest, int) {
	t.Helper()
	running := 0
	for k, deadline := 0, time.Now().Add(60*time.Second); time.Now().Before(deadline); k++ {
		i := replicas[k%len(replicas)]
		code, body, h, err := tryHTTPH("GET", c.at(t, i, status), c.ehr)
		switch {
		case err != nil:
			t.Fatalf("poll on replica %d: %v", i, err)
		case code == 202:
			if progress(h.Get("X-Progress")) < 0 || h.Get("Retry-After") == "" {
				t.Fatalf("202 on replica %d without X-Progress and Retry-After: %v", i, h)
			}
			running++
			time.Sleep(20 * time.Millisecond)
			continue
		case code == 200:
			if ct := h.Get("Content-Type"); ct != "application/json" {
				t.Errorf("manifest Content-Type %q", ct)
			}
			var m clusterManifest
			mustJSON(t, body, &m)
			m.raw = body
			return m, running
		default:
			t.Fatalf("poll on replica %d: %d %.300s", i, code, body)
		}
	}
	t.Fatalf("the export %s did not complete in 60 s", status)
	return clusterManifest{}, 0
}

// download fetches every file of m through replica i and checks it
// against the manifest (count, SHA-256, one type) and against what was
// written (every line a resource written, byte for byte, once).
func (c *exportCluster) download(t *testing.T, i int, m clusterManifest, d exportData) {
	t.Helper()
	got := map[string]bool{}
	for _, f := range m.Output {
		code, body, h := httpDoWith(t, "GET", c.at(t, i, f.URL), c.ehr, nil, map[string]string{"Accept": "application/fhir+ndjson"})
		if code != 200 || h.Get("Content-Type") != "application/fhir+ndjson" {
			t.Fatalf("download %s from replica %d: %d %s %.300s", f.URL, i, code, h.Get("Content-Type"), body)
		}
		if sum := sha256.Sum256(body); hex.EncodeToString(sum[:]) != f.Extension.SHA256 {
			t.Errorf("%s: SHA-256 %x, the manifest says %s", f.URL, sum, f.Extension.SHA256)
		}
		lines := bytes.Split(bytes.TrimSuffix(body, []byte("\n")), []byte("\n"))
		if len(lines) != f.Count || f.Count > clusterExportFileResources {
			t.Errorf("%s: %d lines, the manifest says %d (files of at most %d)", f.URL, len(lines), f.Count, clusterExportFileResources)
		}
		for _, l := range lines {
			var r struct{ ResourceType, ID string }
			if err := json.Unmarshal(l, &r); err != nil || r.ResourceType != f.Type {
				t.Fatalf("%s (%s): line %.200q (%v)", f.URL, f.Type, l, err)
			}
			ref := r.ResourceType + "/" + r.ID
			switch want, ok := d.written[ref]; {
			case !ok:
				t.Errorf("%s holds %s, which this subtest did not write", f.URL, ref)
			case got[ref]:
				t.Errorf("%s exported twice", ref)
			case !bytes.Equal(l, want):
				t.Errorf("%s: exported %.200s, written %.200s", ref, l, want)
			}
			got[ref] = true
		}
	}
	if len(got) != len(d.written) {
		var missing []string
		for ref := range d.written {
			if !got[ref] {
				missing = append(missing, ref)
			}
		}
		slices.Sort(missing)
		t.Errorf("%d resources exported, %d written; missing: %v", len(got), len(d.written), missing)
	}
}

// checkAudited finds the export's AuditEvents (one per patient, one for
// the export) as a regulator through replica i: each names the SHA-256
// of the manifest as served, which lists each file's.
func (c *exportCluster) checkAudited(t *testing.T, i int, job string, m clusterManifest, d exportData, kicked time.Time) {
	t.Helper()
	sum := sha256.Sum256(m.raw)
	desc := func(q string) []string {
		var b struct {
			Entry []struct {
				Resource struct {
					OutcomeDesc string `json:"outcomeDesc"`
				} `json:"resource"`
			} `json:"entry"`
		}
		mustJSON(t, get(t, c.gws[i].URL+"/AuditEvent?"+q, c.regu), &b)
		var out []string
		for _, e := range b.Entry {
			if strings.HasPrefix(e.Resource.OutcomeDesc, "bulk data export "+job+": ") {
				out = append(out, e.Resource.OutcomeDesc)
			}
		}
		return out
	}
	want := fmt.Sprintf("bulk data export %s: %d resources in %d files, manifest sha256 %s", job, len(d.written), len(m.Output), hex.EncodeToString(sum[:]))
	for _, p := range d.patients {
		if got := desc("patient=" + p + "&_count=1000"); len(got) != 1 || got[0] != want {
			t.Errorf("%s's export AuditEvents: %q, want one %q", p, got, want)
		}
	}
	since := url.QueryEscape(kicked.Add(-time.Second).UTC().Format(time.RFC3339))
	want += fmt.Sprintf(", %d patients", len(d.patients))
	if got := desc("subtype=operation&date=ge" + since + "&_count=1000"); !slices.Contains(got, want) {
		t.Errorf("the export's AuditEvents: %q, want %q among them", got, want)
	}
}

// holder is the replica whose process holds job's lease (-1: none of
// them), from the lease's record in the store (holders are named
// export-<host>-<pid>-<random>).
func (c *exportCluster) holder(t *testing.T, job string) int {
	t.Helper()
	info, err := store.NewLease(c.db, "bulk/"+job, "cluster-test", store.LeaseOptions{}).Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Split(info.Holder, "-")
	if len(f) < 3 {
		return -1
	}
	pid, _ := strconv.Atoi(f[len(f)-2])
	for i, g := range c.gws {
		if g.PID() == pid {
			return i
		}
	}
	return -1
}

// leftOf counts the keys the store still holds for job (its record,
// blocks and patients) under package bulk's prefix.
func (c *exportCluster) leftOf(t *testing.T, job string) int {
	t.Helper()
	n := 0
	if err := c.db.Scan(context.Background(), store.PrefixRange(store.ExtensionPrefix("bulk")), func(k, _ []byte) bool {
		if bytes.Contains(k, []byte(job)) {
			n++
		}
		return true
	}); err != nil {
		t.Fatal(err)
	}
	return n
}

func jobOf(status string) string { return status[strings.LastIndex(status, "/")+1:] }

// testExportAnyReplicaAnswers: kicked off on replica 0, polled on 1 and
// 2, downloaded from 2, audited; refused alike to whoever it is not; a
// second job cancelled through replica 1 is gone for all.
func (c *exportCluster) testExportAnyReplicaAnswers(t *testing.T) {
	d := writeExportData(t, c.gws[0].URL, c.ehr, 50)
	kicked := time.Now()
	status := c.kickoff(t, 0, d.query())
	job := jobOf(status)
	m, running := c.poll(t, status, 1, 2)
	t.Logf("%d resources exported in %d files: manifest after %s (%d polls on replicas 1 and 2 answered 202)",
		len(d.written), len(m.Output), time.Since(kicked).Round(time.Millisecond), running)
	if !m.RequiresAccessToken || m.Request != c.base+d.query() || m.Error == nil || len(m.Error) != 0 {
		t.Errorf("manifest: %s", m.raw)
	}
	if len(m.Output) != 10 { // 2 Patients, 100 each of three types, in files of 40
		t.Errorf("%d files for %d resources in files of %d", len(m.Output), len(d.written), clusterExportFileResources)
	}
	for i := range c.gws { // the same manifest everywhere
		if code, again, _ := httpDo(t, "GET", c.at(t, i, status), c.ehr, nil); code != 200 || !bytes.Equal(again, m.raw) {
			t.Errorf("the manifest on replica %d: %d %.300s", i, code, again)
		}
	}
	c.download(t, 2, m, d)
	c.checkAudited(t, 1, job, m, d, kicked)

	// Whoever it is not gets what they would for an export that does not
	// exist; without a token, 401.
	file := m.Output[0].URL
	absentFile := c.base + "/$export-file/" + job + "/" + strconv.Itoa(len(m.Output)+50) + ".ndjson"
	absentJob := c.base + "/$export-file/0123456789abcdef0123456789abcdef/1.ndjson"
	_, absent, _ := httpDo(t, "GET", c.at(t, 2, absentFile), c.ehr, nil)
	_, noJob, _ := httpDo(t, "GET", c.at(t, 2, c.base+"/$export-poll-status/0123456789abcdef0123456789abcdef"), c.ehr, nil)
	for _, r := range []struct {
		who, tok, url string
		want          int
		body          []byte
	}{
		{"the EHR, an absent file", c.ehr, absentFile, 404, absent},
		{"the EHR, an absent job", c.ehr, absentJob, 404, absent},
		{"another system client", c.other, file, 404, absent},
		{"a regulator", c.regu, file, 404, absent},
		{"another system client", c.other, status, 404, noJob},
		{"a regulator", c.regu, status, 404, noJob},
		{"anonymous", "", file, 401, nil},
		{"anonymous", "", status, 401, nil},
		{"an administrator", c.admin, file, 200, nil},
		{"an administrator", c.admin, status, 200, m.raw},
	} {
		for i := range c.gws {
			code, out, _ := httpDo(t, "GET", c.at(t, i, r.url), r.tok, nil)
			switch {
			case code != r.want:
				t.Errorf("%s, GET %s on replica %d: %d %.300s, want %d", r.who, r.url, i, code, out, r.want)
			case r.body != nil && !bytes.Equal(out, r.body):
				t.Errorf("%s, GET %s on replica %d: %.300s, want %.300s", r.who, r.url, i, out, r.body)
			case code >= 400 && !bytes.Contains(out, []byte(`"resourceType":"OperationOutcome"`)):
				t.Errorf("%s, GET %s on replica %d: not an OperationOutcome: %.300s", r.who, r.url, i, out)
			}
		}
	}

	// A second job, cancelled through replica 1: by nobody else; by its
	// owner for everyone, its files deleted from the store.
	second := c.kickoff(t, 0, d.query())
	for _, tok := range []string{c.other, c.regu} {
		if code, out, _ := httpDo(t, "DELETE", c.at(t, 1, second), tok, nil); code != 404 || !bytes.Equal(out, noJob) {
			t.Errorf("DELETE of another's job: %d %.300s, want 404 %.300s", code, out, noJob)
		}
	}
	if code, out, _ := httpDo(t, "DELETE", c.at(t, 1, second), "", nil); code != 401 {
		t.Errorf("anonymous DELETE: %d %.300s", code, out)
	}
	code, _, h := httpDo(t, "GET", c.at(t, 2, second), c.ehr, nil)
	before := "completed"
	if code == 202 {
		before = "running, " + h.Get("X-Progress")
	} else if code != 200 {
		t.Fatalf("the second job after refused cancels: %d", code)
	}
	if code, out, _ := httpDo(t, "DELETE", c.at(t, 1, second), c.ehr, nil); code != 202 {
		t.Fatalf("DELETE %s through replica 1: %d %.300s", second, code, out)
	}
	t.Logf("the second job was cancelled through replica 1 (it was %s)", before)
	for _, i := range []int{0, 2, 1} {
		if code, out, _ := httpDo(t, "GET", c.at(t, i, second), c.ehr, nil); code != 404 || !bytes.Equal(out, noJob) {
			t.Errorf("status of the cancelled job on replica %d: %d %.300s", i, code, out)
		}
		if code, _, _ := httpDo(t, "DELETE", c.at(t, i, second), c.ehr, nil); code != 404 {
			t.Errorf("a second DELETE on replica %d: %d", i, code)
		}
		if code, _, _ := httpDo(t, "GET", c.at(t, i, strings.Replace(file, job, jobOf(second), 1)), c.ehr, nil); code != 404 {
			t.Errorf("a file of the cancelled job on replica %d: %d", i, code)
		}
	}
	// Its runner (replica 0) stops at its next commit; nothing of it is
	// left in the store.
	within(t, 10*time.Second, "the cancelled job's keys to be deleted", func() bool { return c.leftOf(t, jobOf(second)) == 0 })
	if code, _, _ := httpDo(t, "GET", c.at(t, 0, status), c.ehr, nil); code != 200 {
		t.Errorf("the first job after the second was cancelled: %d", code)
	}
}

// testExportTakenOver: the replica running a job is killed -9 in the
// middle of it; another takes its lease over and completes it, every
// resource exactly once, the files' hashes right across the resume.
// The killed replica is started again.
func (c *exportCluster) testExportTakenOver(t *testing.T) {
	d := writeExportData(t, c.gws[1].URL, c.ehr, 500)
	kicked := time.Now()
	status := c.kickoff(t, 1, d.query())
	job := jobOf(status)
	// Kill whichever replica holds the job's lease (the one that took the
	// kick-off, unless another one's sweep was faster) once it has
	// written something.
	runner, written := -1, 0
	// 10: past the Patients (one file), inside the first Observation file.
	for deadline := time.Now().Add(20 * time.Second); written < 10; time.Sleep(2 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the job wrote nothing in 20 s")
		}
		if runner = c.holder(t, job); runner < 0 {
			continue
		}
		code, _, h, err := tryHTTPH("GET", c.at(t, (runner+1)%3, status), c.ehr)
		if err != nil || code != 202 {
			t.Fatalf("the job before the kill: %d %v: export more", code, err)
		}
		written = progress(h.Get("X-Progress"))
	}
	c.gws[runner].Kill()
	killed := time.Now()
	live := []int{(runner + 1) % 3, (runner + 2) % 3}
	code, _, h, err := tryHTTPH("GET", c.at(t, live[0], status), c.ehr)
	if err != nil || code != 202 {
		t.Fatalf("the job was not running when its replica was killed (%d %v): export more", code, err)
	}
	atKill := progress(h.Get("X-Progress"))
	if atKill >= len(d.written) {
		t.Fatalf("the job had written everything when its replica was killed: export more")
	}
	// Where the job stands in the store (package bulk's record): a file
	// open with blocks committed is resumed with its SHA-256 state.
	var rec struct {
		State   string
		Written int
		Files   []struct{ N int }
		Cur     *struct{ N, Count, Blocks int }
	}
	raw, err := c.db.Get(context.Background(), append(store.ExtensionPrefix("bulk"), append([]byte{'j'}, job...)...))
	if err != nil {
		t.Fatalf("the job's record: %v", err)
	}
	mustJSON(t, raw, &rec)
	if rec.State != "running" || rec.Written != atKill {
		t.Errorf("the job's record after the kill: %s", raw)
	}
	where := fmt.Sprintf("between files (%d done)", len(rec.Files))
	if rec.Cur != nil {
		where = fmt.Sprintf("inside file %d (%d resources in %d blocks)", rec.Cur.N, rec.Cur.Count, rec.Cur.Blocks)
	}
	t.Logf("replica %d killed running the job: %d of %d resources written (%d seen before the kill), %s",
		runner, atKill, len(d.written), written, where)
	var took int
	at := within(t, 20*time.Second, "another replica to take the job's lease", func() bool {
		took = c.holder(t, job)
		return took >= 0 && took != runner
	})
	m, _ := c.poll(t, status, live...)
	t.Logf("replica %d took the job over %s after the kill; manifest %s after the kill",
		took, at.Sub(killed).Round(time.Millisecond), time.Since(killed).Round(time.Millisecond))
	if d := at.Sub(killed); d > 10*time.Second {
		t.Errorf("the job was taken over %s after its replica died (lease 5 s)", d)
	}
	c.download(t, live[1], m, d)
	c.checkAudited(t, live[0], job, m, d, kicked)

	if err := c.gws[runner].Restart(); err != nil {
		t.Fatalf("restart replica %d: %v", runner, err)
	}
	if code, again, _ := httpDo(t, "GET", c.at(t, runner, status), c.ehr, nil); code != 200 || !bytes.Equal(again, m.raw) {
		t.Errorf("the manifest on the restarted replica: %d %.300s", code, again)
	}
}

// tryHTTPH is tryHTTP (no body) with the response's headers.
func tryHTTPH(method, u, tok string) (int, []byte, http.Header, error) {
	req, err := http.NewRequest(method, u, nil)
	if err != nil {
		return 0, nil, nil, err
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	cl := http.Client{Timeout: 15 * time.Second}
	res, err := cl.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return res.StatusCode, b, res.Header, err
}
