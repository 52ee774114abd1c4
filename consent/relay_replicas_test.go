package consent

import (
	"context"
	"crypto/ecdsa"
	"fmt"
	"math/big"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/fhirgate/fhirgate/anchor"
	"github.com/fhirgate/fhirgate/anchor/ethanchor"
	"github.com/fhirgate/fhirgate/chain"
	"github.com/fhirgate/fhirgate/chain/outbox"
	"github.com/fhirgate/fhirgate/contracts/bindings"
	"github.com/fhirgate/fhirgate/contracts/consentsig"
	"github.com/fhirgate/fhirgate/internal/enginetest"
	"github.com/fhirgate/fhirgate/store"
)

// gwReplica is one gateway replica's sending side over the shared store:
// its own Sender of the gateway's key, gated by the shared "sender" lease
// through the outbox, its Relay, and a stand-in for its anchor Log that
// sends a transaction every few milliseconds while it holds the lease.
type gwReplica struct {
	name  string
	s     *chain.Sender
	lease *store.Lease
	relay *Relay

	stopKeep, stopTx context.CancelFunc
	keepDone, txDone chan struct{}

	mu   sync.Mutex
	sent []*chain.Pending // the stand-in anchorer's transactions

	// With anchorTo: the replica's real anchor Log (ethanchor on the
	// AuditAnchor), under the same lease.
	alog       *anchor.Log
	stopAnchor context.CancelFunc
	anchorDone chan struct{}
}

const replicaLeaseTTL = time.Second

func startGwReplica(t *testing.T, e *env, eng store.Engine, fl *follower, name string, anchorTo *chain.Deployment) *gwReplica {
	t.Helper()
	ctx := testCtx(t)
	s, err := chain.NewSender(ctx, e.c, e.dev.Key(), chain.SenderOptions{Logger: testLogger().With("replica", name)})
	if err != nil {
		t.Fatal(err)
	}
	r := &gwReplica{name: name, s: s, lease: store.NewLease(eng, "sender", name, store.LeaseOptions{TTL: replicaLeaseTTL})}
	s.SetGate(outbox.New(eng, r.lease, s.Address()))
	r.relay, err = NewRelay(RelayConfig{Sender: s, Registry: e.registry, Engine: eng, Lease: r.lease, KnownGrantee: fl.KnowsGrantee,
		PollInterval: 50 * time.Millisecond, AnswerWait: 5 * time.Second, Logger: testLogger().With("replica", name)})
	if err != nil {
		t.Fatal(err)
	}
	r.anchorDone = make(chan struct{})
	r.stopAnchor = func() {}
	if anchorTo != nil {
		anc, err := ethanchor.New(ctx, ethanchor.Config{Sender: s, Contract: anchorTo.Address, FromBlock: anchorTo.Block, Logger: testLogger()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { anc.Close() })
		r.alog, err = anchor.Open(ctx, anchor.Config{Store: store.New(eng, store.Options{}), Anchorer: anc, Lease: r.lease,
			Interval: 150 * time.Millisecond, PollInterval: 20 * time.Millisecond, ChainPollInterval: 100 * time.Millisecond, Logger: testLogger().With("replica", name)})
		if err != nil {
			t.Fatal(err)
		}
		actx, stop := context.WithCancel(context.Background())
		r.stopAnchor = stop
		go func() { defer close(r.anchorDone); r.alog.Run(actx) }()
	} else {
		close(r.anchorDone)
	}
	kctx, stopKeep := context.WithCancel(context.Background())
	tctx, stopTx := context.WithCancel(context.Background())
	r.stopKeep, r.stopTx = stopKeep, stopTx
	r.keepDone, r.txDone = make(chan struct{}), make(chan struct{})
	go func() { // renews, and never releases: a crash
		defer close(r.keepDone)
		for {
			r.lease.Acquire(kctx)
			select {
			case <-kctx.Done():
				return
			case <-time.After(replicaLeaseTTL / 5):
			}
		}
	}()
	go func() {
		defer close(r.txDone)
		self := s.Address()
		for {
			select {
			case <-tctx.Done():
				return
			case <-time.After(40 * time.Millisecond):
			}
			if anchorTo != nil || !r.lease.Held() {
				continue // the real anchor Log sends
			}
			p, err := s.Send(tctx, chain.TxRequest{To: &self, Gas: 21_000})
			if err != nil {
				continue // not the holder any more, or closing
			}
			r.mu.Lock()
			r.sent = append(r.sent, p)
			r.mu.Unlock()
		}
	}()
	t.Cleanup(r.kill)
	return r
}

// kill stops the replica as a crash would: its lease is not released.
func (r *gwReplica) kill() {
	r.stopKeep()
	<-r.keepDone
	r.stopTx()
	<-r.txDone
	r.stopAnchor()
	<-r.anchorDone
	r.relay.Close()
}

func (r *gwReplica) sentTxs() []*chain.Pending {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*chain.Pending(nil), r.sent...)
}

