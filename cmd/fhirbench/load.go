package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/fhirgate/fhirgate/internal/synth"
)

type loadConfig struct {
	base, token string
	n           int
	seed        int64
	mode        string // create or transaction
	clients     int
	batch       int // entries per transaction Bundle
	idsFile     string
	dataDir     string // gateway data directory, for bytes on disk
	progress    time.Duration
	serverPID   int
}

// loadState is what the phases of a load share.
type loadState struct {
	cfg       loadConfig
	plan      *synth.Plan
	t         *target
	pracIDs   []string // server ids of practitioners by index
	patIDs    []string // server ids of patients by index
	resources atomic.Int64
}

// runLoad creates the plan's resources: Practitioners first, then each
// Patient with its Appointments and DiagnosticReports.
func runLoad(cfg loadConfig, out io.Writer) error {
	plan := synth.NewPlan(cfg.seed, cfg.n)
	total := plan.Total()
	t, err := newTargetTimeout(cfg.base, cfg.token, cfg.clients, 5*time.Minute)
	if err != nil {
		return err
	}
	st := &loadState{cfg: cfg, plan: plan, t: t,
		pracIDs: make([]string, plan.Practitioners), patIDs: make([]string, plan.Patients)}
	fmt.Fprintf(out, "load: %d resources (%d Practitioners, %d Patients, %d Appointments and DiagnosticReports), seed %d, mode %s, %d clients\n",
		total, plan.Practitioners, plan.Patients, total-plan.Practitioners-plan.Patients, cfg.seed, cfg.mode, cfg.clients)

	stop := make(chan struct{})
	defer close(stop)
	start := time.Now()
	if cfg.progress > 0 {
		go func() {
			tick := time.NewTicker(cfg.progress)
			defer tick.Stop()
			last, lastT := int64(0), start
			for {
				select {
				case <-stop:
					return
				case now := <-tick.C:
					n := st.resources.Load()
					fmt.Fprintf(out, "  %8d/%d resources  %7.0f/s now  %7.0f/s overall  load %s\n", n, total,
						float64(n-last)/now.Sub(lastT).Seconds(), float64(n)/now.Sub(start).Seconds(), loadAvg())
					last, lastT = n, now
				}
			}
		}()
	}

	var results []*Result
	switch cfg.mode {
	case "create":
		results, err = st.loadCreate()
	case "transaction":
		results, err = st.loadTransaction()
	default:
		return fmt.Errorf("load: -mode must be create or transaction, not %q", cfg.mode)
	}
	for _, r := range results {
		fmt.Fprintln(out, r)
	}
	if err != nil {
		return err
	}
	el := time.Since(start)
	n := st.resources.Load()
	fmt.Fprintf(out, "load: %d resources in %s: %.0f resources/s\n", n, el.Round(time.Millisecond), float64(n)/el.Seconds())
	if cfg.idsFile != "" {
		if err := writeIDs(cfg.idsFile, st.patIDs); err != nil {
			return err
		}
		fmt.Fprintf(out, "load: patient ids written to %s\n", cfg.idsFile)
	}
	reportFootprint(out, cfg.base, cfg.dataDir, n)
	return nil
}

// reportFootprint prints the gateway's RSS (from its /metrics) and, when
// the data directory is known, the bytes it holds per resource.
func reportFootprint(out io.Writer, base, dataDir string, resources int64) {
	if m, err := scrapeMetrics(base); err == nil {
		fmt.Fprintf(out, "gateway RSS: %.0f MiB (process_resident_memory_bytes)\n", m.sum("process_resident_memory_bytes")/(1<<20))
	}
	if dataDir != "" {
		size, err := dirSize(dataDir)
		if err == nil && resources > 0 {
			fmt.Fprintf(out, "data directory %s: %.1f MiB, %.0f bytes per resource loaded\n", dataDir, float64(size)/(1<<20), float64(size)/float64(resources))
		}
	}
}

