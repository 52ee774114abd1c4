package anchor

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/transparency-dev/merkle/compact"

	"github.com/fhirgate/fhirgate/store"
)

// CheckStatus is the verdict on one stored version.
type CheckStatus string

// Verdicts of VerifyResource.
const (
	// CheckOK: the stored bytes hash to the logged leaf, the leaf is in
	// an anchored checkpoint, and the chain holds that checkpoint's root.
	CheckOK CheckStatus = "ok"
	// CheckPending: consistent so far, but not anchored yet.
	CheckPending CheckStatus = "pending"
	// CheckUnverified: consistent with the log, but the chain could not
	// be asked (or anchoring is off).
	CheckUnverified CheckStatus = "unverified"
	// CheckFailed: something does not match: the record was altered,
	// removed or added behind the gateway's back, or the log was.
	CheckFailed CheckStatus = "failed"
)

// VersionCheck is the result for one version of a resource.
type VersionCheck struct {
	VersionID uint64      `json:"versionId"`
	Status    CheckStatus `json:"status"`
	// LeafIndex is the version's log position (when it has one).
	LeafIndex *uint64 `json:"leafIndex,omitempty"`
	// TreeSize is the anchored checkpoint it was checked against (0:
	// none).
	TreeSize uint64 `json:"treeSize,omitzero"`
	// Err says what failed, or why it is pending / unverified; nil for
	// CheckOK.
	Err error `json:"-"`
}

// Severity maps the verdict to a FHIR OperationOutcome issue severity:
// failed → error, unverified → warning, ok and pending → information.
func (c VersionCheck) Severity() string {
	switch c.Status {
	case CheckFailed:
		return "error"
	case CheckUnverified:
		return "warning"
	}
	return "information"
}

// Message is a one-line description for an OperationOutcome issue (no
// PHI: names the version and what failed, never the content).
func (c VersionCheck) Message() string {
	switch c.Status {
	case CheckOK:
		return fmt.Sprintf("version %d: matches its log leaf %d, anchored in checkpoint %d", c.VersionID, deref(c.LeafIndex), c.TreeSize)
	case CheckPending:
		return fmt.Sprintf("version %d: not anchored yet (%v)", c.VersionID, c.Err)
	case CheckUnverified:
		return fmt.Sprintf("version %d: matches the log, not checked on chain (%v)", c.VersionID, c.Err)
	}
	return fmt.Sprintf("version %d: %v", c.VersionID, c.Err)
}

func deref(p *uint64) uint64 {
	if p == nil {
		return 0
	}
	return *p
}

// Reasons a version fails verification (wrapped in VersionCheck.Err; the
// proof errors ErrResourceMismatch, ErrInclusionMismatch, ErrRootNotOnChain
// and ErrRootMismatch also appear).
var (
	ErrVersionMissing = errors.New("version is missing from the store")
	ErrNoLeaf         = errors.New("version has no log entry")
	ErrLeafMismatch   = errors.New("log entry does not belong to this version")
	ErrTreeMismatch   = errors.New("the log tree does not hold this entry's hash")
	ErrExtraLeaf      = errors.New("the log has an entry for a version the store does not have")
)

