package anchor

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"math/bits"
	"strconv"
	"time"

	"github.com/transparency-dev/merkle/proof"

	"github.com/fhirgate/fhirgate/store"
)

// The proof JSON formats (docs/audit.md). ProofFormat is a full proof:
// the leaf's salt and content hash are in it, so that whoever holds the
// version's bytes can recompute the leaf. ProofFormatV2 extends it: the
// salt and the content hash may be withheld (ContentWithheld), for a
// principal who may not read the version (a regulator): with them, a
// guess of the content could be tested against the hash. The gateway
// writes full proofs as v1, so that verifiers of v1 keep working, and
// withheld ones as v2, which v1 verifiers refuse by its format rather
// than misreport.
const (
	ProofFormat   = "fhirgate-proof-v1"
	ProofFormatV2 = "fhirgate-proof-v2"
)

// Proof is the answer of GET /fhir/{type}/{id}/_history/{vid}/$proof: what
// someone who trusts neither the gateway nor its store needs, with an
// Ethereum node, to check that a version was logged and that the log's
// checkpoint is on chain. docs/audit.md describes every field.
type Proof struct {
	Format string `json:"format"`
	// ContentWithheld (v2 only): the leaf's salt and sha256 are left out.
	// The proof then shows that LeafHash is entry LeafIndex of an anchored
	// tree; that this entry is the named version is the gateway's word
	// until someone who may read the version reveals the salt and hash.
	ContentWithheld bool      `json:"contentWithheld,omitzero"`
	Leaf            ProofLeaf `json:"leaf"`
	// LeafHash is SHA-256(0x00 || leaf data); recomputed by verifiers.
	LeafHash  Hash   `json:"leafHash"`
	LeafIndex uint64 `json:"leafIndex"`
	TreeSize  uint64 `json:"treeSize"`
	// Inclusion is the RFC 6962 audit path of LeafIndex in the tree of
	// TreeSize leaves, lowest level first.
	Inclusion  []Hash    `json:"inclusion"`
	Checkpoint AnchorRef `json:"checkpoint"`
}

// ProofLeaf holds the leaf's fields; Data reassembles the leaf text.
// Salt and SHA256 are zero (and absent from the JSON) in a proof whose
// content is withheld.
type ProofLeaf struct {
	Type      string `json:"type"`
	ID        string `json:"id"`
	VersionID string `json:"versionId"`
	Salt      Hex32  `json:"salt,omitzero"`
	SHA256    Hex32  `json:"sha256,omitzero"`
}

// WithholdContent returns the proof without the leaf's salt and content
// hash (format v2, ContentWithheld): for a principal who may not read the
// version. The leaf hash, the inclusion path and the checkpoint still
// prove that the leaf hash is in the anchored log; without the salt
// nobody can test a guess of the content against it.
func (p Proof) WithholdContent() Proof {
	p.Format, p.ContentWithheld = ProofFormatV2, true
	p.Leaf.Salt, p.Leaf.SHA256 = Hex32{}, Hex32{}
	p.Inclusion = append([]Hash(nil), p.Inclusion...)
	return p
}

// AnchorRef is the anchored checkpoint a proof leads to.
type AnchorRef struct {
	TreeSize    uint64 `json:"treeSize"`
	Root        Hash   `json:"root"`
	ChainID     uint64 `json:"chainId"`
	Contract    string `json:"contract"`
	TxHash      Hash   `json:"txHash"`
	BlockNumber uint64 `json:"blockNumber"`
}

// Leaf returns the leaf the fields describe (checking their syntax).
func (pl ProofLeaf) Leaf() (Leaf, error) {
	if err := ValidLeafName(pl.Type, pl.ID); err != nil {
		return Leaf{}, err
	}
	vid, err := parseVID(pl.VersionID)
	if err != nil {
		return Leaf{}, err
	}
	return Leaf{Type: pl.Type, ID: pl.ID, VID: vid, Salt: pl.Salt, SHA256: pl.SHA256}, nil
}

func proofLeaf(l Leaf) ProofLeaf {
	return ProofLeaf{Type: l.Type, ID: l.ID, VersionID: strconv.FormatUint(l.VID, 10), Salt: Hex32(l.Salt), SHA256: Hex32(l.SHA256)}
}

