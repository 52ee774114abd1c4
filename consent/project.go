package consent

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/fhirgate/fhirgate/policy"
	"github.com/fhirgate/fhirgate/store"
)

// Projection is one Consent resource projected from chain state, for the
// gateway to store as a read-only resource.
type Projection struct {
	// ID is the Consent's id, derived from (chain id, registry, patient
	// wallet, grantee hash, scope hash): the same grant always has the
	// same id.
	ID string
	// Patient is the patient the Consent belongs to, "Patient/<id>".
	Patient string
	// Body is the R4 Consent JSON (with id, without meta), or nil when the
	// Consent must be deleted: its grant left the chain (a reorg removed
	// it, or the follower was reset to another chain or registry).
	Body []byte
}

// Code systems and identifier systems the projection uses.
const (
	// RegistrySystem identifies a grant: the value is
	// "eip155:<chainId>:<registry>/<patient wallet>/<grantee hash>/<scope hash>".
	RegistrySystem = "urn:fhirgate:consent-registry"
	// TxSystem identifies a transaction: "eip155:<chainId>:<tx hash>".
	TxSystem = "urn:fhirgate:eth-tx"
	// ClientSystem identifies a registered client, the grantee of a
	// "client/<id>" grant (clients are not FHIR resources).
	ClientSystem = policy.ClientSystem
)

// consentID derives the Consent id of a grant.
func consentID(chainID uint64, registry common.Address, k gkey) string {
	h := crypto.Keccak256(binaryUint(chainID), registry[:], k.bytes())
	return "chain-" + hex.EncodeToString(h[:20])
}

func binaryUint(n uint64) []byte {
	b := make([]byte, 8)
	for i := 7; i >= 0; i-- {
		b[i] = byte(n)
		n >>= 8
	}
	return b
}

type coding struct {
	System  string `json:"system"`
	Code    string `json:"code"`
	Display string `json:"display,omitempty"`
}

type codeableConcept struct {
	Coding []coding `json:"coding"`
	Text   string   `json:"text,omitempty"`
}

type identifier struct {
	System string `json:"system"`
	Value  string `json:"value"`
}

type reference struct {
	Reference  string      `json:"reference,omitempty"`
	Identifier *identifier `json:"identifier,omitempty"`
	Display    string      `json:"display,omitempty"`
}

type period struct {
	Start string `json:"start,omitempty"`
	End   string `json:"end,omitempty"`
}

type actor struct {
	Role      codeableConcept `json:"role"`
	Reference reference       `json:"reference"`
}

type policyURI struct {
	URI string `json:"uri"`
}

type provision struct {
	Type   string            `json:"type"`
	Period *period           `json:"period,omitempty"`
	Actor  []actor           `json:"actor"`
	Action []codeableConcept `json:"action"`
	Class  []coding          `json:"class,omitempty"`
}

type consentResource struct {
	ResourceType    string            `json:"resourceType"`
	ID              string            `json:"id"`
	Identifier      []identifier      `json:"identifier"`
	Status          string            `json:"status"`
	Scope           codeableConcept   `json:"scope"`
	Category        []codeableConcept `json:"category"`
	Patient         reference         `json:"patient"`
	DateTime        string            `json:"dateTime,omitempty"`
	Performer       []reference       `json:"performer"`
	SourceReference *reference        `json:"sourceReference,omitempty"`
	Policy          []policyURI       `json:"policy"`
	PolicyRule      codeableConcept   `json:"policyRule"`
	Provision       provision         `json:"provision"`
}

// fhirTime formats unix seconds as a FHIR dateTime; false when the time is
// outside FHIR's years 1–9999 (an expiry "until revoked").
func fhirTime(sec uint64) (string, bool) {
	if sec > 253402300799 { // 9999-12-31T23:59:59Z
		return "", false
	}
	return time.Unix(int64(sec), 0).UTC().Format("2006-01-02T15:04:05Z"), true
}

// granteeReference is the Reference of a grantee: a literal reference for
// Practitioner and Organization, a logical one (identifier) for a client.
func granteeReference(ref string) reference {
	if id, ok := strings.CutPrefix(ref, "client/"); ok {
		return reference{Identifier: &identifier{System: ClientSystem, Value: id}, Display: ref}
	}
	return reference{Reference: ref}
}

// consentActions maps SMART permissions to consentaction codes: read and
// search are "access", create, update and delete are "correct". The text
// keeps the exact SMART scope.
func consentActions(scope string) []codeableConcept {
	_, perms, _ := strings.Cut(scope, ".")
	var out []codeableConcept
	const sys = "http://terminology.hl7.org/CodeSystem/consentaction"
	if strings.ContainsAny(perms, "rs") {
		out = append(out, codeableConcept{Coding: []coding{{System: sys, Code: "access", Display: "Access"}}, Text: "SMART " + scope})
	}
	if strings.ContainsAny(perms, "cud") {
		out = append(out, codeableConcept{Coding: []coding{{System: sys, Code: "correct", Display: "Access and Correct"}}, Text: "SMART " + scope})
	}
	return out
}