type relayPatient struct {
	key  *ecdsa.PrivateKey
	addr common.Address
	next int64
}

func (r *gwReplica) grant(t *testing.T, p *relayPatient, scope string) (Accepted, error) {
	t.Helper()
	g := consentsig.Grant{Patient: p.addr, Grantee: consentsig.Grantee("Practitioner/rep-doc"), Scope: consentsig.Scope(scope),
		Expiry: forever, Nonce: big.NewInt(p.next), Deadline: big.NewInt(time.Now().Unix() + 600)}
	td := g.TypedData(r.relay.Domain())
	s, err := DecodeRelayRequest(request(t, td, sign(t, p.key, td)))
	if err != nil {
		t.Fatal(err)
	}
	acc, err := r.relay.Submit(testCtx(t), s)
	if err == nil {
		p.next++
	}
	return acc, err
}

// Two replicas over one store and one chain, sending from one key: the
// relay answers every request on either replica; only the lease holder
// sends, so the anchorer's and the relay's transactions of both replicas
// never share a nonce, and when the holder dies the other replica takes
// over, sends what was queued, follows what the dead one sent, and
// everything is mined.
func TestRelayTwoReplicasOneSender(t *testing.T) {
	for _, be := range enginetest.Backends(t) {
		t.Run(be.Name, func(t *testing.T) { testRelayTwoReplicas(t, func() store.Engine { return be.Open(t) }, false) })
	}
}

// The same with the replicas' real anchor Logs (ethanchor on an
// AuditAnchor) sending checkpoints from the gateway's key alongside the
// relay, while resources with leaves are written all along: every leaf
// is anchored, by a, then by b.
func TestRelayAndAnchorTwoReplicas(t *testing.T) {
	for _, be := range enginetest.Backends(t) {
		t.Run(be.Name, func(t *testing.T) { testRelayTwoReplicas(t, func() store.Engine { return be.Open(t) }, true) })
	}
}