// Errors of proofs. Every reason a proof is invalid wraps ErrInvalid, so
// `gateway verify` tells "invalid" (exit 1) from "could not check".
var (
	// ErrInvalid: the proof does not prove what it claims.
	ErrInvalid = errors.New("invalid proof")
	// ErrMalformed: the proof is not well-formed (format, field syntax,
	// sizes, path length).
	ErrMalformed = fmt.Errorf("%w: malformed", ErrInvalid)
	// ErrResourceMismatch: the resource bytes given do not hash to the
	// leaf's sha256: the resource is not the logged version.
	ErrResourceMismatch = fmt.Errorf("%w: resource does not match the logged hash", ErrInvalid)
	// ErrLeafHashMismatch: leafHash is not the hash of the leaf fields.
	ErrLeafHashMismatch = fmt.Errorf("%w: leafHash is not the hash of the leaf", ErrInvalid)
	// ErrInclusionMismatch: the inclusion path does not lead from the
	// leaf to the checkpoint root.
	ErrInclusionMismatch = fmt.Errorf("%w: inclusion path does not lead to the checkpoint root", ErrInvalid)
	// ErrRootNotOnChain: the contract holds no root for the checkpoint's
	// tree size.
	ErrRootNotOnChain = fmt.Errorf("%w: no root anchored on chain for the tree size", ErrInvalid)
	// ErrRootMismatch: the contract holds another root for that size.
	ErrRootMismatch = fmt.Errorf("%w: root differs from the one anchored on chain", ErrInvalid)
	// ErrChainQuery: the chain could not be asked (not a verdict on the
	// proof).
	ErrChainQuery = errors.New("could not read the chain")
	// ErrContentWithheld: resource bytes were given to check against a
	// proof that withholds the content hash (not a verdict on the proof:
	// verify it without them, or ask for a full proof as a principal who
	// may read the version).
	ErrContentWithheld = errors.New("the proof withholds the content hash: resource bytes cannot be checked against it")
)

// ErrNotAnchored: the version is logged but no anchored checkpoint
// covers it yet. The error is a *NotAnchoredError with a retry hint.
var ErrNotAnchored = errors.New("anchor: not anchored yet")

// ErrAnchoringDisabled: the gateway runs without a chain.
var ErrAnchoringDisabled = errors.New("anchor: anchoring is disabled")

// NotAnchoredError says when to ask again (Retry-After).
type NotAnchoredError struct {
	LeafIndex  uint64
	RetryAfter time.Duration
}

func (e *NotAnchoredError) Error() string {
	return fmt.Sprintf("anchor: leaf %d not anchored yet (retry after %v)", e.LeafIndex, e.RetryAfter)
}

// Is makes errors.Is(err, ErrNotAnchored) true.
func (e *NotAnchoredError) Is(target error) bool { return target == ErrNotAnchored }

// RetryAfter returns the retry hint carried by an ErrNotAnchored error,
// rounded up to whole seconds (at least 1).
func RetryAfter(err error) (time.Duration, bool) {
	var na *NotAnchoredError
	if !errors.As(err, &na) {
		return 0, false
	}
	d := na.RetryAfter.Round(time.Second)
	if d < na.RetryAfter {
		d += time.Second
	}
	return max(d, time.Second), true
}

// ProofFor returns the proof of one stored version against the first
// anchored checkpoint that contains it. Errors: store.ErrNotFound (no such
// version, or one written without a leaf), ErrNotAnchored (try again after
// RetryAfter(err)), ErrAnchoringDisabled.
func (l *Log) ProofFor(ctx context.Context, typ, id string, vid uint64) (Proof, error) {
	if l.a == nil {
		return Proof{}, ErrAnchoringDisabled
	}
	idx, err := l.st.LeafIndex(ctx, typ, id, vid)
	if err != nil {
		return Proof{}, err
	}
	leaf, err := l.leafAt(ctx, idx)
	if err != nil {
		return Proof{}, err
	}
	if leaf.Type != typ || leaf.ID != id || leaf.VID != vid {
		return Proof{}, fmt.Errorf("anchor: log entry %d belongs to another version", idx)
	}
	cp, err := l.anchoredCovering(ctx, idx)
	if err != nil {
		return Proof{}, err
	}
	if cp == nil || !l.have(ctx, cp.TreeSize) {
		return Proof{}, &NotAnchoredError{LeafIndex: idx, RetryAfter: l.retryHint(idx)}
	}
	return l.proofAt(ctx, idx, leaf, cp)
}

