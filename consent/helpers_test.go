package consent

import (
	"context"
	"crypto/ecdsa"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/fhirgate/fhirgate/chain"
	"github.com/fhirgate/fhirgate/contracts/bindings"
	"github.com/fhirgate/fhirgate/contracts/consentsig"
	"github.com/fhirgate/fhirgate/policy"
	"github.com/fhirgate/fhirgate/store"
	"github.com/fhirgate/fhirgate/store/pebble"
)

var regABI = bindings.NewConsentRegistry()

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func testLogger() *slog.Logger {
	if testing.Verbose() && os.Getenv("CONSENT_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	return slog.New(slog.DiscardHandler)
}

// env is a dev chain with a deployed registry and a store engine.
type env struct {
	t        testing.TB
	dev      *chain.DevChain
	c        *chain.Client
	gw       *chain.Sender // the gateway's key (dev account 0)
	registry common.Address
	start    uint64 // deployment block
	dir      string
	eng      store.Engine
	senders  map[common.Address]*chain.Sender
	sent     map[common.Address]uint64 // next nonce after those sent
	mu       sync.Mutex
}

func newEnv(t testing.TB, dc chain.DevConfig) *env {
	t.Helper()
	ctx := testCtx(t)
	dev, err := chain.StartDev(ctx, dc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dev.Close() })
	e := &env{t: t, dev: dev, c: dev.Client(), senders: map[common.Address]*chain.Sender{}, sent: map[common.Address]uint64{}}
	e.gw, err = chain.NewSender(ctx, e.c, dev.Key(), chain.SenderOptions{Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	p, err := e.gw.Send(ctx, chain.TxRequest{Data: common.FromHex(bindings.ConsentRegistryMetaData.Bin), Gas: 3_000_000})
	if err != nil {
		t.Fatal(err)
	}
	if dc.Manual {
		e.mine()
	}
	r, err := e.gw.Wait(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	e.registry, e.start = r.ContractAddress, r.BlockNumber.Uint64()
	e.dir = t.TempDir()
	e.openEngine()
	return e
}

func (e *env) openEngine() {
	e.t.Helper()
	db, err := pebble.New(testCtx(e.t), pebble.Config{Dir: filepath.Join(e.dir, "store"), CacheBytes: 8 << 20})
	if err != nil {
		e.t.Fatal(err)
	}
	first := e.eng == nil
	e.eng = db
	if first {
		e.t.Cleanup(func() { e.eng.Close() })
	}
}

// reopenEngine closes and reopens the store (a gateway restart).
func (e *env) reopenEngine() {
	e.t.Helper()
	if err := e.eng.Close(); err != nil {
		e.t.Fatal(err)
	}
	e.openEngine()
}

// mine seals a block. A block can miss transactions sent just before it
// (seen in CI: the only block of a manual chain left a grant out), so it
// mines again, a few times at most, while a transaction sent through
// sendGrant or sendRevoke is still unmined.
func (e *env) mine() *types.Header {
	e.t.Helper()
	// The senders hand transactions to the node on their own goroutines:
	// wait until the pool has every one sent, or a loaded machine seals a
	// block before the last arrives (a test of two transactions in one
	// block then saw them in two).
	for deadline := time.Now().Add(5 * time.Second); e.unpooled() && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	var h *types.Header
	for i := 0; i < 5; i++ {
		var err error
		if h, err = e.dev.Mine(testCtx(e.t)); err != nil {
			e.t.Fatal(err)
		}
		if !e.unmined() {
			break
		}
	}
	return h
}

// unmined reports whether a transaction sent through sendGrant or
// sendRevoke is not in a block yet.
func (e *env) unmined() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	for addr, next := range e.sent {
		n, err := e.c.NonceAt(testCtx(e.t), addr, nil)
		if err != nil || n < next {
			return true
		}
	}
	return false
}

// unpooled reports whether a transaction sent through sendGrant or
// sendRevoke has not reached the node's pool yet.
func (e *env) unpooled() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	for addr, next := range e.sent {
		n, err := e.c.PendingNonceAt(testCtx(e.t), addr)
		if err != nil || n < next {
			return true
		}
	}
	return false
}

// sentNonce records that nonce was sent from addr.
func (e *env) sentNonce(addr common.Address, nonce uint64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.sent[addr] = max(e.sent[addr], nonce+1)
}

func (e *env) account(i int) chain.Account { return e.dev.Accounts()[i] }

func (e *env) sender(key *ecdsa.PrivateKey) *chain.Sender {
	e.t.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	addr := addrOf(key)
	if s := e.senders[addr]; s != nil {
		return s
	}
	s, err := chain.NewSender(testCtx(e.t), e.c, key, chain.SenderOptions{Logger: testLogger()})
	if err != nil {
		e.t.Fatal(err)
	}
	e.senders[addr] = s
	return s
}

// sendGrant sends grant() from the patient's own wallet (not waiting).
func (e *env) sendGrant(key *ecdsa.PrivateKey, grantee, scope string, expiry uint64) *chain.Pending {
	e.t.Helper()
	to := e.registry
	p, err := e.sender(key).Send(testCtx(e.t), chain.TxRequest{To: &to, Data: regABI.PackGrant(consentsig.Grantee(grantee), consentsig.Scope(scope), expiry), Gas: 120_000})
	if err != nil {
		e.t.Fatal(err)
	}
	e.sentNonce(addrOf(key), p.Nonce())
	return p
}

func (e *env) sendRevoke(key *ecdsa.PrivateKey, grantee, scope string) *chain.Pending {
	e.t.Helper()
	to := e.registry
	p, err := e.sender(key).Send(testCtx(e.t), chain.TxRequest{To: &to, Data: regABI.PackRevoke(consentsig.Grantee(grantee), consentsig.Scope(scope)), Gas: 80_000})
	if err != nil {
		e.t.Fatal(err)
	}
	e.sentNonce(addrOf(key), p.Nonce())
	return p
}

// wait waits for p to be mined (mining a block first on a manual chain).
func (e *env) wait(key *ecdsa.PrivateKey, p *chain.Pending) *types.Receipt {
	e.t.Helper()
	r, err := e.sender(key).Wait(testCtx(e.t), p)
	if err != nil {
		e.t.Fatalf("tx %s: %v", p.Hash().Hex(), err)
	}
	return r
}

func addrOf(k *ecdsa.PrivateKey) common.Address { return crypto.PubkeyToAddress(k.PublicKey) }

// follower is a running Follower over e.
type follower struct {
	*Follower
	consent *policy.Consent
	cancel  context.CancelFunc
	done    chan error

	tmu     sync.Mutex // guards changes, projs, nproj
	changes []Change
	projs   map[string]Projection
	nproj   int
}

func (e *env) follow(mod func(*Config)) *follower {
	e.t.Helper()
	pc, err := policy.NewConsent(time.Now)
	if err != nil {
		e.t.Fatal(err)
	}
	fl := &follower{consent: pc, projs: map[string]Projection{}}
	cfg := Config{
		Client: e.c, Registry: e.registry, StartBlock: e.start, Engine: e.eng, Grants: pc.Grants(),
		PollInterval: 200 * time.Millisecond, Logger: testLogger(),
		OnChange: func(c Change) {
			fl.tmu.Lock()
			fl.changes = append(fl.changes, c)
			fl.tmu.Unlock()
		},
		Project: func(_ context.Context, ps []Projection) error {
			fl.tmu.Lock()
			defer fl.tmu.Unlock()
			for _, p := range ps {
				fl.nproj++
				if p.Body == nil {
					delete(fl.projs, p.ID)
				} else {
					fl.projs[p.ID] = p
				}
			}
			return nil
		},
	}
	if mod != nil {
		mod(&cfg)
	}
	f, err := NewFollower(testCtx(e.t), cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	fl.Follower = f
	ctx, cancel := context.WithCancel(context.Background())
	fl.cancel, fl.done = cancel, make(chan error, 1)
	go func() { fl.done <- f.Run(ctx) }()
	e.t.Cleanup(fl.stop)
	return fl
}

// stop stops Run and waits for it.
func (fl *follower) stop() {
	if fl.cancel == nil {
		return
	}
	fl.cancel()
	<-fl.done
	fl.cancel = nil
}

func (fl *follower) allowed(grantee, patient, typ string, perm policy.Perm) bool {
	return fl.consent.Allowed(grantee, patient, typ, perm)
}

func (fl *follower) changeLog() []Change {
	fl.tmu.Lock()
	defer fl.tmu.Unlock()
	return append([]Change(nil), fl.changes...)
}

// caughtUpTo waits until the follower has applied block n.
func (fl *follower) caughtUpTo(t testing.TB, n uint64) {
	t.Helper()
	eventually(t, 20*time.Second, func() bool { return fl.Status().Block >= n }, "follower at block %d", n)
}

func eventually(t testing.TB, d time.Duration, cond func() bool, what string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for "+what, args...)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func wallet(a common.Address) string { return CAIP10(chain.DevChainID, a) }

func u64(n int64) *big.Int { return big.NewInt(n) }

func regDeployCode() []byte { return common.FromHex(bindings.ConsentRegistryMetaData.Bin) }
