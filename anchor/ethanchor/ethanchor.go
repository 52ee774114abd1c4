// Package ethanchor is the Ethereum side of anchoring: an anchor.Anchorer
// that sends checkpoints to an AuditAnchor contract through the chain
// package's Sender, and the offline verification `gateway verify` runs
// against any Ethereum node (VerifyOnChain, RootAt), trusting nothing the
// gateway says.
package ethanchor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"strings"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/accounts/abi/bind/v2"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/fhirgate/fhirgate/anchor"
	"github.com/fhirgate/fhirgate/chain"
	"github.com/fhirgate/fhirgate/contracts/bindings"
)

// AuditAnchorCodeHash is keccak256 of AuditAnchor's runtime bytecode as
// committed in contracts/artifacts/AuditAnchor.bin-runtime (the contract
// has no immutables, so every deployment has exactly this code). A
// contract at another address with this code hash enforces the same rules.
// TestCodeHash keeps it in step with the artifacts.
var AuditAnchorCodeHash = common.HexToHash("0x29ef576d446d56804aae26fec0a0379afb0b3f512ddb8b1acd38027aad96863a")

// DefaultGasLimit is the gas limit of anchoring transactions. Estimation
// cannot be used (a second anchor queued in the same block estimates as a
// revert): measured worst cases are below 100k gas with mainnet rules and
// ~280k under the dev chains' pre-release fork (contracts/README.md); the
// limit only caps, gas used is what is paid.
const DefaultGasLimit = 500_000

// Errors of setting up.
var (
	// ErrNotAuditAnchor: the address holds no AuditAnchor (no code, or
	// other code).
	ErrNotAuditAnchor = errors.New("ethanchor: no AuditAnchor at that address")
	// ErrNotAnchorer: the contract does not let the Sender's account
	// anchor (its owner must call setAnchorer).
	ErrNotAnchorer = errors.New("ethanchor: the sending account is not the contract's anchorer")
)

var abiAnchor = bindings.NewAuditAnchor()

// anchoredTopic is the Anchored event's topic 0.
var anchoredTopic = abiAnchor.GetABI().Events[bindings.AuditAnchorAnchoredEventName].ID

// Config configures an Anchorer.
type Config struct {
	// Sender sends from the anchorer account (the one the contract's
	// anchorer() names). One Sender per key and process: share the
	// gateway's.
	Sender *chain.Sender
	// Contract is the AuditAnchor's address.
	Contract common.Address
	// FromBlock is the block the contract was deployed in: event searches
	// start there (0: genesis).
	FromBlock uint64
	// GasLimit of anchoring transactions (default DefaultGasLimit).
	GasLimit uint64
	// DriveFor bounds how long one transaction is waited for (and fee
	// bumped) before the Anchorer reports it failed (default 10 minutes).
	DriveFor time.Duration
	// Logger (default slog.Default()).
	Logger *slog.Logger
}

// Anchorer implements anchor.Anchorer on an AuditAnchor contract.
type Anchorer struct {
	cfg Config
	s   *chain.Sender
	c   *chain.Client
	ref anchor.ChainRef
	log *slog.Logger

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu        sync.Mutex
	sent      map[uint64]*sentTx // by tree size: the latest transaction sent for it
	lowWarned time.Time          // the last low-funds warning (Preflight)
}

type sentTx struct {
	p       *chain.Pending
	at      time.Time
	driving bool
}

var (
	_ anchor.Anchorer    = (*Anchorer)(nil)
	_ anchor.Preflighter = (*Anchorer)(nil)
)

