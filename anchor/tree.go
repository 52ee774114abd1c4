package anchor

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"

	"github.com/fhirgate/fhirgate/store"
)

// The tree is RFC 6962's: leaf hash SHA-256(0x00 || data), node hash
// SHA-256(0x01 || left || right), the root of n leaves splits at the
// largest power of two below n. The hash of every perfect subtree of at
// least 2^storedLevel leaves (every node at level storedLevel or above
// whose leaves all exist) is stored once, when its last leaf is
// integrated, under the anchor's extension keyspace:
//
//	X anchor 0x00 's'                      -> integrated size (8 bytes BE)
//	X anchor 0x00 'n' level(1) index(8 BE) -> node hash (32 bytes)
//	X anchor 0x00 'c' ref(8) treeSize(8 BE)-> checkpoint record (JSON)
//
// A node below storedLevel is recomputed from the log entries it covers.
// Any root, inclusion proof or consistency proof up to the integrated
// size is then O(log n) point reads plus at most storedLevel short scans
// of the log (transparency-dev/merkle's node lists and Rehash).

// storedLevel is the lowest level whose nodes are stored. Storing every
// node cost two keys per leaf, a twelfth of the keys a resource version
// writes, each rewritten at every compaction level; from level 4 up it is
// an eighth of a key, and a lower node is the hash of at most 8 entries.
// (Stores written before hold the lower nodes too; they are not read.)
const storedLevel = 4

var (
	hasher = rfc6962.DefaultHasher
	ranges = &compact.RangeFactory{Hash: hasher.HashChildren}
)

// Errors of the tree.
var (
	// ErrBeyondLog: a tree size or index past the integrated log.
	ErrBeyondLog = errors.New("anchor: tree size beyond the integrated log")
	// ErrBadRange: sizes or indexes that do not make a proof (from > to,
	// index >= size).
	ErrBadRange = errors.New("anchor: invalid range")
)

// integrateChunk bounds the leaves integrated in one commit.
const integrateChunk = 4096

type keyspace struct{ p []byte }

func (k keyspace) key(tag byte, n int) []byte {
	b := make([]byte, len(k.p), len(k.p)+1+n)
	copy(b, k.p)
	return append(b, tag)
}

func (k keyspace) sizeKey() []byte { return k.key('s', 0) }

func (k keyspace) nodeKey(id compact.NodeID) []byte {
	return binary.BigEndian.AppendUint64(append(k.key('n', 9), byte(id.Level)), id.Index)
}

func (k keyspace) cpPrefix(ref [8]byte) []byte { return append(k.key('c', 16), ref[:]...) }

func (k keyspace) cpKey(ref [8]byte, size uint64) []byte {
	return binary.BigEndian.AppendUint64(k.cpPrefix(ref), size)
}

func u64(n uint64) []byte { return binary.BigEndian.AppendUint64(nil, n) }

// loadTree reads the integrated size and the compact range of [0, size).
func (l *Log) loadTree(ctx context.Context) error {
	b, err := l.e.Get(ctx, l.k.sizeKey())
	var size uint64
	found := err == nil
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		return err
	case len(b) != 8:
		return fmt.Errorf("anchor: corrupt integrated size")
	default:
		size = binary.BigEndian.Uint64(b)
	}
	ids := compact.RangeNodes(0, size, nil)
	hashes, err := l.nodes(ctx, ids)
	if err != nil {
		return fmt.Errorf("anchor: reading the tree's right border at size %d: %w", size, err)
	}
	rng, err := ranges.NewRange(0, size, hashes)
	if err != nil {
		return err
	}
	l.rng = rng
	l.size.Store(size)
	l.sizeStored = found
	return nil
}

// Sync integrates every leaf the store has appended so far (in order,
// stopping at a gap) and returns the integrated size. The background loop
// calls it every tick; call it directly to make fresh leaves provable at
// once (tests, a checkpoint forced now).
func (l *Log) Sync(ctx context.Context) (uint64, error) {
	if !l.active(ctx) {
		// Another replica integrates: catch up with what it stored.
		l.have(ctx, ^uint64(0))
		return l.Size(), nil
	}
	l.treeMu.Lock()
	defer l.treeMu.Unlock()
	for {
		n, err := l.integrateChunk(ctx, integrateChunk)
		if err != nil || n == 0 {
			return l.size.Load(), err
		}
	}
}

