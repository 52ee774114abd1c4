package bindings_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"math/big"
	"os"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/accounts/abi/bind/v2"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/merkle/testonly"

	"github.com/fhirgate/fhirgate/contracts/bindings"
)

var anchorABI = bindings.NewAuditAnchor()

// anchorEnv is a deployed AuditAnchor with an owner, an anchorer, a stranger
// and the log whose checkpoints it anchors.
type anchorEnv struct {
	*chain
	c                         *bind.BoundContract
	owner, anchorer, stranger account
	tree                      *testonly.Tree
}

func newAnchorEnv(t *testing.T, opts ...option) *anchorEnv {
	t.Helper()
	accts := newAccounts(t, 3)
	ch := newChain(t, accts, opts...)
	e := &anchorEnv{chain: ch, owner: accts[0], anchorer: accts[1], stranger: accts[2], tree: testonly.New(rfc6962.DefaultHasher)}
	addr, tx, err := bindings.DeployAuditAnchor(e.owner.opts, ch.client, e.anchorer.addr)
	e.c = ch.deployed(&bindings.AuditAnchorMetaData, addr, tx, err)
	return e
}

// grow appends leaves to the log until it has size leaves.
func (e *anchorEnv) grow(size uint64) {
	for e.tree.Size() < size {
		e.tree.AppendData([]byte(fmt.Sprintf("leaf %d", e.tree.Size())))
	}
}

func root(t *testing.T, tr *testonly.Tree, size uint64) [32]byte {
	t.Helper()
	return [32]byte(tr.HashAt(size))
}

func consistency(t *testing.T, tr *testonly.Tree, size1, size2 uint64) [][32]byte {
	t.Helper()
	p, err := tr.ConsistencyProof(size1, size2)
	if err != nil {
		t.Fatal(err)
	}
	return toWords(p)
}

func toWords(p [][]byte) [][32]byte {
	out := make([][32]byte, len(p))
	for i, h := range p {
		out[i] = [32]byte(h)
	}
	return out
}

func (e *anchorEnv) latest() bindings.LatestOutput {
	e.t.Helper()
	out, err := bind.Call(e.c, nil, anchorABI.PackLatest(), anchorABI.UnpackLatest)
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}

func (e *anchorEnv) rootAt(size uint64) bindings.RootAtOutput {
	e.t.Helper()
	out, err := bind.Call(e.c, nil, anchorABI.PackRootAt(size), anchorABI.UnpackRootAt)
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}

// anchorTo grows the log to size and anchors it with a real consistency
// proof from the latest anchored checkpoint, checking the Anchored event.
func (e *anchorEnv) anchorTo(size uint64) *types.Receipt {
	e.t.Helper()
	prev := e.latest().TreeSize
	e.grow(size)
	var p [][32]byte
	if prev > 0 {
		p = consistency(e.t, e.tree, prev, size)
	}
	r := e.mine(bind.Transact(e.c, e.anchorer.opts, anchorABI.PackAnchor(size, root(e.t, e.tree, size), p)))
	if len(r.Logs) != 1 {
		e.t.Fatalf("anchor: %d logs, want 1", len(r.Logs))
	}
	ev, err := anchorABI.UnpackAnchoredEvent(r.Logs[0])
	if err != nil {
		e.t.Fatal(err)
	}
	if ev.TreeSize != size || ev.Root != root(e.t, e.tree, size) {
		e.t.Fatalf("Anchored(%d, %x), want (%d, %x)", ev.TreeSize, ev.Root, size, root(e.t, e.tree, size))
	}
	return r
}

