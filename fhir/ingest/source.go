package ingest

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/fhirgate/fhirgate/fhir"
)

// A file to import: NDJSON (one resource a line, the Bulk Data format) or
// JSON (a Bundle or one resource), either of them gzipped.
type source struct {
	path string // absolute: the state's name for it
	name string // as the user wrote it, for messages
	json bool   // .json or .json.gz: a Bundle or a resource
	gz   bool
}

// isImportable says whether a file found in a directory is imported.
func isImportable(name string) (ok, isJSON, gz bool) {
	n := strings.ToLower(name)
	if gz = strings.HasSuffix(n, ".gz"); gz {
		n = strings.TrimSuffix(n, ".gz")
	}
	switch {
	case strings.HasSuffix(n, ".ndjson"):
		return true, false, gz
	case strings.HasSuffix(n, ".json"):
		return true, true, gz
	}
	return false, false, false
}

// listSources expands paths (files and directories, recursively, in
// lexical order) into the files to import. A file named on the command
// line is imported whatever its name (NDJSON unless it ends in .json or
// .json.gz); in directories only .ndjson, .ndjson.gz, .json and .json.gz
// files are, and hidden ones are skipped.
func listSources(paths []string) ([]source, error) {
	var out []source
	seen := map[string]bool{}
	add := func(path, name string, isJSON, gz bool) error {
		abs, err := filepath.Abs(path)
		if err != nil {
			return err
		}
		if !seen[abs] {
			seen[abs] = true
			out = append(out, source{path: abs, name: name, json: isJSON, gz: gz})
		}
		return nil
	}
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		if !st.IsDir() {
			_, isJSON, gz := isImportable(p)
			if err := add(p, p, isJSON, gz); err != nil {
				return nil, err
			}
			continue
		}
		// WalkDir does not follow a symbolic link given as the root.
		root, err := filepath.EvalSymlinks(p)
		if err != nil {
			return nil, err
		}
		found := 0
		err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if path != root && strings.HasPrefix(d.Name(), ".") {
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
			if d.IsDir() {
				return nil
			}
			if ok, isJSON, gz := isImportable(d.Name()); ok {
				rel, err := filepath.Rel(root, path)
				if err != nil {
					return err
				}
				found++
				return add(path, filepath.Join(p, rel), isJSON, gz)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		if found == 0 {
			return nil, fmt.Errorf("%s: no .ndjson, .ndjson.gz, .json or .json.gz files in this directory", p)
		}
	}
	return out, nil
}

// Conditional references (Encounter.participant.individual as
// Practitioner?identifier=...) resolve only to what is already stored,
// so the resources they point to are loaded first, in tiers, each tier
// complete before the next starts (files of one tier go concurrently):
// a file's tier comes from Synthea's bundle names (hospitalInformation,
// practitionerInformation) or from the resourceType of its first
// resource (Bulk Data NDJSON holds one type a file). Synthea's output,
// bundles or bulk NDJSON, refers by identifier to Organizations,
// Locations and Practitioners; PractitionerRoles refer to both of the
// latter. Everything else comes last.
var tierOfType = map[string]int{
	"Organization": 0, "Endpoint": 0,
	"Location": 1, "Practitioner": 1, "Medication": 1, "Substance": 1,
	"PractitionerRole": 2, "HealthcareService": 2,
}

const lastTier = 3

// tiers orders the sources into loading phases (see tierOfType),
// keeping their order within each.
func tiers(srcs []source) [][]source {
	out := make([][]source, lastTier+1)
	for _, s := range srcs {
		t := s.tier()
		out[t] = append(out[t], s)
	}
	return out
}

func (s source) tier() int {
	b := filepath.Base(s.path)
	switch {
	case strings.HasPrefix(b, "hospitalInformation"):
		return 0
	case strings.HasPrefix(b, "practitionerInformation"):
		return 1
	case s.json:
		return lastTier
	}
	if t, ok := tierOfType[s.firstType()]; ok {
		return t
	}
	return lastTier
}

// firstType is the resourceType of an NDJSON file's first resource, or ""
// (unreadable, empty: its failures are reported when it is loaded).
func (s source) firstType() string {
	r, err := s.open()
	if err != nil {
		return ""
	}
	defer r.Close()
	var head struct {
		ResourceType string `json:"resourceType"`
	}
	if json.NewDecoder(r).Decode(&head) != nil {
		return ""
	}
	return head.ResourceType
}

func (s source) open() (io.ReadCloser, error) {
	f, err := os.Open(s.path)
	if err != nil {
		return nil, err
	}
	if !s.gz {
		return f, nil
	}
	zr, err := gzip.NewReader(bufio.NewReaderSize(f, 256<<10))
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: not gzip data: %w", s.name, err)
	}
	return readCloser{zr, f}, nil
}

type readCloser struct {
	io.Reader
	f *os.File
}

func (r readCloser) Close() error { return r.f.Close() }

// countResources counts what a source holds for the progress bar: lines
// of NDJSON, entries of a Bundle (about: the "request" and "resource"
// keys it holds), 1 for a resource.
func countResources(s source) int {
	r, err := s.open()
	if err != nil {
		return 0
	}
	defer r.Close()
	if !s.json {
		n, last := 0, byte('\n')
		buf := make([]byte, 256<<10)
		for {
			m, err := r.Read(buf)
			n += bytes.Count(buf[:m], []byte{'\n'})
			if m > 0 {
				last = buf[m-1]
			}
			if err != nil {
				break
			}
		}
		if last != '\n' {
			n++
		}
		return n
	}
	b, err := io.ReadAll(r)
	if err != nil {
		return 0
	}
	return max(1, bytes.Count(b, []byte(`"resource"`)))
}

