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
	create := phase("create", func(w *worker) { setup(w); workers = append(workers, w) }, func(w *worker) (int, error) {
		body := pool[(w.id+w.n*cfg.clients)%len(pool)]
		status, err := t.send(w, "POST", createURI, body)
		if err == nil && status == 201 {
			id, err := idFromLocation(w.resp.Header.Peek("Location"), "Patient")
			if err != nil {
				return 0, err
			}
			w.ids = append(w.ids, id)
		}
		return status, err
	})
	var ids []string
	for _, w := range workers {
		ids = append(ids, w.ids...)
	}
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

// readOp reads a random one of uris.
func readOp(t *target, uris [][]byte) opFunc {
	return func(w *worker) (int, error) {
		return t.get(w, uris[w.rng.IntN(len(uris))])
	}
}