func TestAuditAnchorDeploy(t *testing.T) {
	e := newAnchorEnv(t)
	owner, err := bind.Call(e.c, nil, anchorABI.PackOwner(), anchorABI.UnpackOwner)
	if err != nil || owner != e.owner.addr {
		t.Errorf("owner() = %s, %v; want %s", owner, err, e.owner.addr)
	}
	anchorer, err := bind.Call(e.c, nil, anchorABI.PackAnchorer(), anchorABI.UnpackAnchorer)
	if err != nil || anchorer != e.anchorer.addr {
		t.Errorf("anchorer() = %s, %v; want %s", anchorer, err, e.anchorer.addr)
	}
	if got := e.latest(); got.TreeSize != 0 || got.Root != [32]byte{} {
		t.Errorf("latest() = %+v before any anchor, want zeros", got)
	}
	if got := e.rootAt(0); got.Root != [32]byte{} || got.Timestamp != 0 {
		t.Errorf("rootAt(0) = %+v, want zeros", got)
	}
	n, err := bind.Call(e.c, nil, anchorABI.PackCheckpointCount(), anchorABI.UnpackCheckpointCount)
	if err != nil || n.Sign() != 0 {
		t.Errorf("checkpointCount() = %v, %v; want 0", n, err)
	}
	_, err = bind.Call(e.c, nil, anchorABI.PackCheckpointAt(big.NewInt(0)), anchorABI.UnpackCheckpointAt)
	wantRevert(t, err, anchorABI.UnpackError, &bindings.AuditAnchorNoSuchCheckpoint{Index: big.NewInt(0)})

	// Constructor events, for followers that index from deployment.
	logs, err := e.client.FilterLogs(context.Background(), ethereumQuery(e.c.Address()))
	if err != nil {
		t.Fatal(err)
	}
	if len(logs) != 2 {
		t.Fatalf("deployment emitted %d logs, want 2", len(logs))
	}
	ot, err := anchorABI.UnpackOwnershipTransferredEvent(&logs[0])
	if err != nil || ot.PreviousOwner != (common.Address{}) || ot.NewOwner != e.owner.addr {
		t.Errorf("OwnershipTransferred = %+v, %v", ot, err)
	}
	ac, err := anchorABI.UnpackAnchorerChangedEvent(&logs[1])
	if err != nil || ac.PreviousAnchorer != (common.Address{}) || ac.NewAnchorer != e.anchorer.addr {
		t.Errorf("AnchorerChanged = %+v, %v", ac, err)
	}
}

// The runtime code on chain is the committed artifact: artifacts and
// bindings come from the same build.
func TestAuditAnchorRuntimeMatchesArtifact(t *testing.T) {
	e := newAnchorEnv(t)
	code, err := e.client.CodeAt(context.Background(), e.c.Address(), nil)
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile("../artifacts/AuditAnchor.bin-runtime")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(code, common.FromHex(strings.TrimSpace(string(want)))) {
		t.Fatal("deployed runtime code differs from artifacts/AuditAnchor.bin-runtime: rebuild (contracts/check.sh)")
	}
}

