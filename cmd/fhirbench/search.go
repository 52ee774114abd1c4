package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/fhirgate/fhirgate/internal/synth"
)

type searchConfig struct {
	base, token string
	n           int
	seed        int64
	clients     int
	warmup      time.Duration
	duration    time.Duration
	kinds       []string
	idsFile     string
	discover    int // patients to look up for reference searches without an ids file
	serverPID   int
	rate        float64 // searches/s on a fixed schedule (0: closed loop)
}

// searchKinds are the searches the search command can run, each a
// selective query built from values the generator can recompute.
var searchKinds = map[string]string{
	"token":     "Patient?identifier=MRN-system|MRN of a random patient (1 match)",
	"reference": "DiagnosticReport?subject=Patient/ID of a random known patient (0-4 matches)",
	"date":      "Appointment?date=geT&date=ltT+1h, T the hour of a random appointment",
	"string":    "Patient?family=<first 4 letters of a family name>&given=<given name> of a random patient",
}

var matchMarker = []byte(`"mode":"match"`)

// runSearch runs each kind of search for cfg.duration and reports them
// separately.
func runSearch(cfg searchConfig, out io.Writer) ([]*Result, error) {
	plan := synth.NewPlan(cfg.seed, cfg.n)
	g := plan.Gen
	t, err := newTarget(cfg.base, cfg.token, cfg.clients)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(out, "search: data set of %d Patients (seed %d, -n %d), %d clients\n", plan.Patients, cfg.seed, cfg.n, cfg.clients)
	if cfg.rate > 0 {
		fmt.Fprintf(out, "search: paced at %.0f searches/s, latency counted from when each search was due\n", cfg.rate)
	}
	q := url.QueryEscape
	var results []*Result
	for _, kind := range cfg.kinds {
		var build func(r *rand.Rand, buf []byte) []byte
		switch kind {
		case "token":
			prefix := t.path + "/Patient?identifier=" + q(synth.MRNSystem+"|")
			build = func(r *rand.Rand, buf []byte) []byte {
				return append(append(buf, prefix...), g.MRN(r.IntN(plan.Patients))...)
			}
		case "reference":
			ids, err := patientIDs(cfg, plan, t, out)
			if err != nil {
				return results, err
			}
			prefix := t.path + "/DiagnosticReport?subject=Patient%2F"
			build = func(r *rand.Rand, buf []byte) []byte {
				return append(append(buf, prefix...), ids[r.IntN(len(ids))]...)
			}
		case "date":
			prefix := t.path + "/Appointment?date=ge"
			build = func(r *rand.Rand, buf []byte) []byte {
				i := r.IntN(plan.Patients)
				for plan.Appointments(i) == 0 {
					i = r.IntN(plan.Patients)
				}
				lo := g.AppointmentStart(i, r.IntN(plan.Appointments(i))).Truncate(time.Hour)
				buf = append(buf, prefix...)
				buf = append(buf, q(lo.Format(time.RFC3339))...)
				buf = append(buf, "&date=lt"...)
				return append(buf, q(lo.Add(time.Hour).Format(time.RFC3339))...)
			}
		case "string":
			prefix := t.path + "/Patient?family="
			build = func(r *rand.Rand, buf []byte) []byte {
				n := g.PatientName(r.IntN(plan.Patients))
				fam := n.Family
				if utf8.RuneCountInString(fam) > 4 {
					fam = string([]rune(fam)[:4])
				}
				buf = append(buf, prefix...)
				buf = append(buf, q(fam)...)
				buf = append(buf, "&given="...)
				return append(buf, q(n.Given[0])...)
			}
		default:
			return results, fmt.Errorf("search: unknown kind %q (known: token, reference, date, string)", kind)
		}
		r := drive(driveConfig{Name: kind, Clients: cfg.clients, Warmup: cfg.warmup, Duration: cfg.duration, ServerPID: cfg.serverPID, Rate: cfg.rate},
			t.prepare, func(w *worker) (int, error) {
				w.buf = build(w.rng, w.buf[:0])
				status, err := t.get(w, w.buf)
				if err == nil && status == 200 {
					w.results += int64(bytes.Count(w.resp.Body(), matchMarker))
				}
				return status, err
			})
		fmt.Fprintln(out, r)
		results = append(results, r)
	}
	return results, nil
}

// patientIDs returns server ids of patients: from the ids file load
// wrote, or by looking up cfg.discover random patients by MRN.
func patientIDs(cfg searchConfig, plan *synth.Plan, t *target, out io.Writer) ([]string, error) {
	if cfg.idsFile != "" {
		m, err := readIDs(cfg.idsFile)
		if err != nil {
			return nil, err
		}
		ids := make([]string, 0, len(m))
		for _, id := range m {
			ids = append(ids, id)
		}
		if len(ids) == 0 {
			return nil, errors.New("search: no ids in " + cfg.idsFile)
		}
		return ids, nil
	}
	n := min(cfg.discover, plan.Patients)
	fmt.Fprintf(out, "search: looking up %d patients by MRN for reference searches\n", n)
	r := rand.New(rand.NewPCG(uint64(cfg.seed), 99))
	var ids []string
	w := &worker{}
	t.prepare(w)
	prefix := t.path + "/Patient?identifier=" + url.QueryEscape(synth.MRNSystem+"|")
	for range n {
		status, err := t.get(w, []byte(prefix+plan.Gen.MRN(r.IntN(plan.Patients))))
		if err != nil {
			return nil, err
		}
		if status != 200 {
			return nil, fmt.Errorf("search: patient lookup: HTTP %d: %s", status, truncate(string(w.resp.Body()), 300))
		}
		var b struct {
			Entry []struct {
				Resource struct {
					ID string `json:"id"`
				} `json:"resource"`
			} `json:"entry"`
		}
		if err := json.Unmarshal(w.resp.Body(), &b); err != nil {
			return nil, err
		}
		for _, e := range b.Entry {
			if e.Resource.ID != "" {
				ids = append(ids, e.Resource.ID)
			}
		}
	}
	if len(ids) == 0 {
		return nil, errors.New("search: no patient found by MRN; was the data loaded with the same -n and -seed?")
	}
	fmt.Fprintf(out, "search: found %d of %d\n", len(ids), n)
	return ids, nil
}

func splitKinds(s string) []string {
	var ks []string
	for _, k := range strings.Split(s, ",") {
		if k = strings.TrimSpace(k); k != "" {
			ks = append(ks, k)
		}
	}
	return ks
}
