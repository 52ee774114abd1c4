package main

import (
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

	// Update: PUT [base]/Patient/ID with another pool body and that id;
	// each worker updates its own share of the ids (no write races).
	update := phase("update", setup, func(w *worker) (int, error) {
		k := w.id + w.n*cfg.clients
		if k >= len(ids) {
			k = w.rng.IntN(len(ids))
		} else {
			k %= len(ids)
		}
		src := pool[(k+w.n)%len(pool)]
		w.buf = append(w.buf[:0], patientPrefix...)
		w.buf = append(w.buf, `"id":"`...)
		w.buf = append(w.buf, ids[k]...)
		w.buf = append(w.buf, `",`...)
		w.buf = append(w.buf, src[len(patientPrefix):]...)
		return t.send(w, "PUT", uris[k], w.buf)
	})
	return append(results, update), nil
}

// createOp creates Patients: POST uri (base/Patient) with bodies cycled
// through pool, keeping the id of every Patient created in w.ids (also
// those created in the warm-up and after the measured window).
func createOp(t *target, uri []byte, pool [][]byte, clients int) opFunc {
	return func(w *worker) (int, error) {
		body := pool[(w.id+w.n*clients)%len(pool)]
		status, err := t.send(w, "POST", uri, body)
		if err == nil && status == 201 {
			id, err := idFromLocation(w.resp.Header.Peek("Location"), "Patient")
			if err != nil {
				return 0, err
			}
			w.ids = append(w.ids, id)
		}
		return status, err
	}
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