// consentBody renders the Consent of a grant; ok is false when the grant
// cannot be projected (unknown patient, grantee or scope).
func consentBody(chainID uint64, registry common.Address, k gkey, r *row, patient, grantee, scope string, now int64) []byte {
	chain := "eip155:" + strconv.FormatUint(chainID, 10)
	status := "inactive"
	if r.active(now) {
		status = "active"
	}
	c := consentResource{
		ResourceType: "Consent",
		ID:           consentID(chainID, registry, k),
		Identifier: []identifier{{
			System: RegistrySystem,
			Value:  fmt.Sprintf("%s:%s/%s/%s/%s", chain, registry.Hex(), k.Patient.Hex(), k.Grantee.Hex(), k.Scope.Hex()),
		}},
		Status: status,
		Scope: codeableConcept{Coding: []coding{{
			System: "http://terminology.hl7.org/CodeSystem/consentscope", Code: "patient-privacy", Display: "Privacy Consent",
		}}},
		Category: []codeableConcept{{Coding: []coding{{System: "http://loinc.org", Code: "59284-0", Display: "Patient Consent"}}}},
		Patient:  reference{Reference: patient},
		// The patient is who agreed (the consentor); the grantee is the
		// provision's actor.
		Performer: []reference{{Reference: patient}},
		Policy:    []policyURI{{URI: chain + ":" + registry.Hex()}},
		PolicyRule: codeableConcept{Coding: []coding{{
			System: "http://terminology.hl7.org/CodeSystem/v3-ActCode", Code: "OPTIN", Display: "opt-in",
		}}},
		Provision: provision{
			Type: "permit",
			Actor: []actor{{
				Role: codeableConcept{Coding: []coding{{
					System: "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", Code: "IRCP", Display: "information recipient",
				}}},
				Reference: granteeReference(grantee),
			}},
			Action: consentActions(scope),
		},
	}
	if typ, _, _ := strings.Cut(scope, "."); typ != "*" {
		c.Provision.Class = []coding{{System: "http://hl7.org/fhir/resource-types", Code: typ}}
	}
	var p period
	if r.Granted.Block != 0 {
		if s, ok := fhirTime(r.Granted.Time); ok {
			c.DateTime = s
			p.Start = s
		}
	}
	end := r.Expiry
	if r.Revoked {
		end = r.Changed.Time
	}
	if s, ok := fhirTime(end); ok && end != 0 {
		p.End = s
	}
	if p != (period{}) {
		c.Provision.Period = &p
	}
	ev := "ConsentGranted"
	if r.Revoked {
		ev = "ConsentRevoked"
	}
	c.SourceReference = &reference{
		Identifier: &identifier{System: TxSystem, Value: chain + ":" + r.Changed.Tx.Hex()},
		Display:    fmt.Sprintf("%s in block %d, log %d", ev, r.Changed.Block, r.Changed.Index),
	}
	b, err := json.Marshal(c)
	if err != nil {
		panic(err) // plain structs of strings: cannot fail
	}
	return b
}

// projectLocked renders the Consent of k now. It returns nil, false when k
// has no grant (the Consent must go), and nil, true when it cannot be
// rendered (patient, grantee or scope unknown: nothing to do). A wallet
// no longer mapped keeps the patient its Consent was last projected for,
// so revocation and expiry still show.
func (f *Follower) projectLocked(k gkey, now int64) ([]byte, string, bool) {
	r := f.rows[k]
	if r == nil {
		return nil, "", false
	}
	patient, ok1 := f.patients[k.Patient]
	if !ok1 {
		patient, ok1 = f.projected[k].patient, f.projected[k].patient != ""
	}
	grantee, ok2 := f.grantees[k.Grantee]
	scope, ok3 := ScopeName(k.Scope)
	if !ok1 || !ok2 || !ok3 {
		return nil, "", true
	}
	return consentBody(f.chainID, f.cfg.Registry, k, r, patient, grantee, scope, now), patient, true
}

// projTakeOver is how long after adopting a block another replica wrote
// a follower checks that its Consents were projected, and projects them
// itself if not (that replica died before it could).
const projTakeOver = 5 * time.Second