// integrateStep integrates at most limit leaves in one commit and reports
// how many it did.
func (l *Log) integrateStep(ctx context.Context, limit uint64) (int, error) {
	l.treeMu.Lock()
	defer l.treeMu.Unlock()
	return l.integrateChunk(ctx, min(limit, integrateChunk))
}

func (l *Log) integrateChunk(ctx context.Context, limit uint64) (int, error) {
	start := l.size.Load()
	hs := l.rng.Hashes()
	border := make([][]byte, len(hs))
	copy(border, hs)
	rng, err := ranges.NewRange(0, start, border)
	if err != nil {
		return 0, err
	}
	var b store.Batch
	l.fence(&b)
	if l.sizeStored {
		b.Require(l.k.sizeKey(), u64(start))
	} else {
		b.Require(l.k.sizeKey(), nil)
	}
	n := uint64(0)
	var aerr error
	err = l.st.Leaves(ctx, start, func(i uint64, data []byte) bool {
		if i != start+n { // not yet visible, or a gap: stop before it
			return false
		}
		h := LeafHash(data)
		if aerr = rng.Append(h[:], func(id compact.NodeID, hash []byte) {
			if id.Level >= storedLevel {
				b.Set(l.k.nodeKey(id), append([]byte(nil), hash...))
			}
		}); aerr != nil {
			return false
		}
		n++
		return n < limit
	})
	if err == nil {
		err = aerr
	}
	if err != nil || n == 0 || limit == 0 {
		return 0, err
	}
	b.Set(l.k.sizeKey(), u64(start+n))
	if err := l.e.Apply(ctx, &b); err != nil {
		if errors.Is(err, store.ErrConflict) {
			// Another process sharing the store integrated first: take
			// its state and go on from there; or we lost the lease.
			if err := l.loadTree(ctx); err != nil {
				return 0, err
			}
			if l.size.Load() > start {
				return 1, nil
			}
			if l.lease != nil {
				return 0, fmt.Errorf("%w: %w", ErrNotAnchorer, err)
			}
			return 1, nil
		}
		return 0, err
	}
	l.rng = rng
	l.size.Store(start + n)
	l.sizeStored = true
	return int(n), nil
}

// Size returns the integrated size: leaves [0, Size()) are in the tree.
func (l *Log) Size() uint64 { return l.size.Load() }

// have reports whether the tree holds size leaves, first catching up with
// integration done by another process sharing the store (a gateway
// replica that serves proofs while another one runs the log).
func (l *Log) have(ctx context.Context, size uint64) bool {
	if size <= l.Size() {
		return true
	}
	b, err := l.e.Get(ctx, l.k.sizeKey())
	if err != nil || len(b) != 8 || binary.BigEndian.Uint64(b) <= l.Size() {
		return false
	}
	l.treeMu.Lock()
	if binary.BigEndian.Uint64(b) > l.Size() {
		if err := l.loadTree(ctx); err != nil {
			l.log.Error("anchor: reloading the tree", "err", err)
		}
	}
	l.treeMu.Unlock()
	return size <= l.Size()
}

// subtree computes the hash of a perfect subtree below storedLevel from
// the log entries it covers, read as part of their block of
// 2^storedLevel entries (b caches the last block read: a proof's lower
// nodes all lie in one or two blocks).
func (l *Log) subtree(ctx context.Context, id compact.NodeID, b *leafBlock) ([]byte, error) {
	begin, end := id.Coverage()
	if start := begin >> storedLevel << storedLevel; b.hashes == nil || b.start != start {
		if err := b.read(ctx, l.st, start); err != nil {
			return nil, fmt.Errorf("anchor: tree node (%d, %d): %w", id.Level, id.Index, err)
		}
	}
	if end > b.start+uint64(len(b.hashes)) {
		return nil, fmt.Errorf("anchor: tree node (%d, %d): %w: %d", id.Level, id.Index, errEntryMissing, b.start+uint64(len(b.hashes)))
	}
	rng := ranges.NewEmptyRange(begin)
	for _, h := range b.hashes[begin-b.start : end-b.start] {
		if err := rng.Append(h[:], nil); err != nil {
			return nil, err
		}
	}
	// The range of an aligned perfect subtree is that one node.
	hs := rng.Hashes()
	if len(hs) != 1 {
		return nil, fmt.Errorf("anchor: tree node (%d, %d): %d hashes", id.Level, id.Index, len(hs))
	}
	return hs[0], nil
}

// errEntryMissing: a log entry the tree was built from is gone.
var errEntryMissing = errors.New("log entry missing")

