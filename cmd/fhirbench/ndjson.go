package main

import (
	"bufio"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/fhirgate/fhirgate/internal/synth"
)

// cmdNDJSON writes a data set as Bulk Data NDJSON files (one per type),
// for `gateway import` (BENCHMARKS.md, Import).
func cmdNDJSON(args []string, stdout, stderr io.Writer) error {
	f := newFlagsTimed("ndjson", "-out DIR -n N [-shape load|synthea]", `
Writes a data set as NDJSON files, one per resource type, each resource
with its id and literal references: -shape load is the data set of 'load'
with the same -n and -seed (Practitioners, Patients, Appointments,
DiagnosticReports); -shape synthea is Synthea's bulk export shape
(internal/synth's Synthea generator: Encounters, Observations, Claims, ...)
of -n patients.`, stderr, 1, false)
	out := f.String("out", "", "directory to write (required)")
	n := f.Int("n", 100_000, "resources (about) for -shape load; patients for -shape synthea")
	shape := f.String("shape", "load", "load or synthea")
	gz := f.Bool("gzip", false, "write .ndjson.gz")
	ordered := f.Bool("ordered-ids", false, "-shape load: ids that sort in the order resources are written (as the gateway's UUID v7 do), not random UUIDs")
	if err := f.parse(args); err != nil {
		return err
	}
	if err := required(f, "out"); err != nil {
		return err
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	files := map[string]*ndjsonFile{}
	write := func(typ string, line []byte) error {
		w := files[typ]
		if w == nil {
			var err error
			if w, err = createNDJSON(filepath.Join(*out, typ+".ndjson"), *gz); err != nil {
				return err
			}
			files[typ] = w
		}
		w.n++
		w.w.Write(line)
		return w.w.WriteByte('\n')
	}
	var err error
	switch *shape {
	case "load":
		id := synth.NewPlan(*f.seed, *n).Gen.UUID
		if *ordered {
			id = synth.OrderedID
		}
		err = synth.NewPlan(*f.seed, *n).NDJSONWithIDs(id, write)
	case "synthea":
		err = synth.NewSynthea(*f.seed, max(1, *n/500), 20).NDJSON(*n, write)
	default:
		return fmt.Errorf("ndjson: -shape must be load or synthea, not %q", *shape)
	}
	total := 0
	for typ, w := range files {
		if e := w.close(); e != nil && err == nil {
			err = e
		}
		total += w.n
		fmt.Fprintf(stdout, "%s: %d\n", typ, w.n)
	}
	fmt.Fprintf(stdout, "ndjson: %d resources in %d files under %s\n", total, len(files), *out)
	return err
}

type ndjsonFile struct {
	f *os.File
	z *gzip.Writer
	w *bufio.Writer
	n int
}

func createNDJSON(path string, gz bool) (*ndjsonFile, error) {
	if gz {
		path += ".gz"
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	nf := &ndjsonFile{f: f}
	var w io.Writer = f
	if gz {
		nf.z = gzip.NewWriter(f)
		w = nf.z
	}
	nf.w = bufio.NewWriterSize(w, 1<<20)
	return nf, nil
}

func (nf *ndjsonFile) close() error {
	err := nf.w.Flush()
	if nf.z != nil {
		if e := nf.z.Close(); err == nil {
			err = e
		}
	}
	if e := nf.f.Close(); err == nil {
		err = e
	}
	return err
}
