package chain

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"strings"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/params"
)

// Errors of sending and waiting. Wrapped with %w: test with errors.Is.
var (
	// ErrReverted: the transaction was mined and failed (receipt status 0).
	// The receipt is returned with it.
	ErrReverted = errors.New("chain: transaction reverted")
	// ErrWouldRevert: gas estimation failed because the call reverts on the
	// latest state. Nothing was sent. (Pass TxRequest.Gas to send anyway.)
	ErrWouldRevert = errors.New("chain: transaction would revert")
	// ErrReorg: a receipt seen earlier left the canonical chain. See
	// ReorgError.
	ErrReorg = errors.New("chain: transaction's block left the canonical chain")
	// ErrNonceTaken: the nonce of the transaction was used by a transaction
	// this Sender did not send (another process with the same key).
	ErrNonceTaken = errors.New("chain: nonce taken by another transaction")
)

// ReorgError reports that the block a transaction was seen in is no longer
// canonical. The transaction itself may be mined again (it usually
// returns to the pool); wait again to find out.
type ReorgError struct {
	TxHash      common.Hash
	BlockNumber uint64
	BlockHash   common.Hash // the block that left the chain
}

func (e *ReorgError) Error() string {
	return fmt.Sprintf("chain: transaction %s: block %d (%s) left the canonical chain", e.TxHash.Hex(), e.BlockNumber, e.BlockHash.Hex())
}

// Unwrap makes errors.Is(err, ErrReorg) true.
func (e *ReorgError) Unwrap() error { return ErrReorg }

// SenderOptions tunes a Sender. Zero values select the defaults.
type SenderOptions struct {
	// Confirmations is how many blocks must contain or follow a
	// transaction's block before Wait returns (default 1: mined).
	Confirmations uint64
	// PollInterval is how often Wait polls for receipts (default 50ms).
	// With a subscription-capable client Wait also wakes on every new head.
	PollInterval time.Duration
	// StuckAfter is how long Wait lets a transaction sit unmined before it
	// replaces it with the same nonce and higher fees (default 20s).
	StuckAfter time.Duration
	// FeeBumpPercent raises both fee caps on each replacement (default 20;
	// go-ethereum pools require at least 10).
	FeeBumpPercent int64
	// MaxFeePerGas caps the fee cap (wei per gas); nil: no cap. Bumping
	// stops at the cap.
	MaxFeePerGas *big.Int
	// MinTipCap is the lowest priority fee offered (default 1 wei; on a
	// public network the node's eth_maxPriorityFeePerGas is used when
	// higher).
	MinTipCap *big.Int
	// GasMarginPercent is added to estimated gas limits (default 20;
	// negative: none). Explicit TxRequest.Gas is used as given.
	GasMarginPercent int64
	// Retries is the number of attempts of each RPC call that fails with a
	// transient error (default 5).
	Retries int
	// Logger receives replacements, resyncs and reorgs (default: slog.Default()).
	Logger *slog.Logger
}

