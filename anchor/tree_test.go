package anchor

import (
	"bytes"
	"context"
	"crypto/sha256"
	"math/rand/v2"
	"testing"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/merkle/testonly"

	"github.com/fhirgate/fhirgate/store"
)

// mth is RFC 6962 §2.1's Merkle Tree Hash, written from the RFC's text
// (recursion on the largest power of two smaller than n), as a reference
// independent of transparency-dev/merkle.
func mth(leaves [][]byte) [32]byte {
	switch n := len(leaves); n {
	case 0:
		return sha256.Sum256(nil)
	case 1:
		return sha256.Sum256(append([]byte{0}, leaves[0]...))
	default:
		k := 1
		for k*2 < n {
			k *= 2
		}
		l, r := mth(leaves[:k]), mth(leaves[k:])
		return sha256.Sum256(append(append([]byte{1}, l[:]...), r[:]...))
	}
}

// The tree kept in Pebble, grown in uneven steps across integration chunks
// and a reopen, against transparency-dev/merkle's in-memory reference tree
// and the RFC's recursive definition: every root, every inclusion proof
// and every consistency proof for small trees, random ones for large.
func TestTreeAgainstReference(t *testing.T) {
	ctx := testCtx(t)
	dir := t.TempDir()
	st := openStore(t, dir)
	w := newWriter(st)
	l, err := Open(ctx, Config{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	ref := testonly.New(rfc6962.DefaultHasher)
	var data [][]byte
	grow := func(n int) {
		t.Helper()
		before, _ := st.LogSize(ctx)
		w.createMany(t, ctx, n)
		if err := st.Leaves(ctx, before, func(_ uint64, d []byte) bool {
			data = append(data, append([]byte(nil), d...))
			ref.AppendData(d)
			return true
		}); err != nil {
			t.Fatal(err)
		}
		if size, err := l.Sync(ctx); err != nil || size != uint64(len(data)) {
			t.Fatalf("Sync = %d, %v; want %d", size, err, len(data))
		}
	}
	checkAll := func(maxExhaustive uint64) {
		t.Helper()
		n := l.Size()
		for size := uint64(0); size <= n; size++ {
			if size > maxExhaustive && size != n && rand.IntN(20) != 0 {
				continue
			}
			root, err := l.Root(ctx, size)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(root[:], ref.HashAt(size)) {
				t.Fatalf("Root(%d) = %s, reference %x", size, root, ref.HashAt(size))
			}
			if size <= 300 {
				if want := mth(data[:size]); root != want {
					t.Fatalf("Root(%d) = %s, RFC 6962 MTH %x", size, root, want)
				}
			}
			for i := uint64(0); i < size; i++ {
				if size > maxExhaustive && rand.IntN(int(size)) > 8 {
					continue
				}
				got, err := l.InclusionProof(ctx, i, size)
				if err != nil {
					t.Fatal(err)
				}
				want, _ := ref.InclusionProof(i, size)
				if !equalPath(got, want) {
					t.Fatalf("InclusionProof(%d, %d) differs from the reference", i, size)
				}
				if err := proof.VerifyInclusion(hasher, i, size, ref.LeafHash(i), toBytes(got), root[:]); err != nil {
					t.Fatalf("InclusionProof(%d, %d) does not verify: %v", i, size, err)
				}
			}
			for from := uint64(0); from <= size; from++ {
				if size > maxExhaustive && rand.IntN(int(size)+1) > 8 {
					continue
				}
				got, err := l.ConsistencyProof(ctx, from, size)
				if err != nil {
					t.Fatal(err)
				}
				want, _ := ref.ConsistencyProof(from, size)
				if !equalPath(got, want) {
					t.Fatalf("ConsistencyProof(%d, %d) differs from the reference", from, size)
				}
				if from > 0 {
					if err := proof.VerifyConsistency(hasher, from, size, toBytes(got), ref.HashAt(from), root[:]); err != nil {
						t.Fatalf("ConsistencyProof(%d, %d) does not verify: %v", from, size, err)
					}
				}
			}
		}
	}
	for _, n := range []int{1, 1, 2, 3, 5, 8, 13, 21} {
		grow(n)
		checkAll(80)
	}
	// Reopen: the tree resumes from what is on disk.
	closeStore(st)
	st = openStore(t, dir)
	w.st = st
	if l, err = Open(ctx, Config{Store: st}); err != nil {
		t.Fatal(err)
	}
	if l.Size() != uint64(len(data)) {
		t.Fatalf("reopened at size %d, want %d", l.Size(), len(data))
	}
	grow(34)
	checkAll(80)
	// Across integration chunks (4096 leaves per commit).
	grow(integrateChunk + 77)
	checkAll(0)
	if _, err := l.Root(ctx, l.Size()+1); err == nil {
		t.Error("Root beyond the log succeeded")
	}
	if _, err := l.InclusionProof(ctx, 5, 5); err == nil {
		t.Error("InclusionProof(5, 5) succeeded")
	}
	if _, err := l.ConsistencyProof(ctx, 6, 5); err == nil {
		t.Error("ConsistencyProof(6, 5) succeeded")
	}
	// Only nodes from storedLevel up are stored: about one per 8 leaves.
	perLevel := map[byte]int{}
	nodes := store.PrefixRange(l.k.key('n', 0))
	if err := st.Engine().Scan(ctx, nodes, func(k, _ []byte) bool {
		perLevel[k[len(nodes.Start)]]++
		return true
	}); err != nil {
		t.Fatal(err)
	}
	total := 0
	for level, n := range perLevel {
		if level < storedLevel {
			t.Errorf("%d nodes stored at level %d", n, level)
		}
		total += n
	}
	if want := len(data) >> storedLevel; perLevel[storedLevel] != want || total > len(data)/8+16 {
		t.Errorf("%d nodes stored for %d leaves (%d at level %d, want %d)", total, len(data), perLevel[storedLevel], storedLevel, want)
	}
}

func equalPath(got []Hash, want [][]byte) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if !bytes.Equal(got[i][:], want[i]) {
			return false
		}
	}
	return true
}

