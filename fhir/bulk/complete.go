package bulk

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/fhirgate/fhirgate/audit"
	"github.com/fhirgate/fhirgate/fhir"
)

// manifestFile is one output entry of the manifest. The IG reserves the
// name "extension" for servers: it carries the file's SHA-256 (hex), which
// the export's AuditEvent binds through the manifest's own hash.
type manifestFile struct {
	Type      string            `json:"type"`
	URL       string            `json:"url"`
	Count     int               `json:"count"`
	Extension map[string]string `json:"extension"`
}

type manifest struct {
	TransactionTime     string         `json:"transactionTime"`
	Request             string         `json:"request"`
	RequiresAccessToken bool           `json:"requiresAccessToken"`
	Output              []manifestFile `json:"output"`
	// Deleted lists the files of deletions (an export with _since).
	Deleted []manifestFile `json:"deleted,omitempty"`
	Error   []manifestFile `json:"error"`
}

// auditBatch bounds the events of one audit commit.
const auditBatch = 2000

// complete builds the manifest, audits the export and publishes the
// manifest, in that order: nothing is served that is not audited. The
// events are one per patient whose data the files hold (IHE BALP: the
// patient's own trail shows it; an event naming several patients would
// show each of them the others), and one for the export itself, naming no
// patient, whose outcomeDesc holds the manifest's SHA-256: the event's
// log leaf binds the manifest, which lists each file's SHA-256.
func (r *runner) complete(ctx context.Context) error {
	j := r.j
	m := manifest{TransactionTime: fhir.FormatInstant(j.TxTime), Request: j.Req.URL, RequiresAccessToken: true,
		Output: []manifestFile{}, Error: []manifestFile{}}
	for _, f := range j.Files {
		if f.Count == 0 {
			continue
		}
		mf := manifestFile{Type: f.Type, URL: fileURL(j.Req.Base, j.ID, f.N), Count: f.Count,
			Extension: map[string]string{"sha256": f.SHA256}}
		if j.DelFrom > 0 && f.N >= j.DelFrom {
			m.Deleted = append(m.Deleted, mf)
		} else {
			m.Output = append(m.Output, mf)
		}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // the request URL's '&' as it is
	if err := enc.Encode(m); err != nil {
		return err
	}
	b := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	sum := sha256.Sum256(b)
	j.Manifest, j.ManifestSHA = b, hex.EncodeToString(sum[:])
	n, err := r.audit(ctx)
	if err != nil {
		return err
	}
	j.Patients = n
	j.State = stateComplete
	j.Expires = r.x.cfg.Now().Add(r.x.cfg.Expiry)
	return r.commit(ctx, nil, false)
}

// audit records the export's AuditEvents and returns how many patients
// they name.
func (r *runner) audit(ctx context.Context) (int, error) {
	j := r.j
	rec := r.x.cfg.Audit
	reason := "bulk data export " + j.ID + ": " + strconv.FormatInt(j.Written, 10) + " resources in " +
		strconv.Itoa(len(j.Files)) + " files, manifest sha256 " + j.ManifestSHA
	ev := audit.Event{Principal: &j.Principal, Interaction: "operation", Outcome: audit.Success, Query: j.Req.URL}
	n := 0
	err := r.x.patients(ctx, j.ID, func(batch []string) error {
		n += len(batch)
		if rec == nil {
			return nil
		}
		evs := make([]audit.Event, 0, len(batch))
		for _, p := range batch {
			e := ev
			e.Time, e.Reason, e.Patients = r.x.cfg.Now(), reason, []string{p}
			evs = append(evs, e)
		}
		for len(evs) > 0 {
			k := min(len(evs), auditBatch)
			if err := rec.RecordAll(ctx, evs[:k]); err != nil {
				return err
			}
			evs = evs[k:]
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("the export could not be audited: %w", err)
	}
	if rec != nil {
		e := ev
		e.Time, e.Reason = r.x.cfg.Now(), reason+", "+strconv.Itoa(n)+" patients"
		if err := rec.Record(ctx, e); err != nil {
			return 0, fmt.Errorf("the export could not be audited: %w", err)
		}
	}
	return n, nil
}