func (o SenderOptions) withDefaults() SenderOptions {
	if o.Confirmations == 0 {
		o.Confirmations = 1
	}
	if o.PollInterval <= 0 {
		o.PollInterval = 50 * time.Millisecond
	}
	if o.StuckAfter <= 0 {
		o.StuckAfter = 20 * time.Second
	}
	if o.FeeBumpPercent < 10 {
		o.FeeBumpPercent = 20
	}
	if o.MinTipCap == nil {
		o.MinTipCap = big.NewInt(1)
	}
	if o.GasMarginPercent == 0 {
		o.GasMarginPercent = 20
	} else if o.GasMarginPercent < 0 {
		o.GasMarginPercent = 0
	}
	if o.Retries <= 0 {
		o.Retries = 5
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// TxRequest describes a transaction for Sender.Send.
type TxRequest struct {
	To    *common.Address // nil: contract creation, Data is the init code
	Value *big.Int        // nil: 0
	Data  []byte
	// Gas is the gas limit. 0: estimate against the latest block and add
	// GasMarginPercent. Set it when the estimate cannot be right, e.g. a
	// transaction that depends on another one queued in the same block
	// (estimateGas would see it revert).
	Gas uint64
	// BeforeSend, if set, is called with the signed transaction (its nonce
	// and hash fixed) just before it is first broadcast; an error aborts
	// the send and the nonce is reused. It runs under the Sender's nonce
	// lock: keep it short.
	BeforeSend func(*types.Transaction) error
	// Note, if set and the Sender has a Gate, is called with the signed
	// transaction and its result handed to Gate.Admit, which records it
	// with the transaction in one durable step (chain/outbox: store
	// operations committed with it, such as the request's new state).
	Note func(*types.Transaction) any
}

// Gate makes a Sender the only one sending from its key while several
// processes share the key (gateway replicas): chain/outbox admits only
// the holder of a store lease and records every transaction, fenced by
// the lease, before it is broadcast. Then no two processes ever sign
// different transactions with one nonce: the next holder continues after
// every nonce recorded, and broadcasts the recorded transactions the
// chain does not have yet again (the same signed bytes, so the same
// transactions, not rivals).
type Gate interface {
	// Epoch changes whenever the right to send may have moved to another
	// process and back (a lease token; 0 while not held): the Sender
	// then resumes before its next transaction.
	Epoch() uint64
	// Resume returns the transactions recorded under the gate with a
	// nonce at or past chainNonce (the node's pending nonce), oldest
	// first: the Sender broadcasts them again and continues after the
	// last.
	Resume(ctx context.Context, chainNonce uint64) ([]*types.Transaction, error)
	// Admit records tx (with note, TxRequest.Note's result) durably before
	// its broadcast, or refuses it: then nothing is broadcast. Fee-bumped
	// replacements are admitted too (note nil).
	Admit(ctx context.Context, tx *types.Transaction, note any) error
}

// Sender signs and sends transactions from one key, keeping the nonce
// locally so many transactions can be in flight at once, and waits for
// their receipts. It is safe for concurrent use. One Sender per key and
// process: two Senders sharing a key fight over nonces (they recover, but
// transactions fail with ErrNonceTaken), unless a Gate (chain/outbox)
// lets only one of them send at a time.
type Sender struct {
	c       *Client
	key     *ecdsa.PrivateKey
	from    common.Address
	chainID *big.Int
	signer  types.Signer
	opts    SenderOptions
	log     *slog.Logger
	retry   retryPolicy

	mu      sync.Mutex // guards next, nonceOK, gate, epoch; held while broadcasting a new nonce
	next    uint64
	nonceOK bool
	gate    Gate
	epoch   uint64 // the gate's epoch at the last resume
}

// SetGate makes the Sender send only through g (see Gate). Set it before
// the first Send.
func (s *Sender) SetGate(g Gate) {
	s.mu.Lock()
	s.gate, s.nonceOK = g, false
	s.mu.Unlock()
}

// resumeLocked reads the nonce from the node and, with a Gate, broadcasts
// again what the gate recorded past it and continues after that.
func (s *Sender) resumeLocked(ctx context.Context) error {
	n, err := withRetry(ctx, s.retry, func(ctx context.Context) (uint64, error) {
		return s.c.PendingNonceAt(ctx, s.from)
	})
	if err != nil {
		return fmt.Errorf("chain: eth_getTransactionCount: %w", err)
	}
	if s.gate != nil {
		epoch := s.gate.Epoch()
		txs, err := s.gate.Resume(ctx, n)
		if err != nil {
			return fmt.Errorf("chain: resuming the sender: %w", err)
		}
		for _, tx := range txs {
			if tx.Nonce() < n {
				continue
			}
			if err := s.broadcast(ctx, tx); err != nil && !isNonceTooLow(err) && !isReplacementUnderpriced(err) {
				s.log.Warn("chain: broadcasting a recorded transaction again failed", "tx", tx.Hash(), "nonce", tx.Nonce(), "err", err)
			}
			n = max(n, tx.Nonce()+1)
		}
		s.epoch = epoch
	}
	s.next, s.nonceOK = n, true
	return nil
}

// NewSender returns a Sender for key on c.
func NewSender(ctx context.Context, c *Client, key *ecdsa.PrivateKey, opts SenderOptions) (*Sender, error) {
	opts = opts.withDefaults()
	s := &Sender{
		c:     c,
		key:   key,
		from:  crypto.PubkeyToAddress(key.PublicKey),
		opts:  opts,
		retry: retryPolicy{attempts: opts.Retries, base: defaultRetry.base, max: defaultRetry.max},
	}
	id, err := withRetry(ctx, s.retry, c.ChainID)
	if err != nil {
		return nil, fmt.Errorf("chain: eth_chainId: %w", err)
	}
	s.chainID = id
	s.signer = types.LatestSignerForChainID(id)
	s.log = opts.Logger.With("from", s.from.Hex())
	return s, nil
}

// Address returns the sending account.
func (s *Sender) Address() common.Address { return s.from }

// ChainID returns the chain id the Sender signs for.
func (s *Sender) ChainID() *big.Int { return new(big.Int).Set(s.chainID) }

// Client returns the client the Sender uses.
func (s *Sender) Client() *Client { return s.c }

// Pending is a sent transaction: its nonce and every signed version
// broadcast for it (fee-bumped replacements share the nonce).
type Pending struct {
	nonce uint64
	to    *common.Address
	value *big.Int
	data  []byte
	gas   uint64

	mu     sync.Mutex
	txs    []*types.Transaction // oldest first
	sentAt time.Time            // last broadcast
}

// Nonce returns the transaction's nonce.
func (p *Pending) Nonce() uint64 { return p.nonce }

// Tx returns the latest signed version.
func (p *Pending) Tx() *types.Transaction {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.txs[len(p.txs)-1]
}

// Hash returns the hash of the latest signed version.
func (p *Pending) Hash() common.Hash { return p.Tx().Hash() }

// Hashes returns the hashes of all versions, oldest first; any one of them
// may be the one mined.
func (p *Pending) Hashes() []common.Hash {
	p.mu.Lock()
	defer p.mu.Unlock()
	hs := make([]common.Hash, len(p.txs))
	for i, tx := range p.txs {
		hs[i] = tx.Hash()
	}
	return hs
}

// Resume reads the nonce from the node again now and, with a Gate,
// broadcasts again the transactions recorded under it that the node does
// not have: for a process that just became the one sending (the next
// Send would do it too, but nothing waits for that).
func (s *Sender) Resume(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.resumeLocked(ctx)
}

// Adopt returns a Pending for a transaction signed by this Sender's key
// and sent before, perhaps by another process (the previous holder of the
// right to send): Wait then follows it and bumps its fees like one of its
// own.
func (s *Sender) Adopt(tx *types.Transaction) *Pending {
	return &Pending{nonce: tx.Nonce(), to: tx.To(), value: tx.Value(), data: tx.Data(), gas: tx.Gas(),
		txs: []*types.Transaction{tx}, sentAt: time.Now()}
}

// Transact sends a transaction and waits for it (Send, then Wait). After a
// reorg it rebroadcasts the transaction and waits again.
func (s *Sender) Transact(ctx context.Context, req TxRequest) (*types.Receipt, error) {
	p, err := s.Send(ctx, req)
	if err != nil {
		return nil, err
	}
	for reorgs := 0; ; reorgs++ {
		r, err := s.Wait(ctx, p)
		var re *ReorgError
		if !errors.As(err, &re) || reorgs >= 8 {
			return r, err
		}
		s.log.Warn("chain: transaction reorged out, waiting again", "tx", re.TxHash, "block", re.BlockNumber)
		if err := s.broadcast(ctx, p.Tx()); err != nil && !isNonceTooLow(err) {
			s.log.Warn("chain: rebroadcast after reorg failed", "tx", re.TxHash, "err", err)
		}
	}
}

// Send signs and broadcasts a transaction and returns without waiting for
// it to be mined. Transactions sent one after another get consecutive
// nonces and are mined in order.
//
// If the outcome of the broadcast is unknown (the node stopped answering)
// the error says so; the transaction may still be mined, and the next Send
// re-reads the nonce from the node.
func (s *Sender) Send(ctx context.Context, req TxRequest) (*Pending, error) {
	gas := req.Gas
	if gas == 0 {
		est, err := withRetry(ctx, s.retry, func(ctx context.Context) (uint64, error) {
			return s.c.EstimateGas(ctx, ethereum.CallMsg{From: s.from, To: req.To, Value: req.Value, Data: req.Data})
		})
		if err != nil {
			if IsTransient(err) {
				return nil, fmt.Errorf("chain: eth_estimateGas: %w", err)
			}
			return nil, fmt.Errorf("%w: %w", ErrWouldRevert, err)
		}
		gas = est + est*uint64(s.opts.GasMarginPercent)/100
		if gas > params.MaxTxGas && est <= params.MaxTxGas {
			gas = params.MaxTxGas // EIP-7825 cap (Osaka)
		}
	}
	tip, feeCap, legacy, err := s.suggestFees(ctx)
	if err != nil {
		return nil, err
	}
	p := &Pending{to: req.To, value: req.Value, data: req.Data, gas: gas}

	s.mu.Lock()
	defer s.mu.Unlock()
	for attempt := 0; ; attempt++ {
		if s.gate != nil && s.gate.Epoch() != s.epoch {
			s.nonceOK = false
		}
		if !s.nonceOK {
			if err := s.resumeLocked(ctx); err != nil {
				return nil, err
			}
		}
		p.nonce = s.next
		tx, err := s.sign(p, tip, feeCap, legacy)
		if err != nil {
			return nil, err
		}
		if req.BeforeSend != nil {
			if err := req.BeforeSend(tx); err != nil {
				return nil, err
			}
		}
		if s.gate != nil {
			var note any
			if req.Note != nil {
				note = req.Note(tx)
			}
			if err := s.gate.Admit(ctx, tx, note); err != nil {
				// Unknown whether the record was written (a lost answer):
				// read the nonce again rather than guess.
				s.nonceOK = false
				return nil, fmt.Errorf("chain: not sent: %w", err)
			}
		}
		err = s.broadcast(ctx, tx)
		switch {
		case err == nil:
			p.txs, p.sentAt = []*types.Transaction{tx}, time.Now()
			s.next++
			return p, nil
		case (isNonceTooLow(err) || isReplacementUnderpriced(err)) && attempt < 3:
			// Someone else used the nonce (another process with this key, or
			// transactions from before a restart): resync and re-sign.
			s.log.Warn("chain: nonce conflict, resyncing", "nonce", p.nonce, "err", err)
			s.nonceOK = false
			continue
		case IsTransient(err) || ctx.Err() != nil:
			s.nonceOK = false
			return nil, fmt.Errorf("chain: sending %s (nonce %d), outcome unknown: %w", tx.Hash().Hex(), p.nonce, err)
		default:
			return nil, fmt.Errorf("chain: sending transaction (nonce %d): %w", p.nonce, err)
		}
	}
}

func (s *Sender) sign(p *Pending, tip, feeCap *big.Int, legacy bool) (*types.Transaction, error) {
	value := p.value
	if value == nil {
		value = new(big.Int)
	}
	var inner types.TxData
	if legacy {
		inner = &types.LegacyTx{Nonce: p.nonce, GasPrice: feeCap, Gas: p.gas, To: p.to, Value: value, Data: p.data}
	} else {
		inner = &types.DynamicFeeTx{ChainID: s.chainID, Nonce: p.nonce, GasTipCap: tip, GasFeeCap: feeCap, Gas: p.gas, To: p.to, Value: value, Data: p.data}
	}
	tx, err := types.SignNewTx(s.key, s.signer, inner)
	if err != nil {
		return nil, fmt.Errorf("chain: signing: %w", err)
	}
	return tx, nil
}

// broadcast sends a signed transaction, retrying transient failures; a
// node that already has it counts as success.
func (s *Sender) broadcast(ctx context.Context, tx *types.Transaction) error {
	_, err := withRetry(ctx, s.retry, func(ctx context.Context) (struct{}, error) {
		return struct{}{}, s.c.SendTransaction(ctx, tx)
	})
	if err != nil && isAlreadyKnown(err) {
		return nil
	}
	return err
}

// suggestFees returns EIP-1559 fees (tip, 2×base fee + tip) or, on a chain
// without base fee, a legacy gas price (in feeCap, legacy true).
func (s *Sender) suggestFees(ctx context.Context) (tip, feeCap *big.Int, legacy bool, err error) {
	head, err := withRetry(ctx, s.retry, func(ctx context.Context) (*types.Header, error) {
		return s.c.HeaderByNumber(ctx, nil)
	})
	if err != nil {
		return nil, nil, false, fmt.Errorf("chain: latest header: %w", err)
	}
	if head.BaseFee == nil {
		price, err := withRetry(ctx, s.retry, s.c.SuggestGasPrice)
		if err != nil {
			return nil, nil, false, fmt.Errorf("chain: eth_gasPrice: %w", err)
		}
		return nil, s.capFee(price), true, nil
	}
	tip, err = withRetry(ctx, s.retry, s.c.SuggestGasTipCap)
	if err != nil {
		return nil, nil, false, fmt.Errorf("chain: eth_maxPriorityFeePerGas: %w", err)
	}
	tip = bigMax(tip, s.opts.MinTipCap)
	feeCap = new(big.Int).Add(new(big.Int).Mul(head.BaseFee, big.NewInt(2)), tip)
	feeCap = s.capFee(feeCap)
	if tip.Cmp(feeCap) > 0 {
		tip = new(big.Int).Set(feeCap)
	}
	return tip, feeCap, false, nil
}

func (s *Sender) capFee(fee *big.Int) *big.Int {
	if s.opts.MaxFeePerGas != nil && fee.Cmp(s.opts.MaxFeePerGas) > 0 {
		return new(big.Int).Set(s.opts.MaxFeePerGas)
	}
	return fee
}

// bump replaces the pending transaction with a copy paying at least
// FeeBumpPercent more (and at least the current suggestion). It returns
// errNonceUsed when the node reports the nonce as used.
func (s *Sender) bump(ctx context.Context, p *Pending) error {
	old := p.Tx()
	tip, feeCap, legacy, err := s.suggestFees(ctx)
	if err != nil {
		return err
	}
	pct := big.NewInt(100 + s.opts.FeeBumpPercent)
	raise := func(v *big.Int) *big.Int { // ceil(v × (100+b) / 100)
		r := new(big.Int).Mul(v, pct)
		r.Add(r, big.NewInt(99))
		return r.Div(r, big.NewInt(100))
	}
	var newTip *big.Int
	if !legacy {
		newTip = bigMax(raise(old.GasTipCap()), tip)
	}
	newCap := bigMax(raise(old.GasFeeCap()), feeCap)
	if legacy {
		newCap = bigMax(raise(old.GasPrice()), feeCap)
	}
	newCap = s.capFee(newCap)
	if newCap.Cmp(raise(old.GasFeeCap())) < 0 {
		p.mu.Lock()
		p.sentAt = time.Now() // at the cap: keep waiting, re-check later
		p.mu.Unlock()
		s.log.Warn("chain: transaction stuck at the fee cap", "tx", old.Hash(), "nonce", p.nonce, "feeCap", newCap)
		return s.broadcast(ctx, old)
	}
	if !legacy && newTip.Cmp(newCap) > 0 {
		newTip = new(big.Int).Set(newCap)
	}
	tx, err := s.sign(p, newTip, newCap, legacy)
	if err != nil {
		return err
	}
	s.mu.Lock()
	g := s.gate
	s.mu.Unlock()
	if g != nil {
		if err := g.Admit(ctx, tx, nil); err != nil {
			// Not ours to send now (another process took over): keep
			// waiting; the holder drives the transaction.
			p.mu.Lock()
			p.sentAt = time.Now()
			p.mu.Unlock()
			s.log.Debug("chain: replacement not admitted", "nonce", p.nonce, "err", err)
			return nil
		}
	}
	err = s.broadcast(ctx, tx)
	switch {
	case err == nil:
		p.mu.Lock()
		p.txs = append(p.txs, tx)
		p.sentAt = time.Now()
		p.mu.Unlock()
		s.log.Info("chain: replaced stuck transaction", "old", old.Hash(), "new", tx.Hash(), "nonce", p.nonce, "tipCap", newTip, "feeCap", newCap)
		return nil
	case isNonceTooLow(err):
		return errNonceUsed
	case isReplacementUnderpriced(err):
		// Some other version (maybe one of ours from a lost broadcast) is
		// priced higher: try again later from the higher price.
		p.mu.Lock()
		p.txs = append(p.txs, tx) // not in the pool, but harmless to look for
		p.sentAt = time.Now()
		p.mu.Unlock()
		return nil
	default:
		return err
	}
}

var errNonceUsed = errors.New("nonce used")

// Wait waits until one version of p is mined with the configured number of
// confirmations and returns its receipt. While p sits unmined for
// StuckAfter, Wait replaces it with higher fees. A reverted transaction
// returns its receipt and an error wrapping ErrReverted. If a receipt it
// saw leaves the canonical chain, Wait returns a *ReorgError; call Wait
// again to keep waiting for p (Transact does this).
func (s *Sender) Wait(ctx context.Context, p *Pending) (*types.Receipt, error) {
	var usedAt time.Time
	return waitMined(ctx, s.c, s.opts, p.Hashes, func() error {
		p.mu.Lock()
		stuck := time.Since(p.sentAt) >= s.opts.StuckAfter
		p.mu.Unlock()
		if !usedAt.IsZero() {
			// The nonce is used; if none of our versions shows up, another
			// transaction took it.
			if time.Since(usedAt) > max(20*s.opts.PollInterval, 3*time.Second) {
				return fmt.Errorf("%w: nonce %d (%s)", ErrNonceTaken, p.nonce, p.Hash().Hex())
			}
			return nil
		}
		if !stuck {
			return nil
		}
		err := s.bump(ctx, p)
		if errors.Is(err, errNonceUsed) {
			usedAt = time.Now()
			return nil
		}
		if err != nil && !IsTransient(err) {
			return err
		}
		if err != nil {
			s.log.Warn("chain: fee bump failed, will retry", "nonce", p.nonce, "err", err)
		}
		return nil
	})
}

// WaitReceipt waits until the transaction hash is mined with confirmations
// blocks (at least 1) and returns its receipt, polling every 50ms and
// waking on new heads when c supports subscriptions. Errors as Sender.Wait.
func WaitReceipt(ctx context.Context, c *Client, hash common.Hash, confirmations uint64) (*types.Receipt, error) {
	o := SenderOptions{Confirmations: confirmations}.withDefaults()
	return waitMined(ctx, c, o, func() []common.Hash { return []common.Hash{hash} }, nil)
}

func waitMined(ctx context.Context, c *Client, o SenderOptions, hashes func() []common.Hash, idle func() error) (*types.Receipt, error) {
	retry := retryPolicy{attempts: o.Retries, base: defaultRetry.base, max: defaultRetry.max}
	var heads chan *types.Header
	if c.SupportsSubscriptions() {
		heads = make(chan *types.Header, 16)
		sub, err := c.SubscribeNewHead(ctx, heads)
		if err == nil {
			defer sub.Unsubscribe()
		} else {
			heads = nil
		}
	}
	tick := time.NewTicker(o.PollInterval)
	defer tick.Stop()

	var seen *types.Receipt // last receipt found
	for {
		r, err := FindReceipt(ctx, c, hashes())
		if err != nil && !IsTransient(err) {
			return nil, err
		}
		if err == nil {
			if seen != nil && (r == nil || r.BlockHash != seen.BlockHash) {
				if gone, err := leftChain(ctx, c, retry, seen); err == nil && gone {
					return nil, &ReorgError{TxHash: seen.TxHash, BlockNumber: seen.BlockNumber.Uint64(), BlockHash: seen.BlockHash}
				}
			}
			if r != nil {
				seen = r
				head, err := withRetry(ctx, retry, c.BlockNumber)
				if err == nil && head+1 >= r.BlockNumber.Uint64()+o.Confirmations {
					gone, err := leftChain(ctx, c, retry, r)
					if err == nil && gone {
						return nil, &ReorgError{TxHash: r.TxHash, BlockNumber: r.BlockNumber.Uint64(), BlockHash: r.BlockHash}
					}
					if err == nil {
						if r.Status != types.ReceiptStatusSuccessful {
							return r, fmt.Errorf("%w: %s in block %d", ErrReverted, r.TxHash.Hex(), r.BlockNumber)
						}
						return r, nil
					}
				}
			} else if idle != nil {
				if err := idle(); err != nil {
					return nil, err
				}
			}
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-tick.C:
		case <-heads:
		}
	}
}

// FindReceipt returns the receipt of the last of hashes (the replacements
// of one transaction, oldest first) that has one, or nil if none has one
// yet. A node still indexing its transactions counts as "none yet".
func FindReceipt(ctx context.Context, c *Client, hashes []common.Hash) (*types.Receipt, error) {
	for i := len(hashes) - 1; i >= 0; i-- {
		r, err := c.TransactionReceipt(ctx, hashes[i])
		switch {
		case err == nil && r != nil:
			return r, nil
		case err == nil, errors.Is(err, ethereum.NotFound), isIndexing(err):
			continue
		default:
			return nil, err
		}
	}
	return nil, nil
}

// leftChain reports whether r's block is no longer the canonical block at
// its height.
func leftChain(ctx context.Context, c *Client, retry retryPolicy, r *types.Receipt) (bool, error) {
	h, err := withRetry(ctx, retry, func(ctx context.Context) (*types.Header, error) {
		return c.HeaderByNumber(ctx, r.BlockNumber)
	})
	if errors.Is(err, ethereum.NotFound) {
		return true, nil // the chain got shorter
	}
	if err != nil {
		return false, err
	}
	return h.Hash() != r.BlockHash, nil
}

func bigMax(a, b *big.Int) *big.Int {
	if a.Cmp(b) >= 0 {
		return new(big.Int).Set(a)
	}
	return new(big.Int).Set(b)
}

// Node answers differ between clients; match the common phrasings.
func errHas(err error, subs ...string) bool {
	if err == nil {
		return false
	}
	msg := strings.ToLower(err.Error())
	for _, s := range subs {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

func isNonceTooLow(err error) bool {
	return errHas(err, "nonce too low", "oldnonce", "nonce is too low")
}

func isAlreadyKnown(err error) bool {
	return errHas(err, "already known", "known transaction", "already imported", "alreadyknown", "already exists")
}

func isReplacementUnderpriced(err error) bool {
	return errHas(err, "replacement transaction underpriced", "replacement underpriced", "replacementnotallowed", "could not replace existing tx")
}

func isIndexing(err error) bool {
	return errHas(err, "indexing is in progress")
}