// patientGroup returns the Appointments and DiagnosticReports of patient
// i, referring to the patient as patRef and to practitioners through
// pracRef.
func patientGroup(plan *synth.Plan, i int, patRef synth.Ref, pracRef func(k int) synth.Ref) []synth.Entry {
	g := plan.Gen
	var es []synth.Entry
	for j := range plan.Appointments(i) {
		es = append(es, synth.Entry{
			FullURL:  "urn:uuid:" + g.UUID(2, i, j),
			Type:     "Appointment",
			Resource: g.Appointment(i, j, patRef, pracRef(plan.AppointmentPractitioner(i, j))),
		})
	}
	for j := range plan.Reports(i) {
		es = append(es, synth.Entry{
			FullURL:  "urn:uuid:" + g.UUID(3, i, j),
			Type:     "DiagnosticReport",
			Resource: g.DiagnosticReport(i, j, patRef, pracRef(plan.ReportPractitioner(i, j))),
		})
	}
	return es
}

func (st *loadState) pracRef(k int) synth.Ref {
	return st.plan.Gen.PractitionerRef(k, "Practitioner/"+st.pracIDs[k])
}

// loadCreate sends one POST per resource.
func (st *loadState) loadCreate() ([]*Result, error) {
	plan, t := st.plan, st.t
	dc := driveConfig{Clients: st.cfg.clients, ServerPID: st.cfg.serverPID}
	var next atomic.Int64
	uri := func(typ string) []byte { return []byte(t.path + "/" + typ) }
	pracURI, patURI := uri("Practitioner"), uri("Patient")

	dc.Name = "Practitioner"
	rp := drive(dc, t.prepare, func(w *worker) (int, error) {
		k := int(next.Add(1) - 1)
		if k >= plan.Practitioners {
			return 0, errDone
		}
		status, err := t.send(w, "POST", pracURI, plan.Gen.Practitioner(k))
		if err == nil && status == 201 {
			st.pracIDs[k], err = idFromLocation(w.resp.Header.Peek("Location"), "Practitioner")
			st.resources.Add(1)
		}
		return status, err
	})
	if rp.Errors() > 0 {
		return []*Result{rp}, errors.New("load: some Practitioners were not created")
	}

	// Each worker creates a Patient, then its group one request at a
	// time (every request is one measured operation).
	next.Store(0)
	type pending struct {
		es []synth.Entry
	}
	dc.Name = "Patient+"
	rg := drive(dc, func(w *worker) { t.prepare(w); w.state = &pending{} }, func(w *worker) (int, error) {
		p := w.state.(*pending)
		if len(p.es) > 0 {
			e := p.es[0]
			p.es = p.es[1:]
			w.buf = append(w.buf[:0], t.path...)
			w.buf = append(w.buf, '/')
			w.buf = append(w.buf, e.Type...)
			status, err := t.send(w, "POST", w.buf, e.Resource)
			if err == nil && status == 201 {
				st.resources.Add(1)
			}
			return status, err
		}
		i := int(next.Add(1) - 1)
		if i >= plan.Patients {
			return 0, errDone
		}
		status, err := t.send(w, "POST", patURI, plan.Gen.Patient(i, st.pracRef(plan.GP(i))))
		if err != nil || status != 201 {
			return status, err
		}
		id, err := idFromLocation(w.resp.Header.Peek("Location"), "Patient")
		if err != nil {
			return 0, err
		}
		st.patIDs[i] = id
		st.resources.Add(1)
		p.es = patientGroup(plan, i, plan.Gen.PatientRef(i, "Patient/"+id), st.pracRef)
		return status, nil
	})
	if rg.Errors() > 0 {
		return []*Result{rp, rg}, errors.New("load: some resources were not created")
	}
	return []*Result{rp, rg}, nil
}

// txResponse is the part of a transaction-response Bundle the loader
// reads.
type txResponse struct {
	ResourceType string `json:"resourceType"`
	Type         string `json:"type"`
	Entry        []struct {
		Response struct {
			Status   string `json:"status"`
			Location string `json:"location"`
		} `json:"response"`
	} `json:"entry"`
}