func TestAuditAnchorAccessControl(t *testing.T) {
	e := newAnchorEnv(t)
	e.grow(10)
	r10 := root(t, e.tree, 10)
	newAnchorer := newAccounts(t, 1)[0].addr

	for _, tc := range []struct {
		name string
		from account
		data []byte
		want any
	}{
		{"stranger anchors", e.stranger, anchorABI.PackAnchor(10, r10, nil), &bindings.AuditAnchorNotAnchorer{Caller: e.stranger.addr}},
		{"owner anchors", e.owner, anchorABI.PackAnchor(10, r10, nil), &bindings.AuditAnchorNotAnchorer{Caller: e.owner.addr}},
		{"stranger sets anchorer", e.stranger, anchorABI.PackSetAnchorer(newAnchorer), &bindings.AuditAnchorNotOwner{Caller: e.stranger.addr}},
		{"anchorer sets anchorer", e.anchorer, anchorABI.PackSetAnchorer(newAnchorer), &bindings.AuditAnchorNotOwner{Caller: e.anchorer.addr}},
		{"stranger takes ownership", e.stranger, anchorABI.PackTransferOwnership(e.stranger.addr), &bindings.AuditAnchorNotOwner{Caller: e.stranger.addr}},
		{"anchorer takes ownership", e.anchorer, anchorABI.PackTransferOwnership(e.anchorer.addr), &bindings.AuditAnchorNotOwner{Caller: e.anchorer.addr}},
		{"owner renounces to zero", e.owner, anchorABI.PackTransferOwnership(common.Address{}), &bindings.AuditAnchorZeroAddress{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := bind.Transact(e.c, tc.from.opts, tc.data)
			wantRevert(t, err, anchorABI.UnpackError, tc.want)
		})
	}

	// The owner hands anchoring to another account: the old anchorer is out.
	next := newAccounts(t, 1)[0]
	r := e.mine(bind.Transact(e.c, e.owner.opts, anchorABI.PackSetAnchorer(next.addr)))
	ev, err := anchorABI.UnpackAnchorerChangedEvent(r.Logs[0])
	if err != nil || ev.PreviousAnchorer != e.anchorer.addr || ev.NewAnchorer != next.addr {
		t.Fatalf("AnchorerChanged = %+v, %v", ev, err)
	}
	_, err = bind.Transact(e.c, e.anchorer.opts, anchorABI.PackAnchor(10, r10, nil))
	wantRevert(t, err, anchorABI.UnpackError, &bindings.AuditAnchorNotAnchorer{Caller: e.anchorer.addr})

	// address(0) pauses anchoring; setting an account back resumes it.
	e.mine(bind.Transact(e.c, e.owner.opts, anchorABI.PackSetAnchorer(common.Address{})))
	_, err = bind.Transact(e.c, e.anchorer.opts, anchorABI.PackAnchor(10, r10, nil))
	wantRevert(t, err, anchorABI.UnpackError, &bindings.AuditAnchorNotAnchorer{Caller: e.anchorer.addr})
	e.mine(bind.Transact(e.c, e.owner.opts, anchorABI.PackSetAnchorer(e.anchorer.addr)))
	e.anchorTo(10)

	// Ownership moves in one step: the old owner loses its rights at once.
	r = e.mine(bind.Transact(e.c, e.owner.opts, anchorABI.PackTransferOwnership(e.stranger.addr)))
	ot, err := anchorABI.UnpackOwnershipTransferredEvent(r.Logs[0])
	if err != nil || ot.PreviousOwner != e.owner.addr || ot.NewOwner != e.stranger.addr {
		t.Fatalf("OwnershipTransferred = %+v, %v", ot, err)
	}
	_, err = bind.Transact(e.c, e.owner.opts, anchorABI.PackSetAnchorer(e.owner.addr))
	wantRevert(t, err, anchorABI.UnpackError, &bindings.AuditAnchorNotOwner{Caller: e.owner.addr})
	e.mine(bind.Transact(e.c, e.stranger.opts, anchorABI.PackSetAnchorer(next.addr)))
	anchorer, err := bind.Call(e.c, nil, anchorABI.PackAnchorer(), anchorABI.UnpackAnchorer)
	if err != nil || anchorer != next.addr {
		t.Fatalf("anchorer() = %s, %v; want %s", anchorer, err, next.addr)
	}
	// Changing the anchorer keeps the anchored state.
	if got := e.latest(); got.TreeSize != 10 || got.Root != r10 {
		t.Fatalf("latest() = %+v after anchorer change, want (10, %x)", got, r10)
	}
}

// A sequence of checkpoints with real proofs, across power-of-two
// boundaries, then every view checked against the chain's block times.
func TestAuditAnchorSequence(t *testing.T) {
	e := newAnchorEnv(t)
	sizes := []uint64{1, 2, 3, 4, 7, 8, 9, 16, 17, 1000, 1023, 1024, 1025, 2048, 4095, 5000}
	times := map[uint64]uint64{}
	for i, size := range sizes {
		prev := e.latest().TreeSize
		r := e.anchorTo(size)
		times[size] = e.blockTime(r.BlockNumber)

		// The proof the contract accepted is one the Go library accepts.
		if prev > 0 {
			p, _ := e.tree.ConsistencyProof(prev, size)
			if err := proof.VerifyConsistency(rfc6962.DefaultHasher, prev, size, p, e.tree.HashAt(prev), e.tree.HashAt(size)); err != nil {
				t.Fatalf("Go rejects the proof %d -> %d: %v", prev, size, err)
			}
		}
		if got := e.latest(); got.TreeSize != size || got.Root != root(t, e.tree, size) {
			t.Fatalf("latest() = %+v after anchoring %d", got, size)
		}
		if got := e.rootAt(size); got.Root != root(t, e.tree, size) || got.Timestamp != times[size] {
			t.Fatalf("rootAt(%d) = %+v, want (%x, %d)", size, got, root(t, e.tree, size), times[size])
		}
		n, err := bind.Call(e.c, nil, anchorABI.PackCheckpointCount(), anchorABI.UnpackCheckpointCount)
		if err != nil || n.Uint64() != uint64(i+1) {
			t.Fatalf("checkpointCount() = %v, %v; want %d", n, err, i+1)
		}
	}

	// Everything anchored stays readable; nothing else is.
	for i, size := range sizes {
		if got := e.rootAt(size); got.Root != root(t, e.tree, size) || got.Timestamp != times[size] {
			t.Errorf("rootAt(%d) = %+v, want (%x, %d)", size, got, root(t, e.tree, size), times[size])
		}
		cp, err := bind.Call(e.c, nil, anchorABI.PackCheckpointAt(big.NewInt(int64(i))), anchorABI.UnpackCheckpointAt)
		if err != nil || cp.TreeSize != size || cp.Root != root(t, e.tree, size) || cp.Timestamp != times[size] {
			t.Errorf("checkpointAt(%d) = %+v, %v; want size %d", i, cp, err, size)
		}
	}
	for _, size := range []uint64{0, 5, 6, 10, 1022, 1026, 4096, 4999, 5001, math.MaxUint64} {
		if got := e.rootAt(size); got.Root != [32]byte{} || got.Timestamp != 0 {
			t.Errorf("rootAt(%d) = %+v for a size never anchored, want zeros", size, got)
		}
	}
	_, err := bind.Call(e.c, nil, anchorABI.PackCheckpointAt(big.NewInt(int64(len(sizes)))), anchorABI.UnpackCheckpointAt)
	wantRevert(t, err, anchorABI.UnpackError, &bindings.AuditAnchorNoSuchCheckpoint{Index: big.NewInt(int64(len(sizes)))})
}