func (l *Log) proofAt(ctx context.Context, idx uint64, leaf Leaf, cp *Checkpoint) (Proof, error) {
	path, err := l.InclusionProof(ctx, idx, cp.TreeSize)
	if err != nil {
		return Proof{}, err
	}
	return Proof{
		Format:    ProofFormat,
		Leaf:      proofLeaf(leaf),
		LeafHash:  LeafHash(leaf.Data()),
		LeafIndex: idx,
		TreeSize:  cp.TreeSize,
		Inclusion: path,
		Checkpoint: AnchorRef{
			TreeSize: cp.TreeSize, Root: cp.Root, ChainID: cp.ChainID, Contract: cp.Contract,
			TxHash: cp.TxHash, BlockNumber: cp.BlockNumber,
		},
	}, nil
}

// leafAt reads and parses log entry idx.
func (l *Log) leafAt(ctx context.Context, idx uint64) (Leaf, error) {
	data, err := l.e.Get(ctx, store.LogKey(idx))
	if err != nil {
		return Leaf{}, fmt.Errorf("anchor: log entry %d: %w", idx, err)
	}
	leaf, err := ParseLeaf(data)
	if err != nil {
		return Leaf{}, fmt.Errorf("anchor: log entry %d: %w", idx, err)
	}
	return leaf, nil
}

// retryHint estimates when leaf idx will be anchored.
func (l *Log) retryHint(idx uint64) time.Duration {
	l.statMu.Lock()
	lat, down := l.latency, l.stat.ChainError != ""
	l.statMu.Unlock()
	if down {
		return 30 * time.Second
	}
	if lat <= 0 {
		lat = 2 * time.Second
	}
	l.qMu.Lock()
	lastCut, lastCutAt := l.lastCut, l.lastCutAt
	l.qMu.Unlock()
	d := lat
	if idx >= lastCut {
		d += max(0, l.cfg.Interval-l.cfg.Now().Sub(lastCutAt))
	}
	return min(max(d, time.Second), 5*time.Minute)
}

// ParseProof decodes proof JSON and checks its form (not its validity:
// that is VerifyProof).
func ParseProof(data []byte) (Proof, error) {
	var p Proof
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&p); err != nil {
		return Proof{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if dec.More() {
		return Proof{}, fmt.Errorf("%w: data after the proof", ErrMalformed)
	}
	if err := p.check(); err != nil {
		return Proof{}, err
	}
	return p, nil
}

// check validates the proof's form.
func (p *Proof) check() error {
	switch p.Format {
	case ProofFormat:
		if p.ContentWithheld {
			return fmt.Errorf("%w: a %s proof cannot withhold its content hash (that is %s)", ErrMalformed, ProofFormat, ProofFormatV2)
		}
	case ProofFormatV2:
	default:
		return fmt.Errorf("%w: format %q, want %q or %q", ErrMalformed, p.Format, ProofFormat, ProofFormatV2)
	}
	if p.ContentWithheld && (p.Leaf.Salt != Hex32{} || p.Leaf.SHA256 != Hex32{}) {
		return fmt.Errorf("%w: contentWithheld, yet the leaf has a salt or sha256", ErrMalformed)
	}
	if _, err := p.Leaf.Leaf(); err != nil {
		return fmt.Errorf("%w: leaf: %v", ErrMalformed, err)
	}
	if p.TreeSize == 0 || p.LeafIndex >= p.TreeSize {
		return fmt.Errorf("%w: leaf index %d is not in a tree of %d leaves", ErrMalformed, p.LeafIndex, p.TreeSize)
	}
	if p.Checkpoint.TreeSize != p.TreeSize {
		return fmt.Errorf("%w: proof for tree size %d, checkpoint of %d", ErrMalformed, p.TreeSize, p.Checkpoint.TreeSize)
	}
	if want := inclusionLen(p.LeafIndex, p.TreeSize); len(p.Inclusion) != want {
		return fmt.Errorf("%w: inclusion path has %d hashes, a leaf %d of %d needs %d", ErrMalformed, len(p.Inclusion), p.LeafIndex, p.TreeSize, want)
	}
	return nil
}

// inclusionLen is the RFC 9162 audit path length of leaf index in a tree
// of size leaves (index < size).
func inclusionLen(index, size uint64) int {
	inner := bits.Len64(index ^ (size - 1))
	return inner + bits.OnesCount64(index>>uint(inner))
}

// RootAtFunc returns the root the chain holds for treeSize, and false if
// none. Verification trusts only what it returns.
type RootAtFunc func(treeSize uint64) (root Hash, ok bool, err error)

// VerifyProof checks a proof: the leaf fields hash to leafHash; if
// resource is not nil, its SHA-256 is the leaf's sha256 (it is the logged
// version, byte for byte); the inclusion path leads from the leaf to the
// checkpoint root; and rootAt (the chain) holds that root for that tree
// size. The error names the first check that failed and wraps ErrInvalid,
// or ErrChainQuery when rootAt failed.
//
// A proof whose content is withheld has no leaf fields to hash: the path
// is checked from its leafHash, which proves that this hash is in the
// anchored log, not which version it is. Resource bytes cannot be checked
// against it (ErrContentWithheld).
func VerifyProof(p Proof, resource []byte, rootAt RootAtFunc) error {
	if err := p.check(); err != nil {
		return err
	}
	lh := [32]byte(p.LeafHash)
	if p.ContentWithheld {
		if resource != nil {
			return ErrContentWithheld
		}
	} else {
		leaf, _ := p.Leaf.Leaf()
		if resource != nil {
			if got := sha256.Sum256(resource); got != leaf.SHA256 {
				return fmt.Errorf("%w: SHA-256 of the resource is %x, the leaf says %x", ErrResourceMismatch, got, leaf.SHA256)
			}
		}
		lh = LeafHash(leaf.Data())
		if Hash(lh) != p.LeafHash {
			return fmt.Errorf("%w: computed %s, proof says %s", ErrLeafHashMismatch, Hash(lh), p.LeafHash)
		}
	}
	root, err := proof.RootFromInclusionProof(hasher, p.LeafIndex, p.TreeSize, lh[:], toBytes(p.Inclusion))
	if err != nil {
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if Hash(root) != p.Checkpoint.Root {
		return fmt.Errorf("%w: path gives %s, checkpoint root is %s", ErrInclusionMismatch, Hash(root), p.Checkpoint.Root)
	}
	if rootAt == nil {
		return fmt.Errorf("%w: no chain to check the root against", ErrChainQuery)
	}
	onChain, ok, err := rootAt(p.TreeSize)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrChainQuery, err)
	}
	if !ok {
		return fmt.Errorf("%w: tree size %d (chain %d, contract %s)", ErrRootNotOnChain, p.TreeSize, p.Checkpoint.ChainID, p.Checkpoint.Contract)
	}
	if onChain != p.Checkpoint.Root {
		return fmt.Errorf("%w: chain holds %s for tree size %d, proof says %s", ErrRootMismatch, onChain, p.TreeSize, p.Checkpoint.Root)
	}
	return nil
}

