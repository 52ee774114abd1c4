package anchor

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/transparency-dev/merkle/compact"

	"github.com/fhirgate/fhirgate/store"
)

// anchoredFixture is a log of a few resources (an update and a delete
// among them), all anchored on a fake chain.
type anchoredFixture struct {
	st       *store.Store
	l        *Log
	f        *fakeChain
	versions []store.Version
}

func newAnchoredFixture(t *testing.T) *anchoredFixture {
	t.Helper()
	ctx := testCtx(t)
	st := openStore(t, t.TempDir())
	w := newWriter(st)
	f := newFakeChain()
	m := startMiner(f, 5*time.Millisecond)
	t.Cleanup(m.Stop)
	cfg := fastConfig(st, f)
	cfg.Interval = time.Hour
	l, stop := runLog(t, cfg)
	var vs []store.Version
	vs = append(vs, w.create(t, ctx, 5)...)
	for _, step := range []struct {
		id  string
		del bool
	}{{"p1", false}, {"p1", false}, {"p2", true}} {
		v, err := w.put(ctx, "Patient", step.id, step.del)
		if err != nil {
			t.Fatal(err)
		}
		vs = append(vs, v)
		size, _ := l.Cut(ctx) // several checkpoints
		waitFor(t, 5*time.Second, "anchor", func() bool { return l.Status().Anchored == size })
	}
	vs = append(vs, w.create(t, ctx, 9)...)
	size, _ := l.Cut(ctx)
	waitFor(t, 5*time.Second, "anchor", func() bool { return l.Status().Anchored == size })
	stop()
	return &anchoredFixture{st: st, l: l, f: f, versions: vs}
}

func (fx *anchoredFixture) proof(t *testing.T, v store.Version) Proof {
	t.Helper()
	p, err := fx.l.ProofFor(testCtx(t), v.Type, v.ID, v.VID)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestVerifyProof(t *testing.T) {
	fx := newAnchoredFixture(t)
	v := fx.versions[6] // Patient/p1/_history/3, in a tree of several
	p := fx.proof(t, v)
	if len(p.Inclusion) == 0 {
		t.Fatal("fixture proof has an empty path")
	}
	if err := VerifyProof(p, v.Body, fx.f.rootAt()); err != nil {
		t.Fatalf("valid proof: %v", err)
	}
	if err := VerifyProof(p, nil, fx.f.rootAt()); err != nil {
		t.Fatalf("valid proof without resource: %v", err)
	}
	// Deleted versions hash the empty string.
	del := fx.versions[7]
	if !del.Deleted {
		t.Fatal("fixture: version 7 should be a delete")
	}
	if err := VerifyProof(fx.proof(t, del), []byte{}, fx.f.rootAt()); err != nil {
		t.Fatalf("proof of a delete: %v", err)
	}

	other := fx.proof(t, fx.versions[0])
	chainDown := func(uint64) (Hash, bool, error) { return Hash{}, false, errDown }
	for _, tc := range []struct {
		name     string
		edit     func(*Proof)
		resource []byte
		rootAt   RootAtFunc
		want     error
	}{
		{"altered resource", nil, append(bytes.Clone(v.Body[:len(v.Body)-2]), `x"}`...), nil, ErrResourceMismatch},
		{"another version's resource", nil, fx.versions[5].Body, nil, ErrResourceMismatch},
		{"altered sha256", func(p *Proof) { p.Leaf.SHA256[0] ^= 1 }, nil, nil, ErrLeafHashMismatch},
		{"altered salt", func(p *Proof) { p.Leaf.Salt[31] ^= 1 }, nil, nil, ErrLeafHashMismatch},
		{"altered version id", func(p *Proof) { p.Leaf.VersionID = "2" }, nil, nil, ErrLeafHashMismatch},
		{"altered id", func(p *Proof) { p.Leaf.ID = "p0" }, nil, nil, ErrLeafHashMismatch},
		{"altered leaf, recomputed leafHash", func(p *Proof) {
			p.Leaf.ID = "p0"
			l, _ := p.Leaf.Leaf()
			p.LeafHash = LeafHash(l.Data())
		}, nil, nil, ErrInclusionMismatch},
		{"another leaf's fields", func(p *Proof) { p.Leaf, p.LeafHash = other.Leaf, other.LeafHash }, nil, nil, ErrInclusionMismatch},
		{"altered path", func(p *Proof) { p.Inclusion[0][5] ^= 1 }, nil, nil, ErrInclusionMismatch},
		{"altered index", func(p *Proof) { p.LeafIndex ^= 1 }, nil, nil, ErrInvalid},
		{"truncated path", func(p *Proof) { p.Inclusion = p.Inclusion[1:] }, nil, nil, ErrMalformed},
		{"index past the tree", func(p *Proof) { p.LeafIndex = p.TreeSize }, nil, nil, ErrMalformed},
		{"tree sizes disagree", func(p *Proof) { p.TreeSize++ }, nil, nil, ErrMalformed},
		{"altered root", func(p *Proof) { p.Checkpoint.Root[0] ^= 1 }, nil, nil, ErrInclusionMismatch},
		{"wrong format", func(p *Proof) { p.Format = "v0" }, nil, nil, ErrMalformed},
		{"ambiguous name", func(p *Proof) { p.Leaf.Type, p.Leaf.ID = "Patient/p1", "x" }, nil, nil, ErrMalformed},
		{"root not on chain", nil, nil, func(uint64) (Hash, bool, error) { return Hash{}, false, nil }, ErrRootNotOnChain},
		{"other root on chain", nil, nil, func(uint64) (Hash, bool, error) { return Hash{9}, true, nil }, ErrRootMismatch},
		{"chain unreachable", nil, nil, chainDown, ErrChainQuery},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := p
			q.Inclusion = append([]Hash(nil), p.Inclusion...)
			if tc.edit != nil {
				tc.edit(&q)
			}
			rootAt := tc.rootAt
			if rootAt == nil {
				rootAt = fx.f.rootAt()
			}
			err := VerifyProof(q, tc.resource, rootAt)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if tc.want == ErrChainQuery && errors.Is(err, ErrInvalid) {
				t.Fatal("an unreachable chain is reported as an invalid proof")
			}
			t.Log(err)
		})
	}
}

