package ingest

import (
	"bufio"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"sync"
)

// The state file makes an import resumable. It is NDJSON, one record a
// line, appended as chunks start and finish:
//
//	{"url":"http://…/fhir","file":"/abs/Patient.ndjson","from":101,"n":100,"sum":"3f…","state":"start"}
//	{"url":"http://…/fhir","file":"/abs/Patient.ndjson","from":101,"n":100,"sum":"3f…","state":"done"}
//
// A chunk is named by its file, first line, line count and a hash of its
// bytes, so a rerun skips exactly the chunks whose lines have not changed
// (a file fixed at line 5,000 resends only the chunk holding that line),
// and an import into another gateway (url) skips nothing. A chunk that
// started but did not finish (the import was killed while it was in
// flight) may or may not be stored: a rerun compares what the gateway
// holds before sending it again. Records are written, not synced: they
// survive the import being killed, not the machine crashing (then a rerun
// writes some resources again, with the same content).
type stateRecord struct {
	URL   string `json:"url"`
	File  string `json:"file"`
	From  int    `json:"from"`
	N     int    `json:"n"`
	Sum   string `json:"sum"`
	State string `json:"state"` // start or done
}

func (r stateRecord) key() stateKey { return stateKey{r.URL, r.File, r.From, r.N, r.Sum} }

type stateKey struct {
	url, file string
	from, n   int
	sum       string
}

type stateFile struct {
	mu        sync.Mutex
	f         *os.File
	done      map[stateKey]bool
	uncertain map[stateKey]bool
}

// openState reads the state at path (absent: empty) and rewrites it with
// what still matters (finished chunks, and those started but not
// finished), so that it does not grow with every run.
func openState(path string) (*stateFile, error) {
	s := &stateFile{done: map[stateKey]bool{}, uncertain: map[stateKey]bool{}}
	var keep []stateRecord
	if f, err := os.Open(path); err == nil {
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		started := map[stateKey]stateRecord{}
		for sc.Scan() {
			var r stateRecord
			if json.Unmarshal(sc.Bytes(), &r) != nil {
				continue // a line cut short when the import was killed
			}
			switch r.State {
			case "done":
				if !s.done[r.key()] {
					s.done[r.key()] = true
					keep = append(keep, r)
				}
				delete(started, r.key())
			case "start":
				started[r.key()] = r
			}
		}
		err := sc.Err()
		f.Close()
		if err != nil {
			return nil, err
		}
		for k, r := range started {
			if !s.done[k] {
				s.uncertain[k] = true
				keep = append(keep, r)
			}
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return nil, err
	}
	w := bufio.NewWriter(f)
	enc := json.NewEncoder(w)
	for _, r := range keep {
		enc.Encode(r)
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return nil, err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, err
	}
	f.Close()
	if err := os.Rename(tmp, path); err != nil {
		return nil, err
	}
	if s.f, err = os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0o600); err != nil {
		return nil, err
	}
	return s, nil
}

// DefaultStatePath is where the state goes without --state: beside the
// first path ("export/" → "export.import-state"), or in the working
// directory when that directory cannot be written.
func DefaultStatePath(first string) string {
	abs, err := filepath.Abs(first)
	if err == nil {
		p := filepath.Clean(abs) + ".import-state"
		if f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600); err == nil {
			f.Close()
			return p
		}
	}
	return "gateway-import.state"
}

func (s *stateFile) isDone(k stateKey) bool      { return s.done[k] }
func (s *stateFile) isUncertain(k stateKey) bool { return s.uncertain[k] }

func (s *stateFile) record(k stateKey, state string) error {
	b, _ := json.Marshal(stateRecord{URL: k.url, File: k.file, From: k.from, N: k.n, Sum: k.sum, State: state})
	b = append(b, '\n')
	s.mu.Lock()
	defer s.mu.Unlock()
	_, err := s.f.Write(b) // one write: a kill leaves whole lines, or a cut last one
	return err
}

func (s *stateFile) close() error {
	if err := s.f.Sync(); err != nil {
		s.f.Close()
		return err
	}
	return s.f.Close()
}