// Consistency is the answer of GET /anchor/consistency?from=N&to=M: the
// RFC 6962 consistency proof between the trees of From and To leaves,
// with both roots and, where they are anchored, their checkpoints.
type Consistency struct {
	From     uint64 `json:"from"`
	To       uint64 `json:"to"`
	FromRoot Hash   `json:"fromRoot"`
	ToRoot   Hash   `json:"toRoot"`
	Proof    []Hash `json:"proof"`
	// FromCheckpoint / ToCheckpoint: the anchored checkpoints of those
	// sizes, when they are anchored (check their roots on chain).
	FromCheckpoint *Checkpoint `json:"fromCheckpoint,omitempty"`
	ToCheckpoint   *Checkpoint `json:"toCheckpoint,omitempty"`
}

// Consistency returns the consistency proof between two tree sizes of the
// integrated log (1 <= from <= to). Errors: ErrBadRange, ErrBeyondLog.
func (l *Log) Consistency(ctx context.Context, from, to uint64) (Consistency, error) {
	if from == 0 || from > to {
		return Consistency{}, fmt.Errorf("%w: want 1 <= from <= to, got from=%d to=%d", ErrBadRange, from, to)
	}
	p, err := l.ConsistencyProof(ctx, from, to)
	if err != nil {
		return Consistency{}, err
	}
	c := Consistency{From: from, To: to, Proof: p}
	if c.FromRoot, err = l.Root(ctx, from); err != nil {
		return Consistency{}, err
	}
	if c.ToRoot, err = l.Root(ctx, to); err != nil {
		return Consistency{}, err
	}
	if l.a != nil {
		for _, x := range []struct {
			size uint64
			dst  **Checkpoint
		}{{from, &c.FromCheckpoint}, {to, &c.ToCheckpoint}} {
			cp, err := l.checkpointAt(ctx, x.size)
			if err != nil {
				return Consistency{}, err
			}
			if cp != nil && cp.Anchored() {
				*x.dst = cp
			}
		}
	}
	return c, nil
}

// Verify checks the consistency proof between the two roots it carries.
func (c Consistency) Verify() error {
	if err := proof.VerifyConsistency(hasher, c.From, c.To, toBytes(c.Proof), c.FromRoot[:], c.ToRoot[:]); err != nil {
		return fmt.Errorf("%w: consistency: %v", ErrInvalid, err)
	}
	return nil
}