// takeOver projects the adopted grants whose projection is overdue: the
// record of the last projection (kept in the shared keyspace) does not
// match what this follower would project. Projecting is idempotent, so
// a late projection by the claimant as well makes no second version.
func (f *Follower) takeOver(ctx context.Context) {
	f.mu.Lock()
	if len(f.adopted) == 0 || f.cfg.Project == nil {
		clear(f.adopted)
		f.mu.Unlock()
		return
	}
	at := f.now()
	var due []gkey
	for k, t := range f.adopted {
		if !t.After(at) {
			due = append(due, k)
			delete(f.adopted, k)
		}
	}
	f.mu.Unlock()
	for _, k := range due {
		v, err := f.cfg.Engine.Get(ctx, f.ks.proj(k))
		var rec projRec
		switch {
		case errors.Is(err, store.ErrNotFound):
		case err != nil:
			f.log.Warn("consent: reading a projection record", "err", err)
			continue
		case len(v) > 16:
			copy(rec.hash[:], v[:16])
			rec.patient = string(v[16:])
		}
		f.mu.Lock()
		body, patient, exists := f.projectLocked(k, at.Unix())
		switch {
		case body == nil && exists:
			// Not projectable here (identity unknown): nothing to check.
		case body == nil:
			if rec.patient != "" {
				f.projected[k] = rec
				f.dirty[k] = struct{}{}
			}
		default:
			sum := sha256.Sum256(body)
			if string(sum[:16]) != string(rec.hash[:]) || patient != rec.patient {
				f.log.Info("consent: projecting a Consent another replica claimed and did not project")
				f.dirty[k] = struct{}{}
			} else {
				f.projected[k] = rec
			}
		}
		f.mu.Unlock()
	}
}

// projectBatch bounds one Project call.
const projectBatch = 500

// flush hands changed Consent projections to cfg.Project, and records
// what was handed over (so a restart re-sends only what changed).
func (f *Follower) flush(ctx context.Context) {
	f.mu.Lock()
	if f.cfg.Project == nil {
		clear(f.dirty)
		f.mu.Unlock()
		return
	}
	if len(f.dirty) == 0 || f.now().Before(f.projRetry) {
		f.mu.Unlock()
		return
	}
	now := f.now().Unix()
	var (
		ps   []Projection
		keys []gkey
		recs []projRec
	)
	for k := range f.dirty {
		if len(ps) >= projectBatch {
			break
		}
		delete(f.dirty, k)
		body, patient, exists := f.projectLocked(k, now)
		old, had := f.projected[k]
		id := consentID(f.chainID, f.cfg.Registry, k)
		if body == nil {
			if had && !exists {
				ps = append(ps, Projection{ID: id, Patient: old.patient})
				keys, recs = append(keys, k), append(recs, projRec{})
			}
			continue
		}
		sum := sha256.Sum256(body)
		var h [16]byte
		copy(h[:], sum[:16])
		if had && old.hash == h && old.patient == patient {
			continue
		}
		ps = append(ps, Projection{ID: id, Patient: patient, Body: body})
		keys, recs = append(keys, k), append(recs, projRec{hash: h, patient: patient})
	}
	more := len(f.dirty) > 0
	f.mu.Unlock()
	if len(ps) == 0 {
		return
	}
	if err := f.cfg.Project(ctx, ps); err != nil {
		f.log.Warn("consent: projecting Consent resources failed; will retry", "count", len(ps), "err", err)
		f.mu.Lock()
		for _, k := range keys {
			f.dirty[k] = struct{}{}
		}
		f.projRetry = f.now().Add(time.Second)
		f.mu.Unlock()
		return
	}
	var b store.Batch
	for i, k := range keys {
		if recs[i].patient == "" {
			b.Delete(f.ks.proj(k))
		} else {
			b.Set(f.ks.proj(k), append(recs[i].hash[:], recs[i].patient...))
		}
	}
	if err := f.cfg.Engine.Apply(ctx, &b); err != nil {
		// Harmless: they are sent again after a restart.
		f.log.Warn("consent: recording projected Consents", "err", err)
	}
	f.mu.Lock()
	for i, k := range keys {
		if recs[i].patient == "" {
			delete(f.projected, k)
		} else {
			f.projected[k] = recs[i]
		}
	}
	f.mu.Unlock()
	if more {
		f.poke()
	}
}

// ConsentWriter stores a Consent resource as the gateway: a body
// creates or replaces it, nil deletes it; writing the stored content
// again makes no new version (rest.Server.WriteAsGateway).
type ConsentWriter interface {
	WriteAsGateway(ctx context.Context, typ, id string, body []byte) error
}

// Projector returns a Config.Project that writes each projection through
// the writer w returns (nil while the server is not up: an error, so the
// follower retries).
func Projector(w func() ConsentWriter) func(ctx context.Context, ps []Projection) error {
	return func(ctx context.Context, ps []Projection) error {
		cw := w()
		if cw == nil {
			return errors.New("consent: the server is not up yet")
		}
		for _, p := range ps {
			if err := cw.WriteAsGateway(ctx, "Consent", p.ID, p.Body); err != nil {
				return err
			}
		}
		return nil
	}
}