// The proof JSON, field by field as docs/audit.md describes it, and its
// round trip.
func TestProofJSON(t *testing.T) {
	fx := newAnchoredFixture(t)
	p := fx.proof(t, fx.versions[6])
	b, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	json.Unmarshal(b, &m)
	for _, k := range []string{"format", "leaf", "leafHash", "leafIndex", "treeSize", "inclusion", "checkpoint"} {
		if _, ok := m[k]; !ok {
			t.Errorf("proof JSON lacks %q:\n%s", k, b)
		}
	}
	leaf := m["leaf"].(map[string]any)
	for _, k := range []string{"type", "id", "versionId", "salt", "sha256"} {
		if _, ok := leaf[k].(string); !ok {
			t.Errorf("leaf lacks string %q", k)
		}
	}
	cp := m["checkpoint"].(map[string]any)
	for _, k := range []string{"treeSize", "root", "chainId", "contract", "txHash", "blockNumber"} {
		if _, ok := cp[k]; !ok {
			t.Errorf("checkpoint lacks %q", k)
		}
	}
	if s := cp["root"].(string); !strings.HasPrefix(s, "0x") || len(s) != 66 {
		t.Errorf("root %q", s)
	}
	if s := leaf["salt"].(string); len(s) != 64 {
		t.Errorf("salt %q", s)
	}
	back, err := ParseProof(b)
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifyProof(back, fx.versions[6].Body, fx.f.rootAt()); err != nil {
		t.Fatal(err)
	}
	// A one-leaf tree's proof has an empty (not null) path.
	one := Proof{Format: ProofFormat, TreeSize: 1, Checkpoint: AnchorRef{TreeSize: 1}, Inclusion: []Hash{}}
	if b, _ := json.Marshal(one); !bytes.Contains(b, []byte(`"inclusion":[]`)) {
		t.Errorf("empty path marshals as %s", b)
	}
	if _, err := ParseProof(append(b, []byte(" {}")...)); err == nil {
		t.Error("trailing data accepted")
	}
}