func TestAuditAnchorRejects(t *testing.T) {
	e := newAnchorEnv(t)
	e.grow(3000)
	rootOf := func(size uint64) [32]byte { return root(t, e.tree, size) }
	flip := func(p [][32]byte, i int) [][32]byte {
		q := append([][32]byte(nil), p...)
		q[i][31] ^= 1
		return q
	}

	// First checkpoint: every tree extends the empty one, with an empty proof.
	_, err := bind.Transact(e.c, e.anchorer.opts, anchorABI.PackAnchor(1000, rootOf(1000), [][32]byte{rootOf(1)}))
	wantRevert(t, err, anchorABI.UnpackError, &bindings.AuditAnchorProofLengthMismatch{Expected: big.NewInt(0), Actual: big.NewInt(1)})
	_, err = bind.Transact(e.c, e.anchorer.opts, anchorABI.PackAnchor(0, rootOf(0), nil))
	wantRevert(t, err, anchorABI.UnpackError, &bindings.AuditAnchorTreeSizeNotIncreasing{LatestTreeSize: 0, TreeSize: 0})
	_, err = bind.Transact(e.c, e.anchorer.opts, anchorABI.PackAnchor(1000, [32]byte{}, nil))
	wantRevert(t, err, anchorABI.UnpackError, &bindings.AuditAnchorZeroRoot{})
	e.anchorTo(1000)

	// A log that forked at leaf 700: same size history, different content.
	fork := testonly.New(rfc6962.DefaultHasher)
	for i := uint64(0); i < 2000; i++ {
		leaf := fmt.Sprintf("leaf %d", i)
		if i == 700 {
			leaf = "rewritten"
		}
		fork.AppendData([]byte(leaf))
	}

	valid := consistency(t, e.tree, 1000, 2000)
	short := consistency(t, e.tree, 1000, 1500)
	for _, tc := range []struct {
		name  string
		size  uint64
		root  [32]byte
		proof [][32]byte
		want  any
	}{
		{"same size", 1000, rootOf(1000), nil, &bindings.AuditAnchorTreeSizeNotIncreasing{LatestTreeSize: 1000, TreeSize: 1000}},
		{"shrinking tree", 999, rootOf(999), nil, &bindings.AuditAnchorTreeSizeNotIncreasing{LatestTreeSize: 1000, TreeSize: 999}},
		{"zero root", 2000, [32]byte{}, valid, &bindings.AuditAnchorZeroRoot{}},
		{"empty proof", 2000, rootOf(2000), nil, &bindings.AuditAnchorProofLengthMismatch{Expected: big.NewInt(int64(len(valid))), Actual: big.NewInt(0)}},
		{"truncated proof", 2000, rootOf(2000), valid[:len(valid)-1], &bindings.AuditAnchorProofLengthMismatch{Expected: big.NewInt(int64(len(valid))), Actual: big.NewInt(int64(len(valid) - 1))}},
		{"padded proof", 2000, rootOf(2000), append(append([][32]byte(nil), valid...), rootOf(1)), &bindings.AuditAnchorProofLengthMismatch{Expected: big.NewInt(int64(len(valid))), Actual: big.NewInt(int64(len(valid) + 1))}},
		{"wrong new root", 2000, rootOf(1999), valid, &bindings.AuditAnchorRootMismatch{Computed: rootOf(2000)}},
		{"proof for another size", 2000, rootOf(2000), short, nil}, // length or root mismatch, see below
		{"first element tampered", 2000, rootOf(2000), flip(valid, 0), nil},
		{"last element tampered", 2000, rootOf(2000), flip(valid, len(valid)-1), nil},
		{"rewritten history", 2000, root(t, fork, 2000), consistency(t, fork, 1000, 2000), &bindings.AuditAnchorPreviousRootMismatch{Computed: root(t, fork, 1000)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := bind.Transact(e.c, e.anchorer.opts, anchorABI.PackAnchor(tc.size, tc.root, tc.proof))
			want := tc.want
			if want == nil {
				want = expectedOutcome(t, 1000, tc.size, tc.proof, rootOf(1000), tc.root, len(consistency(t, e.tree, 1000, tc.size)))
			}
			wantRevert(t, err, anchorABI.UnpackError, want)
		})
	}

	// A rejected anchor mined anyway (gas limit set by hand, no estimate)
	// fails on chain and changes nothing.
	opts := *e.anchorer.opts
	opts.GasLimit = 1_000_000
	tx, err := bind.Transact(e.c, &opts, anchorABI.PackAnchor(2000, root(t, fork, 2000), consistency(t, fork, 1000, 2000)))
	if err != nil {
		t.Fatal(err)
	}
	e.commit(tx)
	rcpt, err := e.client.TransactionReceipt(context.Background(), tx.Hash())
	if err != nil || rcpt.Status != types.ReceiptStatusFailed {
		t.Fatalf("receipt = %+v, %v; want a failed transaction", rcpt, err)
	}
	if got := e.latest(); got.TreeSize != 1000 || got.Root != rootOf(1000) {
		t.Fatalf("latest() = %+v after a failed anchor, want (1000, %x)", got, rootOf(1000))
	}
	if got := e.rootAt(2000); got.Root != [32]byte{} {
		t.Fatalf("rootAt(2000) = %+v after a failed anchor, want zero", got)
	}
	e.anchorTo(2000)
}