// New checks that cfg.Contract is an AuditAnchor whose anchorer is the
// Sender's account and returns an Anchorer. Close it to stop waiting for
// transactions in flight.
func New(ctx context.Context, cfg Config) (*Anchorer, error) {
	if cfg.Sender == nil {
		return nil, errors.New("ethanchor: no Sender")
	}
	if cfg.GasLimit == 0 {
		cfg.GasLimit = DefaultGasLimit
	}
	if cfg.DriveFor <= 0 {
		cfg.DriveFor = 10 * time.Minute
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	c := cfg.Sender.Client()
	if err := CheckContract(ctx, c, cfg.Contract); err != nil {
		return nil, err
	}
	who, err := bind.Call(abiAnchor.Instance(c, cfg.Contract), &bind.CallOpts{Context: ctx}, abiAnchor.PackAnchorer(), abiAnchor.UnpackAnchorer)
	if err != nil {
		return nil, fmt.Errorf("ethanchor: anchorer(): %w", err)
	}
	if who != cfg.Sender.Address() {
		return nil, fmt.Errorf("%w: contract %s lets %s anchor, the gateway sends from %s", ErrNotAnchorer, cfg.Contract.Hex(), who.Hex(), cfg.Sender.Address().Hex())
	}
	a := &Anchorer{
		cfg:  cfg,
		s:    cfg.Sender,
		c:    c,
		ref:  anchor.ChainRef{ChainID: cfg.Sender.ChainID().Uint64(), Contract: cfg.Contract.Hex()},
		log:  cfg.Logger.With("component", "ethanchor"),
		sent: map[uint64]*sentTx{},
	}
	a.ctx, a.cancel = context.WithCancel(context.Background())
	return a, nil
}

// Close stops waiting for transactions in flight (they may still be
// mined; the anchor Log finds them on chain after a restart).
func (a *Anchorer) Close() error {
	a.cancel()
	a.wg.Wait()
	return nil
}

// CheckContract fails with ErrNotAuditAnchor unless the code at addr is
// AuditAnchor's.
func CheckContract(ctx context.Context, c bind.ContractCaller, addr common.Address) error {
	code, err := c.CodeAt(ctx, addr, nil)
	if err != nil {
		return fmt.Errorf("ethanchor: eth_getCode %s: %w", addr.Hex(), err)
	}
	if len(code) == 0 {
		return fmt.Errorf("%w: %s has no code", ErrNotAuditAnchor, addr.Hex())
	}
	if h := crypto.Keccak256Hash(code); h != AuditAnchorCodeHash {
		return fmt.Errorf("%w: code at %s has hash %s, AuditAnchor's is %s", ErrNotAuditAnchor, addr.Hex(), h.Hex(), AuditAnchorCodeHash.Hex())
	}
	return nil
}

// Deploy deploys an AuditAnchor whose anchorer (and owner) is the Sender's
// account, once per chain: book remembers it (chain.Deployments). Returns
// the deployment; pass its Address and Block to Config.
func Deploy(ctx context.Context, s *chain.Sender, book *chain.Deployments) (chain.Deployment, error) {
	return book.DeployOnce(ctx, s, "AuditAnchor", common.FromHex(bindings.AuditAnchorMetaData.Bin), abiAnchor.PackConstructor(s.Address()))
}

// Chain implements anchor.Anchorer.
func (a *Anchorer) Chain() anchor.ChainRef { return a.ref }

// State implements anchor.Anchorer: the head, and latest() read at it.
func (a *Anchorer) State(ctx context.Context) (anchor.ChainState, error) {
	head, err := a.c.BlockNumber(ctx)
	if err != nil {
		return anchor.ChainState{}, fmt.Errorf("eth_blockNumber: %w", err)
	}
	out, err := bind.Call(abiAnchor.Instance(a.c, a.cfg.Contract), &bind.CallOpts{Context: ctx, BlockNumber: new(big.Int).SetUint64(head)}, abiAnchor.PackLatest(), abiAnchor.UnpackLatest)
	if err != nil {
		return anchor.ChainState{}, fmt.Errorf("latest(): %w", err)
	}
	return anchor.ChainState{Head: head, TreeSize: out.TreeSize, Root: anchor.Hash(out.Root)}, nil
}

// Submit implements anchor.Anchorer. A tree size sent before whose
// transaction's nonce is still unused (it was dropped, by a reorg or from
// the pool) gets that same transaction re-sent, fee-bumped, so that the
// account's nonces stay gap-free; otherwise a new transaction is sent.
func (a *Anchorer) Submit(ctx context.Context, req anchor.AnchorRequest) (anchor.TxRef, error) {
	a.mu.Lock()
	prev := a.sent[req.TreeSize]
	a.mu.Unlock()
	if prev != nil {
		nonce, err := a.c.NonceAt(ctx, a.s.Address(), nil)
		if err != nil {
			return anchor.TxRef{}, fmt.Errorf("eth_getTransactionCount: %w", err)
		}
		if nonce <= prev.p.Nonce() {
			a.log.Info("ethanchor: re-sending the checkpoint's transaction", "treeSize", req.TreeSize, "nonce", prev.p.Nonce())
			a.drive(req, prev)
			return anchor.TxRef{Hash: anchor.Hash(prev.p.Hash()), Nonce: prev.p.Nonce()}, nil
		}
	}
	proof := make([][32]byte, len(req.Proof))
	for i, h := range req.Proof {
		proof[i] = h
	}
	data, err := abiAnchor.TryPackAnchor(req.TreeSize, req.Root, proof)
	if err != nil {
		return anchor.TxRef{}, err
	}
	p, err := a.s.Send(ctx, chain.TxRequest{To: &a.cfg.Contract, Data: data, Gas: a.cfg.GasLimit})
	if err != nil {
		return anchor.TxRef{}, refusal(err)
	}
	st := &sentTx{p: p, at: time.Now()}
	a.mu.Lock()
	a.sent[req.TreeSize] = st
	for size, s := range a.sent { // forget transactions long settled
		if !s.driving && time.Since(s.at) > time.Hour {
			delete(a.sent, size)
		}
	}
	a.mu.Unlock()
	a.drive(req, st)
	return anchor.TxRef{Hash: anchor.Hash(p.Hash()), Nonce: p.Nonce()}, nil
}

// drive waits for st's transaction in the background (the Sender bumps
// fees while it is stuck, and re-broadcasts after a reorg) and reports
// the outcome to req.Done.
func (a *Anchorer) drive(req anchor.AnchorRequest, st *sentTx) {
	a.mu.Lock()
	if st.driving {
		a.mu.Unlock()
		return
	}
	st.driving = true
	a.mu.Unlock()
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		ctx, cancel := context.WithTimeout(a.ctx, a.cfg.DriveFor)
		defer cancel()
		var r *types.Receipt
		var err error
		for {
			r, err = a.s.Wait(ctx, st.p)
			var re *chain.ReorgError
			if errors.As(err, &re) {
				a.log.Warn("ethanchor: anchoring transaction reorged out; waiting for it again", "treeSize", req.TreeSize, "tx", re.TxHash, "block", re.BlockNumber)
				continue
			}
			break
		}
		a.mu.Lock()
		st.driving, st.at = false, time.Now()
		a.mu.Unlock()
		if a.ctx.Err() != nil {
			return // closing: not an outcome
		}
		ref := anchor.TxRef{Hash: anchor.Hash(st.p.Hash()), Nonce: st.p.Nonce()}
		if r != nil {
			ref.Hash = anchor.Hash(r.TxHash)
		}
		switch {
		case err == nil:
		case errors.Is(err, chain.ErrReverted):
			err = fmt.Errorf("%w: %s", anchor.ErrReverted, a.revertReason(r, req))
		}
		if req.Done != nil {
			req.Done(ref, err)
		}
	}()
}

