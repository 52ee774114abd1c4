package ethanchor

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/accounts/abi/bind/v2"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/fhirgate/fhirgate/anchor"
	"github.com/fhirgate/fhirgate/contracts/bindings"
	"github.com/fhirgate/fhirgate/store"
)

// The pinned code hash is the committed artifact's.
func TestCodeHash(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "contracts", "artifacts", "AuditAnchor.bin-runtime"))
	if err != nil {
		t.Fatal(err)
	}
	if h := crypto.Keccak256Hash(common.FromHex(strings.TrimSpace(string(b)))); h != AuditAnchorCodeHash {
		t.Fatalf("AuditAnchor.bin-runtime hashes to %s; update AuditAnchorCodeHash (was %s)", h.Hex(), AuditAnchorCodeHash.Hex())
	}
}

// End to end on the embedded dev chain (real AuditAnchor, real Pebble
// store): versions are anchored within seconds; proofs verify through
// VerifyOnChain against the node's RPC; altered resources, altered proofs,
// roots not on chain, another contract all fail with the right reason;
// $verify flags a version altered behind the gateway's back; the contract
// refuses an inconsistent checkpoint.
func TestEndToEndDevChain(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a chain")
	}
	ctx := testCtx(t)
	dc := startDevChain(t, time.Second)
	a := newAnchorer(t, dc.sender, dc.dep)
	st := openStore(t)
	w := &writer{st: st}
	l, stop := runLog(t, anchor.Config{Store: st, Anchorer: a, Interval: time.Second})

	start := time.Now()
	vs := w.mustCreate(t, ctx, 20)
	size, _ := st.LogSize(ctx)
	waitFor(t, 30*time.Second, "anchoring", func() bool { return l.Status().Anchored >= size })
	t.Logf("20 versions anchored %v after the first write", time.Since(start).Round(time.Millisecond))

	p, err := l.ProofFor(ctx, "Patient", vs[7].ID, 1)
	if err != nil {
		t.Fatal(err)
	}
	url := dc.d.HTTPURL()
	if err := VerifyOnChain(ctx, url, p, vs[7].Body); err != nil {
		t.Fatalf("valid proof: %v", err)
	}
	if err := VerifyOnChain(ctx, url, p, nil, WithContract(dc.dep.Address)); err != nil {
		t.Fatalf("valid proof, expected contract: %v", err)
	}
	ver, err := Verify(ctx, dc.d.Client(), p, vs[7].Body)
	if err != nil || ver.AnchoredAt.IsZero() || ver.TreeSize != p.TreeSize {
		t.Fatalf("Verify: %+v, %v", ver, err)
	}
	if b, err := json.MarshalIndent(p, "", "  "); err == nil && os.Getenv("FHIRGATE_WRITE_TESTDATA") == "1" {
		// The example in docs/audit.md and the fuzz seed.
		os.WriteFile(filepath.Join("..", "testdata", "proof-example.json"), append(b, '\n'), 0o644)
		os.WriteFile(filepath.Join("..", "testdata", "proof-example-resource.json"), vs[7].Body, 0o644)
	}

	// A proof from a log that was never anchored: same contract, roots
	// not on chain.
	forged := forgeProof(t, p)
	altered := func(f func(*anchor.Proof)) anchor.Proof {
		q := p
		q.Inclusion = append([]anchor.Hash(nil), p.Inclusion...)
		f(&q)
		return q
	}
	for _, tc := range []struct {
		name     string
		p        anchor.Proof
		resource []byte
		opts     []VerifyOption
		want     error
	}{
		{"altered resource", p, bytes.Replace(vs[7].Body, []byte("Test"), []byte("Tesd"), 1), nil, anchor.ErrResourceMismatch},
		{"another resource", p, vs[8].Body, nil, anchor.ErrResourceMismatch},
		{"altered leaf", altered(func(q *anchor.Proof) { q.Leaf.ID = vs[8].ID }), nil, nil, anchor.ErrLeafHashMismatch},
		{"altered path", altered(func(q *anchor.Proof) { q.Inclusion[0][0] ^= 1 }), nil, nil, anchor.ErrInclusionMismatch},
		{"altered root", altered(func(q *anchor.Proof) { q.Checkpoint.Root[0] ^= 1 }), nil, nil, anchor.ErrInclusionMismatch},
		{"root not on chain", forged, nil, nil, anchor.ErrRootNotOnChain},
		{"another root on chain for that size", forgeProofAt(t, p, size), nil, nil, anchor.ErrRootMismatch},
		{"another contract expected", p, nil, []VerifyOption{WithContract(common.HexToAddress("0x1234"))}, ErrUnexpectedContract},
		{"not an AuditAnchor", altered(func(q *anchor.Proof) { q.Checkpoint.Contract = dc.sender.Address().Hex() }), nil, nil, ErrNotAuditAnchor},
		{"another chain", altered(func(q *anchor.Proof) { q.Checkpoint.ChainID = 1 }), nil, nil, ErrWrongChain},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := VerifyOnChain(ctx, url, tc.p, tc.resource, tc.opts...)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if tc.want != ErrWrongChain && !errors.Is(err, anchor.ErrInvalid) {
				t.Fatalf("%v is not ErrInvalid", err)
			}
			t.Log(err)
		})
	}
	if err := VerifyOnChain(ctx, "http://127.0.0.1:1", p, nil); !errors.Is(err, anchor.ErrChainQuery) || errors.Is(err, anchor.ErrInvalid) {
		t.Errorf("unreachable node: %v", err)
	}

	// $verify: alter version 1 of vs[3] directly in the engine.
	checks, err := l.VerifyResource(ctx, "Patient", vs[3].ID)
	if err != nil || len(checks) != 1 || checks[0].Status != anchor.CheckOK {
		t.Fatalf("untouched: %+v, %v", checks, err)
	}
	tamper(t, st, vs[3])
	checks, _ = l.VerifyResource(ctx, "Patient", vs[3].ID)
	if c := checks[0]; c.Status != anchor.CheckFailed || c.Severity() != "error" || !errors.Is(c.Err, anchor.ErrResourceMismatch) {
		t.Fatalf("altered version: %+v", c)
	}
	t.Logf("$verify of the altered version: %s: %s", checks[0].Severity(), checks[0].Message())

	// The contract refuses an inconsistent checkpoint: a proof from the
	// latest checkpoint to a root that does not extend it.
	stop()
	cs, err := a.State(ctx)
	if err != nil {
		t.Fatal(err)
	}
	w.mustCreate(t, ctx, 3)
	if _, err := l.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	good, _ := l.ConsistencyProof(ctx, cs.TreeSize, l.Size())
	root, _ := l.Root(ctx, l.Size())
	bad := append([]anchor.Hash(nil), good...)
	bad[len(bad)-1][3] ^= 1
	c := abiAnchor.Instance(dc.d.Client(), dc.dep.Address)
	_, err = bind.Call(c, &bind.CallOpts{Context: ctx, From: dc.sender.Address()}, abiAnchor.PackAnchor(l.Size(), root, words(bad)), func([]byte) (struct{}, error) { return struct{}{}, nil })
	data, ok := bindings.RevertData(err)
	if !ok {
		t.Fatalf("inconsistent checkpoint not refused: %v", err)
	}
	e, _ := abiAnchor.UnpackError(data)
	switch e.(type) {
	case *bindings.AuditAnchorPreviousRootMismatch, *bindings.AuditAnchorRootMismatch:
		t.Logf("contract refuses an inconsistent checkpoint: %T", e)
	default:
		t.Fatalf("revert %T", e)
	}
	// Sent anyway (explicit gas): mined, reverted, reported with the reason.
	done := make(chan error, 1)
	if _, err := a.Submit(ctx, anchor.AnchorRequest{TreeSize: l.Size(), Root: root, PrevSize: cs.TreeSize, Proof: bad,
		Done: func(_ anchor.TxRef, err error) { done <- err }}); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, anchor.ErrReverted) || !strings.Contains(err.Error(), "Mismatch") {
			t.Fatalf("reverted anchor reported as %v", err)
		}
		t.Logf("reverted anchor: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("no outcome for the reverted anchor")
	}
	if after, _ := a.State(ctx); after.TreeSize != cs.TreeSize {
		t.Fatalf("contract moved to %d", after.TreeSize)
	}
	// And accepts the consistent one.
	if _, err := a.Submit(ctx, anchor.AnchorRequest{TreeSize: l.Size(), Root: root, PrevSize: cs.TreeSize, Proof: good,
		Done: func(_ anchor.TxRef, err error) { done <- err }}); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func words(hs []anchor.Hash) [][32]byte {
	out := make([][32]byte, len(hs))
	for i := range hs {
		out[i] = hs[i]
	}
	return out
}

