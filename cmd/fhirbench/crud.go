package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/fhirgate/fhirgate/internal/synth"
)

type crudConfig struct {
	base, token string
	clients     int
	warmup      time.Duration
	duration    time.Duration
	pool        int
	seed        int64
	minimal     bool
	serverPID   int
	// updatePhone: each update sends the record's own body with its
	// first phone number changed (an EHR's update of one field), instead
	// of another Patient's body (every field, so every index value,
	// changes).
	updatePhone bool
	// fieldUpdates: before the update phase, an "update-field" phase
	// of one-field updates (as updatePhone), so that one run reports
	// both kinds (the suite). It runs first: the whole-body updates
	// leave records the pool's bodies no longer describe.
	fieldUpdates bool
	// hook, if set, is called before (begin) and after each phase.
	hook func(phase string, begin bool)
	// afterRead, if set, runs right after the read phase (on the data
	// the read phase saw) and returns more phases' results.
	afterRead func() ([]*Result, error)
}

const patientPrefix = `{"resourceType":"Patient",`

// patientPool returns n synthetic Patients without references (the
// bodies creates send, cycled).
func patientPool(seed int64, n int) [][]byte {
	g := synth.New(seed)
	pool := make([][]byte, n)
	for i := range pool {
		pool[i] = g.Patient(i, synth.Ref{})
	}
	return pool
}

// runCRUD runs the create, read and update phases one after the other
// and returns their results. Reads and updates use the ids the creates
// made.
func runCRUD(cfg crudConfig, log io.Writer) ([]*Result, error) {
	t, err := newTarget(cfg.base, cfg.token, cfg.clients)
	if err != nil {
		return nil, err
	}
	pool := patientPool(cfg.seed, cfg.pool)
	dc := driveConfig{Clients: cfg.clients, Warmup: cfg.warmup, Duration: cfg.duration, ServerPID: cfg.serverPID}
	setup := func(w *worker) {
		t.prepare(w)
		if cfg.minimal {
			w.req.Header.Set("Prefer", "return=minimal")
		}
	}

	// Create: POST [base]/Patient, bodies cycled through the pool.
	createURI := []byte(t.path + "/Patient")
	phase := func(name string, setup func(w *worker), op opFunc) *Result {
		dc.Name = name
		if cfg.hook != nil {
			cfg.hook(name, true)
		}
		r := drive(dc, setup, op)
		if cfg.hook != nil {
			cfg.hook(name, false)
		}
		fmt.Fprintln(log, r)
		return r
	}
	var workers []*worker
	create := phase("create", func(w *worker) { setup(w); workers = append(workers, w) }, createOp(t, createURI, pool, cfg.clients))
	ids := createdIDs(workers)
	if len(ids) == 0 {
		return []*Result{create}, errors.New("crud: the create phase created nothing; first error: " + create.FirstErr)
	}
	bodies := createdBodies(workers)
	uris := make([][]byte, len(ids))
	for i, id := range ids {
		uris[i] = []byte(t.path + "/Patient/" + id)
	}

	// Read: GET [base]/Patient/ID of random created ids.
	read := phase("read", setup, readOp(t, uris))
	results := []*Result{create, read}
	if cfg.afterRead != nil {
		more, err := cfg.afterRead()
		results = append(results, more...)
		if err != nil {
			return results, err
		}
	}

	// Update: PUT [base]/Patient/ID with another pool body and that id
	// (or, phone, its own body with one phone number changed); each
	// worker updates its own share of the ids (no write races).
	updateOp := func(phone bool) opFunc {
		return func(w *worker) (int, error) {
			k := w.id + w.n*cfg.clients
			if k >= len(ids) {
				k = w.rng.IntN(len(ids))
			} else {
				k %= len(ids)
			}
			src := pool[(k+w.n)%len(pool)]
			if phone {
				src = pool[bodies[k]]
			}
			w.buf = append(w.buf[:0], patientPrefix...)
			w.buf = append(w.buf, `"id":"`...)
			w.buf = append(w.buf, ids[k]...)
			w.buf = append(w.buf, `",`...)
			if phone {
				w.buf = appendNewPhone(w.buf, src[len(patientPrefix):], w.id*1_000_000+w.n)
			} else {
				w.buf = append(w.buf, src[len(patientPrefix):]...)
			}
			return t.send(w, "PUT", uris[k], w.buf)
		}
	}
	if cfg.fieldUpdates {
		results = append(results, phase("update-field", setup, updateOp(true)))
	}
	update := phase("update", setup, updateOp(cfg.updatePhone))
	return append(results, update), nil
}

