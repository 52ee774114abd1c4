package chain

import (
	"context"
	"errors"
	"math/big"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
)

// Pipelining: 50 transactions sent back to back without waiting are all
// mined, in nonce order.
func TestSenderPipelining(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  DevConfig
		n    int
		mine bool // mine manually while waiting
	}{
		{"on-demand", DevConfig{}, 50, false},
		{"manual-one-block", DevConfig{Manual: true}, 50, true},
		// More than the pool's feed buffers while blocks are being made
		// (a deadlock between the on-demand sealer and the pool, once).
		{"on-demand-burst", DevConfig{}, 600, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := startDev(t, tc.cfg)
			pipeline(t, d.Client(), tc.n, func(last *Pending) {
				if tc.mine {
					// The pool takes sent transactions in asynchronously:
					// mine only once it holds all of them, or the one
					// block leaves some out and nothing mines them.
					for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
						n, err := d.Client().PendingNonceAt(testCtx(t), DevAccounts()[6].Address)
						if err == nil && n > last.Nonce() {
							break
						}
						if time.Now().After(deadline) {
							t.Fatalf("the pool holds transactions up to nonce %d, want %d (%v)", n, last.Nonce(), err)
						}
					}
					if _, err := d.Mine(testCtx(t)); err != nil {
						t.Fatal(err)
					}
				}
			})
		})
	}
}

func pipeline(t *testing.T, c *Client, n int, afterSend func(last *Pending)) {
	ctx := testCtx(t)
	s := newSender(t, c, DevAccounts()[6], SenderOptions{})
	to := DevAccounts()[7].Address
	start := time.Now()
	var ps []*Pending
	for i := 0; i < n; i++ {
		p, err := s.Send(ctx, TxRequest{To: &to, Value: big.NewInt(int64(i + 1)), Gas: 21_000})
		if err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
		ps = append(ps, p)
	}
	sent := time.Since(start)
	afterSend(ps[len(ps)-1])
	var prev *types.Receipt
	for i, p := range ps {
		if i > 0 && p.Nonce() != ps[i-1].Nonce()+1 {
			t.Errorf("nonce %d after %d", p.Nonce(), ps[i-1].Nonce())
		}
		r, err := s.Wait(ctx, p)
		if err != nil {
			t.Fatalf("wait %d: %v", i, err)
		}
		if prev != nil && (r.BlockNumber.Cmp(prev.BlockNumber) < 0 ||
			r.BlockNumber.Cmp(prev.BlockNumber) == 0 && r.TransactionIndex <= prev.TransactionIndex) {
			t.Errorf("tx %d mined at %v/%d, before tx %d at %v/%d", i, r.BlockNumber, r.TransactionIndex, i-1, prev.BlockNumber, prev.TransactionIndex)
		}
		prev = r
	}
	blocks := prev.BlockNumber.Uint64() - mustReceipt(t, c, ps[0].Hash()).BlockNumber.Uint64() + 1
	t.Logf("%d txs: sent in %v, all mined after %v, in %d block(s)", n, sent.Round(time.Millisecond), time.Since(start).Round(time.Millisecond), blocks)
}