// item is one resource to store.
type item struct {
	at      string // "12" (a line) or "entry[3]" (a Bundle entry)
	typ, id string
	raw     []byte // the resource, its id set
	cond    bool   // a conditional create (ifNoneExist): 200 means it existed
}

// chunk is the unit of work and of resumption: resources of one file
// sent in one Bundle (items), or a whole transaction or batch Bundle file
// (body).
type chunk struct {
	src   *source
	key   stateKey
	items []item
	// A Bundle file sent as it is (its POSTs made idempotent).
	body      []byte
	bundleTyp string // "transaction" or "batch" for body
	errs      []lineError
}

// lineError is a line refused before it was sent.
type lineError struct {
	at, typ, id, msg string
}

// chunker cuts an NDJSON stream into chunks of at most size resources.
type chunker struct {
	src   *source
	url   string
	size  int
	line  int
	cur   *chunk
	ids   map[string]bool
	h     hashState
	first int
	// label names a line in messages: its number (NDJSON) by default.
	label func(line int) string
}

type hashState struct {
	b []byte
}

func (c *chunker) start() {
	c.cur = &chunk{src: c.src}
	c.ids = map[string]bool{}
	c.h.b = c.h.b[:0]
	c.first = c.line + 1
}

func (c *chunker) finish() *chunk {
	ch := c.cur
	if ch == nil || len(ch.items)+len(ch.errs) == 0 {
		return nil
	}
	sum := sha256.Sum256(c.h.b)
	ch.key = stateKey{url: c.url, file: c.src.path, from: c.first, n: c.line - c.first + 1, sum: hex.EncodeToString(sum[:12])}
	c.cur = nil
	return ch
}

// add takes one line (without its newline); it returns a full chunk when
// the line does not fit in the current one.
func (c *chunker) add(line []byte) (full *chunk) {
	line = bytes.TrimSpace(line)
	if len(line) == 0 {
		c.line++
		if c.cur != nil {
			c.h.b = binary.AppendUvarint(c.h.b, 0)
		}
		return nil
	}
	it, lerr := parseLine(line)
	if c.cur == nil {
		c.start()
	} else if lerr == nil && (c.ids[it.typ+"/"+it.id] || len(c.cur.items) >= c.size) {
		// A transaction changes a resource once: the same id again starts
		// a new chunk.
		full = c.finish()
		c.start()
	}
	c.line++
	at := fmt.Sprint(c.line)
	if c.label != nil {
		at = c.label(c.line)
	}
	c.h.b = binary.AppendUvarint(c.h.b, uint64(len(line)))
	c.h.b = append(c.h.b, line...)
	if lerr != nil {
		lerr.at = at
		c.cur.errs = append(c.cur.errs, *lerr)
		return full
	}
	it.at = at
	c.ids[it.typ+"/"+it.id] = true
	c.cur.items = append(c.cur.items, it)
	return full
}

// parseLine reads a resource's type and id (a resource without an id gets
// a deterministic one, see derivedID) and checks what the gateway would
// refuse without telling which line (not JSON, not an object).
func parseLine(line []byte) (item, *lineError) {
	var head struct {
		ResourceType string  `json:"resourceType"`
		ID           *string `json:"id"`
	}
	if err := json.Unmarshal(line, &head); err != nil {
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &se):
			return item{}, &lineError{msg: fmt.Sprintf("not valid JSON (at byte %d)", se.Offset)}
		case errors.As(err, &te) && te.Field == "":
			return item{}, &lineError{msg: "not a JSON object: each line holds one resource"}
		case errors.As(err, &te):
			return item{}, &lineError{msg: te.Field + " must be a string"}
		}
		return item{}, &lineError{msg: "not valid JSON"}
	}
	it := item{typ: head.ResourceType, raw: line}
	switch {
	case head.ResourceType == "":
		return item{}, &lineError{msg: "no resourceType"}
	case !fhir.IsResourceType(head.ResourceType):
		return item{}, &lineError{typ: truncate(head.ResourceType, 64), msg: "unknown resourceType"}
	case head.ID == nil:
		it.id = derivedID(line)
		it.raw = withID(line, it.id)
	case !fhir.ValidID(*head.ID):
		return item{}, &lineError{typ: head.ResourceType, msg: "invalid id (1 to 64 of A-Z a-z 0-9 - .)"}
	default:
		it.id = *head.ID
	}
	return it, nil
}

// derivedID is the id of a resource that has none: a hash of its bytes,
// so that a rerun writes the same resource again rather than a copy.
func derivedID(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16])
}

// withID returns the resource object b with "id" set first (b has none).
func withID(b []byte, id string) []byte {
	i := bytes.IndexByte(b, '{')
	out := make([]byte, 0, len(b)+len(id)+8)
	out = append(out, b[:i+1]...)
	out = append(out, `"id":"`...)
	out = append(out, id...)
	out = append(out, '"')
	if rest := bytes.TrimSpace(b[i+1:]); len(rest) > 0 && rest[0] != '}' {
		out = append(out, ',')
	}
	return append(out, b[i+1:]...)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// readNDJSON cuts src into chunks and sends them to out until the file
// ends or stop is closed.
func readNDJSON(src *source, url string, size int, out chan<- *chunk, stop <-chan struct{}) error {
	r, err := src.open()
	if err != nil {
		return err
	}
	defer r.Close()
	br := bufio.NewReaderSize(r, 1<<20)
	c := &chunker{src: src, url: url, size: size}
	emit := func(ch *chunk) bool {
		if ch == nil {
			return true
		}
		select {
		case out <- ch:
			return true
		case <-stop:
			return false
		}
	}
	for {
		line, err := br.ReadBytes('\n')
		if len(line) > 0 {
			if !emit(c.add(line)) {
				return nil
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("%s: %w", src.name, err)
		}
	}
	emit(c.finish())
	return nil
}