// The example proof of docs/audit.md (a real proof from the embedded dev
// chain, written by ethanchor's TestEndToEndDevChain with
// FHIRGATE_WRITE_TESTDATA=1) still parses and verifies against its root:
// the format has not drifted.
func TestProofExample(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "proof-example.json"))
	if err != nil {
		t.Fatal(err)
	}
	res, err := os.ReadFile(filepath.Join("testdata", "proof-example-resource.json"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := ParseProof(b)
	if err != nil {
		t.Fatal(err)
	}
	onChain := func(uint64) (Hash, bool, error) { return p.Checkpoint.Root, true, nil }
	if err := VerifyProof(p, res, onChain); err != nil {
		t.Fatal(err)
	}
	if err := VerifyProof(p, append(res, ' '), onChain); !errors.Is(err, ErrResourceMismatch) {
		t.Fatalf("resource with a trailing space: %v", err)
	}
	if out, _ := json.MarshalIndent(p, "", "  "); !bytes.Equal(append(out, '\n'), b) {
		t.Errorf("re-marshalled example differs:\n%s", out)
	}
}

// $verify: a version altered behind the gateway's back (directly in the
// engine) is flagged; the others still verify.
func TestVerifyResourceTamper(t *testing.T) {
	fx := newAnchoredFixture(t)
	ctx := testCtx(t)
	e := fx.st.Engine()
	checks, err := fx.l.VerifyResource(ctx, "Patient", "p1")
	if err != nil {
		t.Fatal(err)
	}
	if len(checks) != 3 {
		t.Fatalf("%d checks for 3 versions", len(checks))
	}
	for _, c := range checks {
		if c.Status != CheckOK || c.Severity() != "information" {
			t.Fatalf("untouched version: %+v (%s)", c, c.Message())
		}
	}
	if checks, _ := fx.l.VerifyResource(ctx, "Patient", "p2"); len(checks) != 2 || checks[1].Status != CheckOK {
		t.Fatalf("deleted resource: %+v", checks)
	}

	// The chain unreachable: unverified (warning), not failed.
	fx.f.setDown(true)
	checks, _ = fx.l.VerifyResource(ctx, "Patient", "p0")
	if c := checks[0]; c.Status != CheckUnverified || c.Severity() != "warning" {
		t.Fatalf("chain down: %+v", c)
	}
	fx.f.setDown(false)

	// Alter version 2's body in the engine: one byte of the JSON.
	k := versionKey("Patient", "p1", 2)
	rec, err := e.Get(ctx, k)
	if err != nil {
		t.Fatalf("version key layout changed? %v", err)
	}
	i := bytes.LastIndex(rec, []byte("write"))
	rec[i] = 'W'
	var b store.Batch
	b.Set(k, rec)
	if err := e.Apply(ctx, &b); err != nil {
		t.Fatal(err)
	}
	checks, err = fx.l.VerifyResource(ctx, "Patient", "p1")
	if err != nil {
		t.Fatal(err)
	}
	if checks[0].Status != CheckOK || checks[2].Status != CheckOK {
		t.Errorf("untouched versions flagged: %+v", checks)
	}
	c := checks[1]
	if c.Status != CheckFailed || c.Severity() != "error" || !errors.Is(c.Err, ErrResourceMismatch) {
		t.Fatalf("altered version 2: %+v", c)
	}
	t.Logf("altered version: %s", c.Message())

	// The log entry rewritten as well, so that the stored body matches it
	// again: the tree, recomputed from the log, no longer matches its
	// stored node above the entry.
	v, _ := fx.st.Version(ctx, "Patient", "p1", 2)
	idx, _ := fx.st.LeafIndex(ctx, "Patient", "p1", 2)
	anc := compact.NewNodeID(storedLevel, idx>>storedLevel)
	if _, end := anc.Coverage(); end > fx.l.Size() {
		t.Fatalf("leaf %d: its stored ancestor is not complete in a tree of %d", idx, fx.l.Size())
	}
	old, _ := fx.l.leafAt(ctx, idx)
	forged := NewLeaf("Patient", "p1", 2, v.Body)
	forged.Salt = old.Salt
	b = store.Batch{}
	b.Set(store.LogKey(idx), forged.Data())
	if err := e.Apply(ctx, &b); err != nil {
		t.Fatal(err)
	}
	checks, _ = fx.l.VerifyResource(ctx, "Patient", "p1")
	if c := checks[1]; c.Status != CheckFailed || !errors.Is(c.Err, ErrTreeMismatch) {
		t.Fatalf("forged leaf: %+v", c)
	}
	// The tree node altered too (to hide it): the chain's root exposes it.
	// Only the chain still disagrees.
	h, err := fx.l.subtree(ctx, anc, &leafBlock{})
	if err != nil {
		t.Fatal(err)
	}
	b = store.Batch{}
	b.Set(fx.l.k.nodeKey(anc), h)
	if err := e.Apply(ctx, &b); err != nil {
		t.Fatal(err)
	}
	checks, _ = fx.l.VerifyResource(ctx, "Patient", "p1")
	if c := checks[1]; c.Status != CheckFailed || !errors.Is(c.Err, ErrInclusionMismatch) {
		t.Fatalf("forged leaf and node: %+v", c)
	}
	// Remove version 3: missing from the store, though logged.
	b = store.Batch{}
	b.Delete(versionKey("Patient", "p1", 3))
	e.Apply(ctx, &b)
	checks, _ = fx.l.VerifyResource(ctx, "Patient", "p1")
	if c := checks[2]; c.Status != CheckFailed || !errors.Is(c.Err, ErrVersionMissing) {
		t.Fatalf("removed version: %+v", c)
	}
	// Another log entry of the same 16-entry block removed: the tree can
	// no longer be recomputed from the log around version 1.
	idx1, _ := fx.st.LeafIndex(ctx, "Patient", "p1", 1)
	other := idx1 ^ 1
	b = store.Batch{}
	b.Delete(store.LogKey(other))
	e.Apply(ctx, &b)
	checks, _ = fx.l.VerifyResource(ctx, "Patient", "p1")
	if c := checks[0]; c.Status != CheckFailed || !errors.Is(c.Err, ErrTreeMismatch) {
		t.Fatalf("log entry %d removed: %+v", other, c)
	}
}

// $verify on a store rolled back behind the gateway's back: its current
// record names version 2 of a resource whose version 3 was written and
// logged. The logged version after the current one is reported.
func TestVerifyResourceRolledBack(t *testing.T) {
	fx := newAnchoredFixture(t)
	ctx := testCtx(t)
	e := fx.st.Engine()
	k := currentKey("Patient", "p1")
	rec, err := e.Get(ctx, k)
	if err != nil {
		t.Fatalf("current key layout changed? %v", err)
	}
	// The record starts with its format byte, then the version number
	// (a one-byte uvarint here).
	if len(rec) < 2 || rec[1] != 3 {
		t.Fatalf("current record %x does not name version 3", rec)
	}
	rec[1] = 2
	var b store.Batch
	b.Set(k, rec)
	if err := e.Apply(ctx, &b); err != nil {
		t.Fatal(err)
	}
	checks, err := fx.l.VerifyResource(ctx, "Patient", "p1")
	if err != nil {
		t.Fatal(err)
	}
	if len(checks) != 3 {
		t.Fatalf("%d checks, want versions 1 and 2 and the extra version 3: %+v", len(checks), checks)
	}
	for _, c := range checks[:2] {
		if c.Status != CheckOK {
			t.Errorf("version %d: %+v", c.VersionID, c)
		}
	}
	want, _ := fx.st.LeafIndex(ctx, "Patient", "p1", 3)
	if c := checks[2]; c.VersionID != 3 || c.Status != CheckFailed || !errors.Is(c.Err, ErrExtraLeaf) ||
		c.LeafIndex == nil || *c.LeafIndex != want {
		t.Fatalf("rolled-back store: %+v, want version 3 failed with ErrExtraLeaf at leaf %d", c, want)
	}
	t.Logf("rolled back: %s", checks[2].Message())
}

func TestConsistencyAndCheckpoints(t *testing.T) {
	fx := newAnchoredFixture(t)
	ctx := testCtx(t)
	cps, err := fx.l.Checkpoints(ctx, CheckpointQuery{})
	if err != nil || len(cps) != 4 {
		t.Fatalf("Checkpoints: %d, %v", len(cps), err)
	}
	page, _ := fx.l.Checkpoints(ctx, CheckpointQuery{After: cps[1].TreeSize, Limit: 1})
	if len(page) != 1 || page[0].TreeSize != cps[2].TreeSize {
		t.Fatalf("page after %d: %+v", cps[1].TreeSize, page)
	}
	for _, c := range cps {
		if c.TxHash.IsZero() || c.BlockNumber == 0 || c.ChainID != fx.f.ref.ChainID || c.Contract != fx.f.ref.Contract {
			t.Errorf("checkpoint without chain facts: %+v", c)
		}
	}
	c, err := fx.l.Consistency(ctx, cps[0].TreeSize, cps[3].TreeSize)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Verify(); err != nil {
		t.Fatal(err)
	}
	if c.FromCheckpoint == nil || c.ToCheckpoint == nil || c.FromRoot != cps[0].Root || c.ToRoot != cps[3].Root {
		t.Fatalf("consistency answer: %+v", c)
	}
	c.Proof[0][0] ^= 1
	if err := c.Verify(); !errors.Is(err, ErrInvalid) {
		t.Fatalf("altered consistency proof: %v", err)
	}
	for _, r := range [][2]uint64{{0, 3}, {4, 3}, {1, fx.l.Size() + 1}} {
		if _, err := fx.l.Consistency(ctx, r[0], r[1]); !errors.Is(err, ErrBadRange) && !errors.Is(err, ErrBeyondLog) {
			t.Errorf("Consistency(%d, %d): %v", r[0], r[1], err)
		}
	}
}

func TestParseLeaf(t *testing.T) {
	l := NewLeaf("DiagnosticReport", "a-1.B", 12, []byte("x"))
	got, err := ParseLeaf(l.Data())
	if err != nil || got != l {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	good := string(l.Data())
	for _, bad := range []string{
		"",
		strings.Replace(good, "v1", "v2", 1),
		strings.Replace(good, "/_history/12", "/_history/012", 1),
		strings.Replace(good, "/_history/12", "/_history/0", 1),
		strings.Replace(good, "/_history/12", "/history/12", 1),
		strings.Replace(good, "DiagnosticReport/a-1.B", "DiagnosticReport/a/1", 1),
		strings.Replace(good, "DiagnosticReport", "diagnosticReport", 1),
		strings.ToUpper(good[:0]) + strings.Replace(good, hexOf(l.Salt[:]), strings.ToUpper(hexOf(l.Salt[:])), 1),
		good + "\n",
		good[:len(good)-1],
	} {
		if _, err := ParseLeaf([]byte(bad)); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}

func hexOf(b []byte) string { return Hex32(b).String() }

// FuzzProof: parsing and verifying arbitrary proof JSON never panics, and
// whatever verifies still verifies after a JSON round trip.
//
//	go test -fuzz FuzzProof ./anchor/
func FuzzProof(f *testing.F) {
	seed, err := os.ReadFile(filepath.Join("testdata", "proof-example.json"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	if w, err := os.ReadFile(filepath.Join("testdata", "proof-example-withheld.json")); err == nil {
		f.Add(w)
	}
	f.Add([]byte(`{"format":"fhirgate-proof-v1","treeSize":1,"leafIndex":0,"inclusion":[],"checkpoint":{"treeSize":1}}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"format":"fhirgate-proof-v1","leaf":{"type":"Patient","id":"1","versionId":"1"},"treeSize":18446744073709551615,"leafIndex":18446744073709551614,"checkpoint":{"treeSize":18446744073709551615}}`))
	var sp Proof
	if err := json.Unmarshal(seed, &sp); err != nil {
		f.Fatal(err)
	}
	rootAt := func(size uint64) (Hash, bool, error) {
		if size == sp.TreeSize {
			return sp.Checkpoint.Root, true, nil
		}
		return Hash{}, false, nil
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ParseProof(data)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("parse error not ErrMalformed: %v", err)
			}
			return
		}
		verr := VerifyProof(p, nil, rootAt)
		if verr != nil && !errors.Is(verr, ErrInvalid) {
			t.Fatalf("verify error not ErrInvalid: %v", verr)
		}
		b, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		q, err := ParseProof(b)
		if err != nil {
			t.Fatalf("re-parse: %v", err)
		}
		if (VerifyProof(q, nil, rootAt) == nil) != (verr == nil) {
			t.Fatal("verdict changed over a JSON round trip")
		}
	})
}

// Issue 14, finding 12: a regulator got the leaf's salt and the body's
// unsalted SHA-256 and could test guesses of the content. A proof with
// the content withheld (format v2) carries neither, and still proves that
// its leaf hash is in the anchored tree. testdata/proof-example-withheld.json
// is the example of docs/audit.md withheld (FHIRGATE_WRITE_TESTDATA=1
// rewrites it).
func TestProofWithheld(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "proof-example.json"))
	if err != nil {
		t.Fatal(err)
	}
	res, _ := os.ReadFile(filepath.Join("testdata", "proof-example-resource.json"))
	full, err := ParseProof(b)
	if err != nil {
		t.Fatal(err)
	}
	w := full.WithholdContent()
	out, err := json.MarshalIndent(w, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	out = append(out, '\n')
	path := filepath.Join("testdata", "proof-example-withheld.json")
	if os.Getenv("FHIRGATE_WRITE_TESTDATA") != "" {
		if err := os.WriteFile(path, out, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if want, err := os.ReadFile(path); err != nil || !bytes.Equal(out, want) {
		t.Errorf("withheld example differs from %s (%v):\n%s", path, err, out)
	}
	var m map[string]any
	json.Unmarshal(out, &m)
	leaf := m["leaf"].(map[string]any)
	for _, k := range []string{"salt", "sha256"} {
		if _, ok := leaf[k]; ok {
			t.Errorf("withheld proof carries %s", k)
		}
	}
	if m["format"] != ProofFormatV2 || m["contentWithheld"] != true {
		t.Errorf("format %v, contentWithheld %v", m["format"], m["contentWithheld"])
	}
	if full.Leaf.SHA256 == (Hex32{}) || full.Format != ProofFormat {
		t.Fatal("WithholdContent changed the proof it was called on")
	}

	onChain := func(size uint64) (Hash, bool, error) {
		return full.Checkpoint.Root, size == full.TreeSize, nil
	}
	p, err := ParseProof(out)
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifyProof(p, nil, onChain); err != nil {
		t.Fatalf("withheld proof: %v", err)
	}
	if err := VerifyProof(p, res, onChain); !errors.Is(err, ErrContentWithheld) || errors.Is(err, ErrInvalid) {
		t.Errorf("resource against a withheld proof: %v", err)
	}
	// The leaf hash is what is proven: another one fails.
	q := p
	q.LeafHash[0] ^= 1
	if err := VerifyProof(q, nil, onChain); !errors.Is(err, ErrInclusionMismatch) {
		t.Errorf("altered leaf hash: %v", err)
	}
	// The name is not bound without the salt and content hash: a
	// withheld proof does not tell which version the entry is (documented
	// in docs/audit.md and the regulator guide).
	q = p
	q.Leaf.ID = "other"
	if err := VerifyProof(q, nil, onChain); err != nil {
		t.Errorf("withheld proof with another name: %v", err)
	}
	// The full proof still verifies as v1, and as v2.
	if err := VerifyProof(full, res, onChain); err != nil {
		t.Error(err)
	}
	v2 := full
	v2.Format = ProofFormatV2
	if err := VerifyProof(v2, res, onChain); err != nil {
		t.Errorf("v2 with content: %v", err)
	}

	for name, mutate := range map[string]func(*Proof){
		"v1 withholding":         func(p *Proof) { p.Format = ProofFormat },
		"withheld, yet a salt":   func(p *Proof) { p.Leaf.Salt = full.Leaf.Salt },
		"withheld, yet a sha256": func(p *Proof) { p.Leaf.SHA256 = full.Leaf.SHA256 },
		"unknown format":         func(p *Proof) { p.Format = "fhirgate-proof-v3" },
	} {
		q := p
		mutate(&q)
		b, _ := json.Marshal(q)
		if _, err := ParseProof(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v", name, err)
		}
	}
}