func mustReceipt(t *testing.T, c *Client, h common.Hash) *types.Receipt {
	t.Helper()
	r, err := c.TransactionReceipt(testCtx(t), h)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// Concurrent senders on one Sender share the nonce sequence without gaps.
func TestSenderConcurrent(t *testing.T) {
	d := startDev(t, DevConfig{})
	ctx := testCtx(t)
	s := newSender(t, d.Client(), DevAccounts()[8], SenderOptions{})
	to := DevAccounts()[9].Address
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	nonces := make(chan uint64, 40)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 5; i++ {
				p, err := s.Send(ctx, TxRequest{To: &to, Value: big.NewInt(1)})
				if err != nil {
					errs <- err
					return
				}
				nonces <- p.Nonce()
				if _, err := s.Wait(ctx, p); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	close(nonces)
	for err := range errs {
		t.Error(err)
	}
	seen := map[uint64]bool{}
	for n := range nonces {
		if seen[n] {
			t.Errorf("nonce %d used twice", n)
		}
		seen[n] = true
	}
	for n := uint64(0); n < 40; n++ {
		if !seen[n] {
			t.Errorf("nonce %d missing", n)
		}
	}
}

// A transaction that reverts: estimation refuses it without using a nonce;
// with an explicit gas limit it is mined and reported as reverted.
func TestSenderRevert(t *testing.T) {
	d := startDev(t, DevConfig{})
	ctx := testCtx(t)
	store := loadStore(t)
	s := newSender(t, d.Client(), DevAccounts()[1], SenderOptions{})
	r, err := s.Transact(ctx, TxRequest{Data: append(store.bin, store.ctorArgs(t, 1)...)})
	if err != nil {
		t.Fatal(err)
	}
	addr := r.ContractAddress
	_, err = s.Send(ctx, TxRequest{To: &addr, Data: store.pack(t, "set", big.NewInt(13))})
	if !errors.Is(err, ErrWouldRevert) {
		t.Fatalf("estimate of reverting call: %v", err)
	}
	r, err = s.Transact(ctx, TxRequest{To: &addr, Data: store.pack(t, "set", big.NewInt(13)), Gas: 100_000})
	if !errors.Is(err, ErrReverted) || r == nil || r.Status != types.ReceiptStatusFailed {
		t.Fatalf("explicit gas: receipt %v, err %v", r, err)
	}
	// No nonce gap: the next transaction goes through.
	if _, err := s.Transact(ctx, TxRequest{To: &addr, Data: store.pack(t, "set", big.NewInt(12))}); err != nil {
		t.Fatal(err)
	}
	if v := store.value(t, d.Client(), addr); v != 12 {
		t.Errorf("value %d", v)
	}
}

// Explicit gas limits let dependent transactions share a block: the second
// call's estimate would run against the state before the first.
func TestSenderExplicitGasSameBlock(t *testing.T) {
	d := startDev(t, DevConfig{Manual: true})
	ctx := testCtx(t)
	store := loadStore(t)
	s := newSender(t, d.Client(), DevAccounts()[1], SenderOptions{})
	deploy, err := s.Send(ctx, TxRequest{Data: append(store.bin, store.ctorArgs(t, 1)...), Gas: 500_000})
	if err != nil {
		t.Fatal(err)
	}
	addr := deployAddress(s.Address(), deploy.Nonce())
	// No code at addr yet: an estimate would succeed trivially or be wrong;
	// the explicit limit is what we want.
	set, err := s.Send(ctx, TxRequest{To: &addr, Data: store.pack(t, "set", big.NewInt(99)), Gas: 100_000})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Mine(ctx); err != nil {
		t.Fatal(err)
	}
	r1, err := s.Wait(ctx, deploy)
	if err != nil {
		t.Fatal(err)
	}
	r2, err := s.Wait(ctx, set)
	if err != nil {
		t.Fatal(err)
	}
	if r1.BlockNumber.Cmp(r2.BlockNumber) != 0 {
		t.Errorf("blocks %v and %v", r1.BlockNumber, r2.BlockNumber)
	}
	if v := store.value(t, d.Client(), addr); v != 99 {
		t.Errorf("value %d", v)
	}
}

// A transaction the chain does not mine is replaced with higher fees; the
// replacement is the one mined.
func TestSenderBumpReplace(t *testing.T) {
	d := startDev(t, DevConfig{Manual: true})
	ctx := testCtx(t)
	s := newSender(t, d.Client(), DevAccounts()[3], SenderOptions{StuckAfter: 200 * time.Millisecond, PollInterval: 20 * time.Millisecond})
	to := DevAccounts()[4].Address
	p, err := s.Send(ctx, TxRequest{To: &to, Value: big.NewInt(1)})
	if err != nil {
		t.Fatal(err)
	}
	first := p.Tx()
	type result struct {
		r   *types.Receipt
		err error
	}
	done := make(chan result, 1)
	go func() {
		r, err := s.Wait(ctx, p)
		done <- result{r, err}
	}()
	deadline := time.Now().Add(10 * time.Second)
	for len(p.Hashes()) < 3 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if n := len(p.Hashes()); n < 3 {
		t.Fatalf("%d versions after waiting, want ≥ 3", n)
	}
	// The pool holds only the latest version.
	if _, pending, err := d.Client().TransactionByHash(ctx, first.Hash()); err == nil {
		t.Errorf("first version still known (pending %v)", pending)
	}
	if _, err := d.Mine(ctx); err != nil {
		t.Fatal(err)
	}
	res := <-done
	if res.err != nil {
		t.Fatal(res.err)
	}
	mined, _, err := d.Client().TransactionByHash(ctx, res.r.TxHash)
	if err != nil {
		t.Fatal(err)
	}
	if res.r.TxHash == first.Hash() || mined.Nonce() != first.Nonce() {
		t.Errorf("mined %s nonce %d; first %s nonce %d", res.r.TxHash, mined.Nonce(), first.Hash(), first.Nonce())
	}
	if mined.GasTipCap().Cmp(first.GasTipCap()) <= 0 || mined.GasFeeCap().Cmp(new(big.Int).Div(new(big.Int).Mul(first.GasFeeCap(), big.NewInt(120)), big.NewInt(100))) < 0 {
		t.Errorf("fees not bumped: tip %v→%v cap %v→%v", first.GasTipCap(), mined.GasTipCap(), first.GasFeeCap(), mined.GasFeeCap())
	}
	t.Logf("%d versions; tip %v→%v, fee cap %v→%v", len(p.Hashes()), first.GasTipCap(), mined.GasTipCap(), first.GasFeeCap(), mined.GasFeeCap())
}

// A receipt whose block leaves the canonical chain is reported; waiting
// again finds the transaction in its new block.
func TestSenderReorg(t *testing.T) {
	d := startDev(t, DevConfig{Manual: true})
	ctx := testCtx(t)
	c := d.Client()
	s := newSender(t, c, DevAccounts()[5], SenderOptions{Confirmations: 3, PollInterval: 10 * time.Millisecond})
	if _, err := d.Mine(ctx); err != nil { // so that the fork point is not genesis
		t.Fatal(err)
	}
	to := DevAccounts()[6].Address
	p, err := s.Send(ctx, TxRequest{To: &to, Value: big.NewInt(1)})
	if err != nil {
		t.Fatal(err)
	}
	h, err := d.Mine(ctx)
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		_, err := s.Wait(ctx, p)
		errc <- err
	}()
	time.Sleep(100 * time.Millisecond) // the waiter sees the receipt in h
	if err := d.Rewind(ctx, h.Number.Uint64()-1); err != nil {
		t.Fatal(err)
	}
	var re *ReorgError
	select {
	case err := <-errc:
		if !errors.As(err, &re) || !errors.Is(err, ErrReorg) || re.BlockHash != h.Hash() {
			t.Fatalf("Wait after reorg: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("reorg not reported")
	}
	// The transaction went back to the pool; mine it again.
	go func() {
		r, err := s.Wait(ctx, p)
		if err == nil && r.BlockHash == h.Hash() {
			err = errors.New("receipt from the old block")
		}
		errc <- err
	}()
	for i := 0; i < 3; i++ {
		if _, err := d.Mine(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

// Waiting ends with the context.
func TestWaitReceiptContext(t *testing.T) {
	d := startDev(t, DevConfig{Manual: true})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := WaitReceipt(ctx, d.Client(), common.Hash{1}, 1); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v", err)
	}
}

// Two Senders with one key (e.g. a restarted process while the old one's
// transactions are pending) resync their nonces instead of failing.
func TestSenderNonceResync(t *testing.T) {
	d := startDev(t, DevConfig{Manual: true})
	ctx := testCtx(t)
	acc := DevAccounts()[2]
	to := DevAccounts()[3].Address
	a := newSender(t, d.Client(), acc, SenderOptions{})
	b := newSender(t, d.Client(), acc, SenderOptions{})
	pa, err := a.Send(ctx, TxRequest{To: &to, Value: big.NewInt(1)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Send(ctx, TxRequest{To: &to, Value: big.NewInt(1)}); err != nil {
		t.Fatal(err)
	}
	// b read its nonce lazily: it sees a's pending transactions.
	pb, err := b.Send(ctx, TxRequest{To: &to, Value: big.NewInt(2)})
	if err != nil {
		t.Fatal(err)
	}
	if pb.Nonce() != pa.Nonce()+2 {
		t.Errorf("b nonce %d, a's first %d", pb.Nonce(), pa.Nonce())
	}
	// Now a is behind (its next is pa+2, taken by b): it resyncs.
	pa3, err := a.Send(ctx, TxRequest{To: &to, Value: big.NewInt(1)})
	if err != nil {
		t.Fatal(err)
	}
	if pa3.Nonce() != pa.Nonce()+3 {
		t.Errorf("a resynced to %d, want %d", pa3.Nonce(), pa.Nonce()+3)
	}
	if _, err := d.Mine(ctx); err != nil {
		t.Fatal(err)
	}
	for _, p := range []*Pending{pa, pb, pa3} {
		if _, err := a.Wait(ctx, p); err != nil {
			t.Error(err)
		}
	}
}