// createOp creates Patients: POST uri (base/Patient) with bodies cycled
// through pool, keeping the id of every Patient created in w.ids (also
// those created in the warm-up and after the measured window).
func createOp(t *target, uri []byte, pool [][]byte, clients int) opFunc {
	return func(w *worker) (int, error) {
		bi := (w.id + w.n*clients) % len(pool)
		status, err := t.send(w, "POST", uri, pool[bi])
		if err == nil && status == 201 {
			id, err := idFromLocation(w.resp.Header.Peek("Location"), "Patient")
			if err != nil {
				return 0, err
			}
			w.ids = append(w.ids, id)
			w.bodies = append(w.bodies, bi)
		}
		return status, err
	}
}

// phoneValue starts the first phone number of a synthetic Patient.
var phoneValue = []byte(`"telecom":[{"system":"phone","value":"`)

// appendNewPhone appends body with the value of its first phone number
// replaced by one made of n (body as it is if it has none).
func appendNewPhone(buf, body []byte, n int) []byte {
	i := bytes.Index(body, phoneValue)
	if i < 0 {
		return append(buf, body...)
	}
	i += len(phoneValue)
	j := bytes.IndexByte(body[i:], '"')
	if j < 0 {
		return append(buf, body...)
	}
	buf = append(buf, body[:i]...)
	buf = fmt.Appendf(buf, "+1 206-%03d-%04d", n/10000%1000, n%10000)
	return append(buf, body[i+j:]...)
}

// createdBodies are the pool indexes of the bodies the ids of createdIDs
// were created with, in the same order.
func createdBodies(workers []*worker) []int {
	var bs []int
	for _, w := range workers {
		bs = append(bs, w.bodies...)
	}
	return bs
}

// createdIDs are the ids the workers of a create phase created.
func createdIDs(workers []*worker) []string {
	var ids []string
	for _, w := range workers {
		ids = append(ids, w.ids...)
	}
	return ids
}

// runCreate runs one create phase named name (POST [base]/Patient, as
// crud's create) and returns its result and the ids of every Patient it
// created, warm-up included.
func runCreate(cfg crudConfig, name string, log io.Writer) (*Result, []string, error) {
	t, err := newTarget(cfg.base, cfg.token, cfg.clients)
	if err != nil {
		return nil, nil, err
	}
	pool := patientPool(cfg.seed, cfg.pool)
	dc := driveConfig{Name: name, Clients: cfg.clients, Warmup: cfg.warmup, Duration: cfg.duration, ServerPID: cfg.serverPID}
	var workers []*worker
	setup := func(w *worker) {
		t.prepare(w)
		if cfg.minimal {
			w.req.Header.Set("Prefer", "return=minimal")
		}
		workers = append(workers, w)
	}
	if cfg.hook != nil {
		cfg.hook(name, true)
	}
	r := drive(dc, setup, createOp(t, []byte(t.path+"/Patient"), pool, cfg.clients))
	if cfg.hook != nil {
		cfg.hook(name, false)
	}
	fmt.Fprintln(log, r)
	ids := createdIDs(workers)
	if len(ids) == 0 {
		return r, nil, fmt.Errorf("%s: the create phase created nothing; first error: %s", name, r.FirstErr)
	}
	return r, ids, nil
}

// readOp reads a random one of uris.
func readOp(t *target, uris [][]byte) opFunc {
	return func(w *worker) (int, error) {
		return t.get(w, uris[w.rng.IntN(len(uris))])
	}
}