// testRelayTwoReplicas runs on a backend whose open gives every replica
// its own handle (the follower, which only names the known grantees, keeps
// its own Pebble store).
func testRelayTwoReplicas(t *testing.T, open func() store.Engine, anchoring bool) {
	e := newEnv(t, chain.DevConfig{Manual: true})
	fl := e.follow(nil)
	ctx := testCtx(t)
	var dep *chain.Deployment
	if anchoring {
		p, err := e.gw.Send(ctx, chain.TxRequest{Data: append(common.FromHex(bindings.AuditAnchorMetaData.Bin), bindings.NewAuditAnchor().PackConstructor(e.gw.Address())...), Gas: 3_000_000})
		if err != nil {
			t.Fatal(err)
		}
		e.mine()
		rc, err := e.gw.Wait(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		dep = &chain.Deployment{Address: rc.ContractAddress, Block: rc.BlockNumber.Uint64()}
	}
	startNonce, err := e.c.PendingNonceAt(ctx, e.gw.Address())
	if err != nil {
		t.Fatal(err)
	}
	startBlock, err := e.c.BlockNumber(ctx)
	if err != nil {
		t.Fatal(err)
	}
	a := startGwReplica(t, e, open(), fl, "a", dep)
	eventually(t, 5*time.Second, a.lease.Held, "a holds the sending lease")
	b := startGwReplica(t, e, open(), fl, "b", dep)
	// Resources with leaves, written all along (with anchoring).
	wst := store.New(open(), store.Options{})
	wctx, stopW := context.WithCancel(ctx)
	wdone := make(chan struct{})
	go func() {
		defer close(wdone)
		for i := 0; anchoring && wctx.Err() == nil; i++ {
			id := fmt.Sprintf("w%d", i)
			v := store.Version{Type: "Basic", ID: id, VID: 1, LastUpdated: time.Now().UTC().Truncate(time.Microsecond), Method: store.MethodCreate,
				Body: fmt.Appendf(nil, `{"id":%q,"resourceType":"Basic"}`, id)}
			if err := wst.Commit(wctx, []store.Write{{New: v, Leaf: anchor.NewLeaf("Basic", id, 1, v.Body).Data()}}); err != nil && wctx.Err() == nil {
				t.Error(err)
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	defer func() { stopW(); <-wdone }()
	fl.AddGrantees(ctx, "Practitioner/rep-doc")
	var patients []*relayPatient
	for i := range 4 {
		k, _ := crypto.GenerateKey()
		p := &relayPatient{key: k, addr: crypto.PubkeyToAddress(k.PublicKey)}
		fl.SetPatient(ctx, wallet(p.addr), fmt.Sprintf("Patient/rep-%d", i))
		patients = append(patients, p)
	}

	// Nothing mined yet. A request accepted on a is known on b, and b's
	// prepare counts it.
	p0 := patients[0]
	acc, err := a.grant(t, p0, "Observation.rs")
	if err != nil || acc.State != statePending || acc.TxHash == (common.Hash{}) {
		t.Fatalf("grant on a: %+v, %v", acc, err)
	}
	for _, id := range []common.Hash{acc.TxHash, acc.RequestID} {
		st, err := b.relay.Status(ctx, id)
		if err != nil || st.State != statePending || st.TxHash != acc.TxHash || st.RequestID != acc.RequestID {
			t.Fatalf("b's status of %s: %+v, %v", id.Hex(), st, err)
		}
	}
	td, err := b.relay.Prepare(ctx, PrepareRequest{PrimaryType: "Grant", Patient: p0.addr.Hex(), Grantee: "Practitioner/rep-doc", Scope: "Condition.rs"})
	if err != nil || td.Message["nonce"] != "1" {
		t.Fatalf("b's prepare: nonce %v, %v; want 1", td.Message["nonce"], err)
	}
	// The same nonce on b: refused, though a accepted it.
	p0.next--
	if _, err := b.grant(t, p0, "Observation.rs"); !isRefusal(err, CodeNonce) {
		t.Fatalf("the same nonce again on b: %v", err)
	}
	p0.next++
	// b accepts, a (the holder) sends, b answers with the hash.
	took := time.Now()
	acc2, err := b.grant(t, p0, "Condition.rs")
	t.Logf("a request accepted on the standby answered with its hash after %s (the sender polls every 50 ms)", time.Since(took).Round(time.Millisecond))
	if err != nil || acc2.State != statePending {
		t.Fatalf("grant on b: %+v, %v", acc2, err)
	}
	if st, err := a.relay.Status(ctx, acc2.TxHash); err != nil || st.State != statePending {
		t.Fatalf("a's status of b's request: %+v, %v", st, err)
	}
	// MaxPending holds across replicas: 4 in flight at most.
	early := []Accepted{acc, acc2}
	for _, sc := range []string{"Encounter.rs", "Procedure.rs"} {
		acc, err := a.grant(t, p0, sc)
		if err != nil {
			t.Fatal(err)
		}
		early = append(early, acc)
	}
	if _, err := b.grant(t, p0, "Immunization.rs"); !isRefusal(err, CodeBusy) {
		t.Fatalf("a fifth in flight on b: %v", err)
	}

	// Mine from now on, while both replicas' anchorers send and relays
	// arrive on both.
	mctx, stopMiner := context.WithCancel(ctx)
	minerDone := make(chan struct{})
	go func() {
		defer close(minerDone)
		for mctx.Err() == nil {
			e.dev.Mine(mctx)
			time.Sleep(100 * time.Millisecond)
		}
	}()
	defer func() { stopMiner(); <-minerDone }()

	// Every transaction sent by either replica is mined, successful, and
	// alone on its nonce; the account's nonces have no gap.
	byNonce := map[uint64]common.Hash{}
	note := func(h common.Hash) {
		rc, err := e.c.TransactionReceipt(ctx, h)
		if err != nil || rc.Status != 1 {
			t.Fatalf("transaction %s: receipt %v, %v", h.Hex(), rc, err)
		}
		tx, _, err := e.c.TransactionByHash(ctx, h)
		if err != nil {
			t.Fatal(err)
		}
		if prev, ok := byNonce[tx.Nonce()]; ok && prev != h {
			t.Fatalf("nonce %d used by %s and %s", tx.Nonce(), prev.Hex(), h.Hex())
		}
		byNonce[tx.Nonce()] = h
	}
	var (
		accepted    []Accepted
		checkpoints int
	)
	submitRound := func(rs ...*gwReplica) {
		for i, p := range patients[1:] {
			r := rs[i%len(rs)]
			acc, err := r.grant(t, p, fmt.Sprintf("Observation.r%s", []string{"", "s"}[int(p.next)%2]))
			if err != nil {
				t.Fatalf("grant on %s: %v", r.name, err)
			}
			accepted = append(accepted, acc)
		}
	}
	submitRound(a, b)
	time.Sleep(300 * time.Millisecond)
	submitRound(b, a)

	if anchoring {
		eventually(t, 60*time.Second, func() bool { return a.alog.Status().Anchored > 0 }, "a anchors a checkpoint")
		if b.alog.IsAnchorer() || b.alog.Health() != nil || !b.alog.Status().Standby {
			t.Fatalf("b while a anchors: anchorer %v, health %v, status %+v", b.alog.IsAnchorer(), b.alog.Health(), b.alog.Status())
		}
	}
	// a dies with transactions in flight; b takes over within seconds.
	died := time.Now()
	a.kill()
	eventually(t, 5*time.Second, b.lease.Held, "b takes the sending lease")
	t.Logf("b took over %s after a died (TTL %s)", time.Since(died).Round(time.Millisecond), replicaLeaseTTL)
	submitRound(b)
	time.Sleep(300 * time.Millisecond)
	b.stopTx()
	<-b.txDone
	if anchoring {
		stopW()
		<-wdone
		size, err := b.alog.Cut(ctx)
		if err != nil {
			t.Fatal(err)
		}
		logSize, _ := wst.LogSize(ctx)
		if size != logSize {
			t.Fatalf("b cut %d of %d leaves", size, logSize)
		}
		eventually(t, 60*time.Second, func() bool { return b.alog.Status().Anchored == logSize }, "every leaf anchored by b")
		cps, err := b.alog.Checkpoints(ctx, anchor.CheckpointQuery{All: true, Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		for _, cp := range cps {
			if !cp.Anchored() {
				t.Errorf("checkpoint %d left %s", cp.TreeSize, cp.State)
			}
			note(common.Hash(cp.TxHash))
		}
		t.Logf("%d leaves in %d checkpoints, anchored by a then b", logSize, len(cps))
		checkpoints = len(cps)
	}

	for _, acc := range append(accepted, early...) {
		eventually(t, 30*time.Second, func() bool {
			st, err := b.relay.Status(ctx, acc.RequestID)
			return err == nil && st.State == stateConfirmed
		}, "relay request %s confirmed", acc.RequestID.Hex())
	}
	var anchors int
	for _, r := range []*gwReplica{a, b} {
		for _, p := range r.sentTxs() {
			anchors++
			var rc common.Hash
			eventually(t, 30*time.Second, func() bool {
				got, err := chain.FindReceipt(ctx, e.c, p.Hashes())
				if err == nil && got != nil {
					rc = got.TxHash
				}
				return rc != (common.Hash{})
			}, "%s's transaction nonce %d mined", r.name, p.Nonce())
			note(rc)
		}
	}
	relays := 0
	for _, acc := range append(accepted, early...) {
		st, _ := b.relay.Status(ctx, acc.RequestID)
		note(st.TxHash)
		relays++
	}
	end, err := e.c.NonceAt(ctx, e.gw.Address(), nil)
	if err != nil {
		t.Fatal(err)
	}
	// Every transaction of the account since: the chain holds one per
	// nonce, and those the replicas know of (relays, checkpoints, the
	// stand-in's) are among them, successful: none was displaced by a
	// rival on its nonce. The others can only be the stand-in's sends
	// whose answer a's kill cut off, or (anchoring) a checkpoint sent
	// again after the takeover that the contract refused.
	head, err := e.c.BlockNumber(ctx)
	if err != nil {
		t.Fatal(err)
	}
	signer := types.LatestSignerForChainID(e.gw.ChainID())
	self := e.gw.Address()
	var all, standins, reverted int
	for n := startBlock + 1; n <= head; n++ {
		blk, err := e.c.BlockByNumber(ctx, new(big.Int).SetUint64(n))
		if err != nil {
			t.Fatal(err)
		}
		for _, tx := range blk.Transactions() {
			if from, _ := types.Sender(signer, tx); from != self {
				continue
			}
			all++
			if _, known := byNonce[tx.Nonce()]; known {
				if byNonce[tx.Nonce()] != tx.Hash() {
					t.Fatalf("nonce %d: mined %s, known %s", tx.Nonce(), tx.Hash().Hex(), byNonce[tx.Nonce()].Hex())
				}
				continue
			}
			rc, err := e.c.TransactionReceipt(ctx, tx.Hash())
			switch {
			case err != nil:
				t.Fatal(err)
			case tx.To() != nil && *tx.To() == self && len(tx.Data()) == 0 && rc.Status == 1:
				standins++
			case anchoring && dep != nil && tx.To() != nil && *tx.To() == dep.Address && rc.Status == 0:
				reverted++
			default:
				t.Fatalf("unknown transaction %s (nonce %d, status %d)", tx.Hash().Hex(), tx.Nonce(), rc.Status)
			}
		}
	}
	t.Logf("%d anchoring (%d checkpoints, %d stand-ins, %d more stand-ins cut off, %d refused re-sends) and %d relayed transactions on nonces %d..%d",
		anchors+checkpoints+standins+reverted, checkpoints, anchors, standins, reverted, relays, startNonce, end)
	if uint64(all) != end-startNonce {
		t.Fatalf("%d transactions mined for %d nonces", all, end-startNonce)
	}
}