// VerifyResource re-hashes every stored version of one resource (deleted
// ones included) and checks each against its log leaf, the tree, the
// anchored checkpoint and the chain: $verify. It fails only when the
// resource does not exist (store.ErrNotFound) or the store cannot be
// read; every mismatch is a CheckFailed entry.
func (l *Log) VerifyResource(ctx context.Context, typ, id string) ([]VersionCheck, error) {
	cur, err := l.st.Current(ctx, typ, id)
	if err != nil {
		return nil, err
	}
	cache := map[uint64]rootAnswer{}
	rootAt := func(size uint64) (Hash, bool, error) {
		if l.a == nil {
			return Hash{}, false, ErrAnchoringDisabled
		}
		if a, ok := cache[size]; ok {
			return a.root, a.ok, a.err
		}
		r, ok, err := l.a.RootAt(ctx, size)
		cache[size] = rootAnswer{r, ok, err}
		return r, ok, err
	}
	out := make([]VersionCheck, 0, cur.VID+1)
	for vid := uint64(1); vid <= cur.VID; vid++ {
		c, err := l.checkVersion(ctx, typ, id, vid, rootAt)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	// A leaf for the version after the current one: the store was rolled
	// back behind the gateway's back.
	if idx, err := l.st.LeafIndex(ctx, typ, id, cur.VID+1); err == nil {
		out = append(out, VersionCheck{VersionID: cur.VID + 1, Status: CheckFailed, LeafIndex: &idx, Err: ErrExtraLeaf})
	} else if !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	return out, nil
}

type rootAnswer struct {
	root Hash
	ok   bool
	err  error
}

func (l *Log) checkVersion(ctx context.Context, typ, id string, vid uint64, rootAt RootAtFunc) (VersionCheck, error) {
	c := VersionCheck{VersionID: vid}
	fail := func(err error) (VersionCheck, error) {
		c.Status, c.Err = CheckFailed, err
		return c, nil
	}
	v, err := l.st.Version(ctx, typ, id, vid)
	if errors.Is(err, store.ErrNotFound) {
		return fail(ErrVersionMissing)
	}
	if err != nil {
		return fail(fmt.Errorf("stored version unreadable: %v", err))
	}
	idx, err := l.st.LeafIndex(ctx, typ, id, vid)
	if errors.Is(err, store.ErrNotFound) {
		return fail(ErrNoLeaf)
	}
	if err != nil {
		return c, err
	}
	c.LeafIndex = &idx
	data, err := l.e.Get(ctx, store.LogKey(idx))
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return fail(fmt.Errorf("%w: entry %d is missing", ErrLeafMismatch, idx))
		}
		return c, err
	}
	leaf, err := ParseLeaf(data)
	if err != nil {
		return fail(fmt.Errorf("%w: entry %d: %v", ErrLeafMismatch, idx, err))
	}
	if leaf.Type != typ || leaf.ID != id || leaf.VID != vid {
		return fail(fmt.Errorf("%w: entry %d", ErrLeafMismatch, idx))
	}
	body := v.Body
	if body == nil {
		body = []byte{}
	}
	if got := sha256.Sum256(body); got != leaf.SHA256 {
		return fail(reason{"the stored version was altered after it was written: its SHA-256 differs from the one logged with it", ErrResourceMismatch})
	}
	if !l.have(ctx, idx+1) {
		c.Status, c.Err = CheckPending, errors.New("not yet in the tree")
		return c, nil
	}
	// The entry must be one the tree was built from: recomputed from the
	// log, the lowest stored node above it must match (once its subtree
	// is complete; until then only the anchored root can tell).
	anc := compact.NewNodeID(storedLevel, idx>>storedLevel)
	if _, end := anc.Coverage(); end <= l.Size() {
		stored, err := l.storedNode(ctx, anc)
		if err != nil {
			return c, err
		}
		got, err := l.subtree(ctx, anc, &leafBlock{})
		if errors.Is(err, errEntryMissing) {
			return fail(fmt.Errorf("%w: %v", ErrTreeMismatch, err))
		}
		if err != nil {
			return c, err
		}
		if !bytes.Equal(stored, got) {
			return fail(fmt.Errorf("%w: leaf %d", ErrTreeMismatch, idx))
		}
	}
	if l.a == nil {
		c.Status, c.Err = CheckUnverified, ErrAnchoringDisabled
		return c, nil
	}
	cp, err := l.anchoredCovering(ctx, idx)
	if err != nil {
		return c, err
	}
	if cp == nil || !l.have(ctx, cp.TreeSize) {
		c.Status, c.Err = CheckPending, ErrNotAnchored
		return c, nil
	}
	c.TreeSize = cp.TreeSize
	p, err := l.proofAt(ctx, idx, leaf, cp)
	if err != nil {
		return c, err
	}
	switch err := VerifyProof(p, body, rootAt); {
	case err == nil:
		c.Status = CheckOK
	case errors.Is(err, ErrChainQuery):
		c.Status, c.Err = CheckUnverified, err
	default:
		c.Status, c.Err = CheckFailed, fmt.Errorf("the log's proof against anchored checkpoint %d fails (the log or the checkpoint record was altered): %w", cp.TreeSize, err)
	}
	return c, nil
}

// reason is an error with its own message that still matches a sentinel.
type reason struct {
	msg string
	err error
}

func (r reason) Error() string { return r.msg }
func (r reason) Unwrap() error { return r.err }