// revertReason re-runs a reverted anchor on the state before its block to
// name the contract's custom error.
func (a *Anchorer) revertReason(r *types.Receipt, req anchor.AnchorRequest) string {
	if r == nil || r.BlockNumber == nil || r.BlockNumber.Sign() == 0 {
		return "unknown reason"
	}
	ctx, cancel := context.WithTimeout(a.ctx, 10*time.Second)
	defer cancel()
	proof := make([][32]byte, len(req.Proof))
	for i, h := range req.Proof {
		proof[i] = h
	}
	_, err := a.c.CallContract(ctx, ethereum.CallMsg{From: a.s.Address(), To: &a.cfg.Contract, Data: abiAnchor.PackAnchor(req.TreeSize, req.Root, proof)}, new(big.Int).Sub(r.BlockNumber, common.Big1))
	if data, ok := bindings.RevertData(err); ok {
		if e, uerr := abiAnchor.UnpackError(data); uerr == nil {
			return describeRevert(e)
		}
	}
	if err != nil {
		return err.Error()
	}
	return "out of gas, or the state changed within the block"
}

// Anchorings implements anchor.Anchorer with one eth_getLogs.
func (a *Anchorer) Anchorings(ctx context.Context, from, to uint64) ([]anchor.Anchoring, error) {
	return a.anchorings(ctx, max(from, a.cfg.FromBlock), to, nil)
}

