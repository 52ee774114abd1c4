package outbox_test

import (
	"context"
	"errors"
	"math/big"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/core/types"

	"github.com/fhirgate/fhirgate/chain"
	"github.com/fhirgate/fhirgate/chain/outbox"
	"github.com/fhirgate/fhirgate/store"
	"github.com/fhirgate/fhirgate/store/pebble"
)

// The holder records a transaction and dies before its broadcast (or the
// node loses it): the next holder broadcasts that very transaction again
// and continues after its nonce, so nothing collides and nothing leaves a
// gap; the dead holder's sender, should it wake up, cannot send.
func TestOutboxTakeover(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dev, err := chain.StartDev(ctx, chain.DevConfig{Manual: true})
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	e, err := pebble.New(ctx, pebble.Config{Dir: t.TempDir(), CacheBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	const ttl = 300 * time.Millisecond
	replica := func(name string) (*chain.Sender, *store.Lease, *outbox.Outbox) {
		s, err := chain.NewSender(ctx, dev.Client(), dev.Key(), chain.SenderOptions{})
		if err != nil {
			t.Fatal(err)
		}
		l := store.NewLease(e, "sender", name, store.LeaseOptions{TTL: ttl})
		o := outbox.New(e, l, s.Address())
		s.SetGate(o)
		return s, l, o
	}
	sa, la, oa := replica("a")
	sb, lb, _ := replica("b")
	if ok, _ := la.Acquire(ctx); !ok {
		t.Fatal("a did not take the lease")
	}
	self := sa.Address()
	// b, not the holder, cannot send.
	if _, err := sb.Send(ctx, chain.TxRequest{To: &self, Gas: 21_000}); !errors.Is(err, store.ErrNotHeld) {
		t.Fatalf("a non-holder's Send = %v, want ErrNotHeld", err)
	}
	p1, err := sa.Send(ctx, chain.TxRequest{To: &self, Gas: 21_000})
	if err != nil {
		t.Fatal(err)
	}
	// a records its next transaction and dies before broadcasting it.
	head, _ := dev.Client().HeaderByNumber(ctx, nil)
	lost, err := types.SignNewTx(dev.Key(), types.LatestSignerForChainID(sa.ChainID()), &types.DynamicFeeTx{
		ChainID: sa.ChainID(), Nonce: p1.Nonce() + 1, GasTipCap: big.NewInt(1), GasFeeCap: new(big.Int).Add(new(big.Int).Mul(head.BaseFee, big.NewInt(2)), big.NewInt(1)),
		Gas: 21_000, To: &self, Value: new(big.Int)})
	if err != nil {
		t.Fatal(err)
	}
	if err := oa.Admit(ctx, lost, nil); err != nil {
		t.Fatal(err)
	}
	// b takes over after watching the lease for a TTL.
	deadline := time.Now().Add(5 * ttl)
	for ok := false; !ok; {
		if ok, _ = lb.Acquire(ctx); !ok {
			if time.Now().After(deadline) {
				t.Fatal("b did not take over")
			}
			time.Sleep(ttl / 5)
		}
	}
	p3, err := sb.Send(ctx, chain.TxRequest{To: &self, Gas: 21_000})
	if err != nil {
		t.Fatal(err)
	}
	if p3.Nonce() != lost.Nonce()+1 {
		t.Fatalf("b sent nonce %d; the recorded transaction holds %d", p3.Nonce(), lost.Nonce())
	}
	// a wakes up: its send is refused by the fence, nothing broadcast.
	if _, err := sa.Send(ctx, chain.TxRequest{To: &self, Gas: 21_000}); err == nil {
		t.Fatal("the stale holder sent a transaction")
	}
	if _, err := dev.Mine(ctx); err != nil {
		t.Fatal(err)
	}
	for _, p := range []*chain.Pending{p1, sb.Adopt(lost), p3} {
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		r, err := sb.Wait(wctx, p)
		cancel()
		if err != nil || r.Status != 1 {
			t.Fatalf("nonce %d: %v, %v", p.Nonce(), r, err)
		}
	}
	n, _ := dev.Client().NonceAt(ctx, self, nil)
	if n != p3.Nonce()+1 {
		t.Fatalf("account nonce %d after %d", n, p3.Nonce())
	}
}