// Leaves committed while no Log runs (a crash between the version's commit
// and integration) are integrated on the next start; integration stops at
// a gap rather than skip an index.
func TestIntegrationResumesAndStopsAtGaps(t *testing.T) {
	ctx := testCtx(t)
	st := openStore(t, t.TempDir())
	w := newWriter(st)
	w.create(t, ctx, 10)
	l, err := Open(ctx, Config{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	if l.Size() != 0 {
		t.Fatalf("size %d before Sync", l.Size())
	}
	if n, err := l.Sync(ctx); err != nil || n != 10 {
		t.Fatalf("Sync = %d, %v", n, err)
	}
	// A gap (an engine showing entry 12 before 11) stops integration at 11.
	var b store.Batch
	b.Set(store.LogKey(11), NewLeaf("Patient", "x", 1, nil).Data())
	b.Set(store.LogKey(10), NewLeaf("Patient", "y", 1, nil).Data())
	if err := st.Engine().Apply(ctx, &b); err != nil {
		t.Fatal(err)
	}
	b = store.Batch{}
	b.Set(store.LogKey(13), NewLeaf("Patient", "z", 1, nil).Data())
	if err := st.Engine().Apply(ctx, &b); err != nil {
		t.Fatal(err)
	}
	if n, err := l.Sync(ctx); err != nil || n != 12 {
		t.Fatalf("Sync over a gap = %d, %v; want 12", n, err)
	}
	// Two Logs on one store (two gateway processes): the loser of a race
	// reloads and neither corrupts the tree.
	l2, err := Open(ctx, Config{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	w.create(t, ctx, 0)
	b = store.Batch{}
	b.Set(store.LogKey(12), NewLeaf("Patient", "w", 1, nil).Data())
	if err := st.Engine().Apply(ctx, &b); err != nil {
		t.Fatal(err)
	}
	if n, err := l2.Sync(ctx); err != nil || n != 14 {
		t.Fatalf("second Log Sync = %d, %v", n, err)
	}
	if n, err := l.Sync(ctx); err != nil || n != 14 {
		t.Fatalf("first Log Sync after the second = %d, %v", n, err)
	}
	r1, _ := l.Root(context.Background(), 14)
	r2, _ := l2.Root(context.Background(), 14)
	if r1 != r2 {
		t.Fatal("two Logs disagree")
	}
}