func (a *Anchorer) anchorings(ctx context.Context, from, to uint64, size *uint64) ([]anchor.Anchoring, error) {
	if to < from {
		return nil, nil
	}
	topics := [][]common.Hash{{anchoredTopic}}
	if size != nil {
		topics = append(topics, []common.Hash{common.BigToHash(new(big.Int).SetUint64(*size))})
	}
	logs, err := a.c.FilterLogs(ctx, ethereum.FilterQuery{
		FromBlock: new(big.Int).SetUint64(from), ToBlock: new(big.Int).SetUint64(to),
		Addresses: []common.Address{a.cfg.Contract}, Topics: topics,
	})
	if err != nil {
		return nil, fmt.Errorf("eth_getLogs: %w", err)
	}
	out := make([]anchor.Anchoring, 0, len(logs))
	for i := range logs {
		lg := &logs[i]
		if lg.Removed {
			continue
		}
		ev, err := abiAnchor.UnpackAnchoredEvent(lg)
		if err != nil {
			return nil, fmt.Errorf("decoding Anchored: %w", err)
		}
		out = append(out, anchor.Anchoring{
			TreeSize: ev.TreeSize, Root: anchor.Hash(ev.Root),
			TxHash: anchor.Hash(lg.TxHash), BlockNumber: lg.BlockNumber, BlockHash: anchor.Hash(lg.BlockHash),
		})
	}
	return out, nil
}

// Find implements anchor.Anchorer: rootAt, then the Anchored event with
// that tree size.
func (a *Anchorer) Find(ctx context.Context, size uint64) (anchor.Anchoring, bool, error) {
	head, err := a.c.BlockNumber(ctx)
	if err != nil {
		return anchor.Anchoring{}, false, err
	}
	root, ok, err := rootAt(ctx, a.c, a.cfg.Contract, size, new(big.Int).SetUint64(head))
	if err != nil || !ok {
		return anchor.Anchoring{}, false, err
	}
	list, err := a.anchorings(ctx, a.cfg.FromBlock, head, &size)
	if err != nil {
		return anchor.Anchoring{}, false, err
	}
	for i := len(list) - 1; i >= 0; i-- {
		if list[i].Root == root {
			return list[i], true, nil
		}
	}
	// Anchored, but the node has no log for it (pruned history).
	return anchor.Anchoring{TreeSize: size, Root: root}, true, nil
}

// RootAt implements anchor.Anchorer.
func (a *Anchorer) RootAt(ctx context.Context, size uint64) (anchor.Hash, bool, error) {
	return rootAt(ctx, a.c, a.cfg.Contract, size, nil)
}

// describeRevert names an AuditAnchor custom error with its arguments.
func describeRevert(e any) string {
	switch e := e.(type) {
	case *bindings.AuditAnchorPreviousRootMismatch:
		return fmt.Sprintf("PreviousRootMismatch(computed %s): the proof does not rebuild the contract's latest root", common.Hash(e.Computed).Hex())
	case *bindings.AuditAnchorRootMismatch:
		return fmt.Sprintf("RootMismatch(computed %s): the proof does not lead to the submitted root", common.Hash(e.Computed).Hex())
	case *bindings.AuditAnchorTreeSizeNotIncreasing:
		return fmt.Sprintf("TreeSizeNotIncreasing(latest %d, submitted %d)", e.LatestTreeSize, e.TreeSize)
	case *bindings.AuditAnchorProofLengthMismatch:
		return fmt.Sprintf("ProofLengthMismatch(expected %s, actual %s)", e.Expected, e.Actual)
	case *bindings.AuditAnchorNotAnchorer:
		return fmt.Sprintf("NotAnchorer(%s)", e.Caller.Hex())
	case *bindings.AuditAnchorZeroRoot:
		return "ZeroRoot"
	}
	return strings.TrimPrefix(fmt.Sprintf("%T", e), "*bindings.AuditAnchor")
}