// tamper rewrites a stored version's body behind the store's back (key
// layout of store/keys.go).
func tamper(t *testing.T, st *store.Store, v store.Version) {
	t.Helper()
	k := store.VersionKey(v.Type, v.ID, v.VID)
	ctx := context.Background()
	rec, err := st.Engine().Get(ctx, k)
	if err != nil {
		t.Fatalf("version key: %v", err)
	}
	i := bytes.Index(rec, []byte("Test"))
	rec[i] = 'B'
	var b store.Batch
	b.Set(k, rec)
	if err := st.Engine().Apply(ctx, &b); err != nil {
		t.Fatal(err)
	}
}

// forgeProof builds a self-consistent proof from a log of other leaves (a
// log that was never anchored) naming the real contract.
func forgeProof(t *testing.T, real anchor.Proof) anchor.Proof {
	t.Helper()
	return forgeProofAt(t, real, real.TreeSize+1000)
}

func forgeProofAt(t *testing.T, real anchor.Proof, size uint64) anchor.Proof {
	t.Helper()
	ctx := testCtx(t)
	st := openStore(t)
	var ws []store.Write
	for i := uint64(0); i < size; i++ {
		v := store.Version{Type: "Patient", ID: "f" + strings.Repeat("x", 1) + string(rune('a'+i%26)) + itoa(i), VID: 1, LastUpdated: time.Now().UTC(), Body: []byte(`{}`)}
		ws = append(ws, store.Write{New: v, Leaf: anchor.NewLeaf(v.Type, v.ID, 1, v.Body).Data()})
	}
	if err := st.Commit(ctx, ws); err != nil {
		t.Fatal(err)
	}
	l, err := anchor.Open(ctx, anchor.Config{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	l.Sync(ctx)
	idx := size - 1
	path, _ := l.InclusionProof(ctx, idx, size)
	root, _ := l.Root(ctx, size)
	data, _ := st.Engine().Get(ctx, store.LogKey(idx))
	leaf, _ := anchor.ParseLeaf(data)
	p := real
	p.Leaf = anchor.ProofLeaf{Type: leaf.Type, ID: leaf.ID, VersionID: "1", Salt: leaf.Salt, SHA256: leaf.SHA256}
	p.LeafHash = anchor.LeafHash(data)
	p.LeafIndex, p.TreeSize, p.Inclusion = idx, size, path
	p.Checkpoint.TreeSize, p.Checkpoint.Root = size, root
	if err := anchor.VerifyProof(p, nil, func(uint64) (anchor.Hash, bool, error) { return root, true, nil }); err != nil {
		t.Fatalf("forged proof is not self-consistent: %v", err)
	}
	return p
}

func itoa(i uint64) string {
	b, _ := json.Marshal(i)
	return string(b)
}