// expectedOutcome maps what transparency-dev/merkle's VerifyConsistency
// says about a proof to the custom error AuditAnchor must revert with (nil:
// it must accept). Both check root1 first, then root2, so even the hash the
// contract reports must agree. Go is asked with a root2 that cannot match,
// so its error tells which check failed even when root1 == root2.
// validLen is the length of the valid proof for these sizes.
func expectedOutcome(t *testing.T, size1, size2 uint64, p [][32]byte, root1, root2 [32]byte, validLen int) any {
	t.Helper()
	raw := make([][]byte, len(p))
	for i := range p {
		raw[i] = p[i][:]
	}
	probe := bytes.Repeat([]byte{0xff}, 32)
	err := proof.VerifyConsistency(rfc6962.DefaultHasher, size1, size2, raw, root1[:], probe)
	var mismatch proof.RootMismatchError
	switch {
	case errors.As(err, &mismatch) && bytes.Equal(mismatch.ExpectedRoot, root1[:]):
		return &bindings.AuditAnchorPreviousRootMismatch{Computed: [32]byte(mismatch.CalculatedRoot)}
	case errors.As(err, &mismatch) && bytes.Equal(mismatch.CalculatedRoot, root2[:]):
		return nil
	case errors.As(err, &mismatch):
		return &bindings.AuditAnchorRootMismatch{Computed: [32]byte(mismatch.CalculatedRoot)}
	case err == nil:
		t.Fatal("Go verifier accepted an impossible root")
	}
	// Wrong proof size.
	return &bindings.AuditAnchorProofLengthMismatch{Expected: big.NewInt(int64(validLen)), Actual: big.NewInt(int64(len(p)))}
}