// leafBlock holds the leaf hashes of consecutive log entries from start,
// up to 2^storedLevel of them (fewer at the end of the log or at a gap).
type leafBlock struct {
	start  uint64
	hashes [][32]byte
}

func (b *leafBlock) read(ctx context.Context, st *store.Store, start uint64) error {
	b.start, b.hashes = start, make([][32]byte, 0, 1<<storedLevel)
	return st.Leaves(ctx, start, func(i uint64, data []byte) bool {
		if i != start+uint64(len(b.hashes)) {
			return false
		}
		b.hashes = append(b.hashes, LeafHash(data))
		return len(b.hashes) < 1<<storedLevel
	})
}

func (l *Log) storedNode(ctx context.Context, id compact.NodeID) ([]byte, error) {
	v, err := l.e.Get(ctx, l.k.nodeKey(id))
	if err != nil {
		return nil, fmt.Errorf("anchor: tree node (%d, %d): %w", id.Level, id.Index, err)
	}
	if len(v) != 32 {
		return nil, fmt.Errorf("anchor: tree node (%d, %d) is %d bytes", id.Level, id.Index, len(v))
	}
	return v, nil
}

// nodes returns the hashes of perfect subtrees within the integrated size.
func (l *Log) nodes(ctx context.Context, ids []compact.NodeID) ([][]byte, error) {
	out := make([][]byte, len(ids))
	var b leafBlock
	for i, id := range ids {
		var err error
		if id.Level < storedLevel {
			out[i], err = l.subtree(ctx, id, &b)
		} else {
			out[i], err = l.storedNode(ctx, id)
		}
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// EmptyRoot is the root of the empty tree, SHA-256 of nothing.
var EmptyRoot = Hash(hasher.EmptyRoot())

// Root returns the root of the tree of the first size leaves.
func (l *Log) Root(ctx context.Context, size uint64) (Hash, error) {
	if size == 0 {
		return EmptyRoot, nil
	}
	if !l.have(ctx, size) {
		return Hash{}, fmt.Errorf("%w: size %d, integrated %d", ErrBeyondLog, size, l.Size())
	}
	hashes, err := l.nodes(ctx, compact.RangeNodes(0, size, nil))
	if err != nil {
		return Hash{}, err
	}
	rng, err := ranges.NewRange(0, size, hashes)
	if err != nil {
		return Hash{}, err
	}
	r, err := rng.GetRootHash(nil)
	if err != nil {
		return Hash{}, err
	}
	return Hash(r), nil
}

// InclusionProof returns the RFC 6962 inclusion proof (audit path) of leaf
// index in the tree of size leaves, lowest level first.
func (l *Log) InclusionProof(ctx context.Context, index, size uint64) ([]Hash, error) {
	if index >= size {
		return nil, fmt.Errorf("%w: leaf %d is not in a tree of %d", ErrBadRange, index, size)
	}
	if !l.have(ctx, size) {
		return nil, fmt.Errorf("%w: size %d, integrated %d", ErrBeyondLog, size, l.Size())
	}
	n, err := proof.Inclusion(index, size)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadRange, err)
	}
	return l.rehash(ctx, n)
}

// ConsistencyProof returns the RFC 6962 consistency proof between the
// trees of from and to leaves (empty when from is 0 or from == to): the
// format AuditAnchor.anchor and proof.VerifyConsistency take.
func (l *Log) ConsistencyProof(ctx context.Context, from, to uint64) ([]Hash, error) {
	if from > to {
		return nil, fmt.Errorf("%w: from %d > to %d", ErrBadRange, from, to)
	}
	if !l.have(ctx, to) {
		return nil, fmt.Errorf("%w: size %d, integrated %d", ErrBeyondLog, to, l.Size())
	}
	n, err := proof.Consistency(from, to)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadRange, err)
	}
	return l.rehash(ctx, n)
}

func (l *Log) rehash(ctx context.Context, n proof.Nodes) ([]Hash, error) {
	hashes, err := l.nodes(ctx, n.IDs)
	if err != nil {
		return nil, err
	}
	p, err := n.Rehash(hashes, hasher.HashChildren)
	if err != nil {
		return nil, err
	}
	out := make([]Hash, len(p))
	for i, h := range p {
		out[i] = Hash(h)
	}
	return out, nil
}

func toBytes(hs []Hash) [][]byte {
	out := make([][]byte, len(hs))
	for i := range hs {
		out[i] = hs[i][:]
	}
	return out
}