// loadTransaction sends Bundles of type transaction of up to cfg.batch
// entries: Practitioners first, then Patients each with its whole group
// in the same Bundle, referenced by urn:uuid.
func (st *loadState) loadTransaction() ([]*Result, error) {
	plan, t, size := st.plan, st.t, max(st.cfg.batch, 1)
	dc := driveConfig{Clients: st.cfg.clients, ServerPID: st.cfg.serverPID}
	baseURI := []byte(t.path)
	var next atomic.Int64

	// post sends one Bundle and returns the locations of its entries.
	post := func(w *worker, entries []synth.Entry, wantLocations bool) (int, []string, error) {
		body := synth.TransactionBundle(entries)
		status, err := t.send(w, "POST", baseURI, body)
		if err != nil || status != 200 {
			return status, nil, err
		}
		st.resources.Add(int64(len(entries)))
		w.results += int64(len(entries))
		if !wantLocations {
			return status, nil, nil
		}
		var tr txResponse
		if err := json.Unmarshal(w.resp.Body(), &tr); err != nil {
			return 0, nil, fmt.Errorf("transaction response: %w", err)
		}
		if tr.Type != "transaction-response" || len(tr.Entry) != len(entries) {
			return 0, nil, fmt.Errorf("transaction response: type %q with %d entries for %d", tr.Type, len(tr.Entry), len(entries))
		}
		locs := make([]string, len(entries))
		for m, e := range tr.Entry {
			locs[m] = e.Response.Location
		}
		return status, locs, nil
	}

	dc.Name = "tx-Practitioner"
	nb := (plan.Practitioners + size - 1) / size
	rp := drive(dc, t.prepare, func(w *worker) (int, error) {
		b := int(next.Add(1) - 1)
		if b >= nb {
			return 0, errDone
		}
		lo, hi := b*size, min((b+1)*size, plan.Practitioners)
		entries := make([]synth.Entry, 0, hi-lo)
		for k := lo; k < hi; k++ {
			entries = append(entries, synth.Entry{FullURL: "urn:uuid:" + plan.Gen.UUID(4, k, 0), Type: "Practitioner", Resource: plan.Gen.Practitioner(k)})
		}
		status, locs, err := post(w, entries, true)
		for m, loc := range locs {
			if st.pracIDs[lo+m], err = idFromLocation([]byte(loc), "Practitioner"); err != nil {
				return 0, err
			}
		}
		return status, err
	})
	if rp.Errors() > 0 {
		return []*Result{rp}, errors.New("load: some Practitioner Bundles failed")
	}

	// Cut the Patients into Bundles of at most size entries, a Patient
	// always with its whole group.
	var starts []int
	n := 0
	for i := range plan.Patients {
		g := 1 + plan.Appointments(i) + plan.Reports(i)
		if i == 0 || n+g > size {
			starts = append(starts, i)
			n = 0
		}
		n += g
	}
	starts = append(starts, plan.Patients)
	next.Store(0)
	wantIDs := st.cfg.idsFile != ""
	dc.Name = "tx-Patient+"
	rg := drive(dc, t.prepare, func(w *worker) (int, error) {
		b := int(next.Add(1) - 1)
		if b >= len(starts)-1 {
			return 0, errDone
		}
		var entries []synth.Entry
		var patAt []int // entry position of each patient
		for i := starts[b]; i < starts[b+1]; i++ {
			full := "urn:uuid:" + plan.Gen.UUID(1, i, 0)
			patAt = append(patAt, len(entries))
			entries = append(entries, synth.Entry{FullURL: full, Type: "Patient", Resource: plan.Gen.Patient(i, st.pracRef(plan.GP(i)))})
			entries = append(entries, patientGroup(plan, i, plan.Gen.PatientRef(i, full), st.pracRef)...)
		}
		status, locs, err := post(w, entries, wantIDs)
		if wantIDs && err == nil {
			for m, at := range patAt {
				if st.patIDs[starts[b]+m], err = idFromLocation([]byte(locs[at]), "Patient"); err != nil {
					return 0, err
				}
			}
		}
		return status, err
	})
	for _, r := range []*Result{rp, rg} {
		r.Note = fmt.Sprintf("(Bundles; %.0f resources/s)", float64(r.Results)/r.Elapsed.Seconds())
		r.Results = 0
	}
	if rg.Errors() > 0 {
		return []*Result{rp, rg}, errors.New("load: some Bundles failed")
	}
	return []*Result{rp, rg}, nil
}

// writeIDs writes "index id" lines for the patients.
func writeIDs(path string, ids []string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	for i, id := range ids {
		if id != "" {
			fmt.Fprintf(w, "%d %s\n", i, id)
		}
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// readIDs reads what writeIDs wrote.
func readIDs(path string) (map[int]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	ids := map[int]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		a, b, ok := strings.Cut(sc.Text(), " ")
		i, err := strconv.Atoi(a)
		if !ok || err != nil {
			return nil, fmt.Errorf("%s: bad line %q", path, sc.Text())
		}
		ids[i] = b
	}
	return ids, sc.Err()
}