// Differential test of the on-chain verifier against transparency-dev/merkle:
// every pair of sizes up to 33 -> 70, and pairs around larger power-of-two
// boundaries. Valid proofs pass; each single-element tampering, swapped
// elements, a wrong root, and truncated or padded proofs fail with the error
// (and computed hash) the Go verifier predicts. Uses eth_call, so nothing is
// mined per case.
func TestAuditAnchorConsistencyMatchesGo(t *testing.T) {
	if testing.Short() {
		t.Skip("differential sweep: skipped with -short")
	}
	pairs := map[uint64][]uint64{}
	for size1 := uint64(1); size1 <= 33; size1++ {
		for size2 := size1 + 1; size2 <= 70; size2++ {
			pairs[size1] = append(pairs[size1], size2)
		}
	}
	for _, size1 := range []uint64{255, 256, 257, 1000, 1023, 1024, 1025, 3001} {
		for _, d := range []uint64{1, 2, 3, 255, 256, 257, 1000, 1024, 3000} {
			pairs[size1] = append(pairs[size1], size1+d)
		}
	}
	e := newAnchorEnv(t)
	e.grow(3001 + 3000)

	// One contract per size1, all deployed in one block and anchored in the
	// next (gas limits by hand: estimates run against the latest block).
	contracts := map[uint64]*bind.BoundContract{}
	var txs []*types.Transaction
	// Nonces by hand: the pool's pending nonce may lag a transaction just
	// sent, and two identical deployments would then collide.
	ctx := context.Background()
	nonce, err := e.client.PendingNonceAt(ctx, e.owner.addr)
	if err != nil {
		t.Fatal(err)
	}
	for size1 := range pairs {
		opts := *e.owner.opts
		opts.Nonce = new(big.Int).SetUint64(nonce)
		nonce++
		addr, tx, err := bindings.DeployAuditAnchor(&opts, e.client, e.anchorer.addr)
		if err != nil {
			t.Fatal(err)
		}
		txs = append(txs, tx)
		contracts[size1] = anchorABI.Instance(e.client, addr)
	}
	e.commit(txs...)
	if nonce, err = e.client.PendingNonceAt(ctx, e.anchorer.addr); err != nil {
		t.Fatal(err)
	}
	for size1, c := range contracts {
		opts := *e.anchorer.opts
		opts.GasLimit = 1_000_000
		opts.Nonce = new(big.Int).SetUint64(nonce)
		nonce++
		tx, err := bind.Transact(c, &opts, anchorABI.PackAnchor(size1, root(t, e.tree, size1), nil))
		if err != nil {
			t.Fatal(err)
		}
		txs = append(txs, tx)
	}
	e.commit(txs...)
	for _, tx := range txs {
		if r, err := e.client.TransactionReceipt(ctx, tx.Hash()); err != nil || r.Status != types.ReceiptStatusSuccessful {
			t.Fatalf("setup transaction %s failed: %v", tx.Hash(), err)
		}
	}

	type variant struct {
		name  string
		root  [32]byte
		proof [][32]byte
	}
	cases := 0
	for size1, sizes2 := range pairs {
		root1 := root(t, e.tree, size1)
		for _, size2 := range sizes2 {
			root2 := root(t, e.tree, size2)
			valid := consistency(t, e.tree, size1, size2)
			variants := []variant{
				{"valid", root2, valid},
				{"wrong root", root(t, e.tree, size2-1), valid},
				{"truncated", root2, valid[:len(valid)-1]},
				{"padded", root2, append(append([][32]byte(nil), valid...), root1)},
			}
			for i := range valid {
				p := append([][32]byte(nil), valid...)
				p[i][0] ^= 0x80
				variants = append(variants, variant{fmt.Sprintf("tampered[%d]", i), root2, p})
			}
			if len(valid) > 1 {
				p := append([][32]byte(nil), valid...)
				p[0], p[1] = p[1], p[0]
				variants = append(variants, variant{"swapped", root2, p})
			}
			for _, v := range variants {
				cases++
				_, err := contracts[size1].CallRaw(callAs(e.anchorer.addr), anchorABI.PackAnchor(size2, v.root, v.proof))
				want := expectedOutcome(t, size1, size2, v.proof, root1, v.root, len(valid))
				if want == nil {
					if err != nil {
						t.Fatalf("%d -> %d %s: contract rejects what Go accepts: %v", size1, size2, v.name, err)
					}
					continue
				}
				if err := checkRevert(err, anchorABI.UnpackError, want); err != nil {
					t.Fatalf("%d -> %d %s: %v", size1, size2, v.name, err)
				}
			}
		}
	}
	t.Logf("%d cases", cases)
}

func ethereumQuery(addr common.Address) ethereum.FilterQuery {
	return ethereum.FilterQuery{FromBlock: big.NewInt(0), Addresses: []common.Address{addr}}
}
