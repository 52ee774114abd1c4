package consent

import (
	"context"
	"crypto/ecdsa"
	"encoding/binary"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/fhirgate/fhirgate/chain"
	"github.com/fhirgate/fhirgate/contracts/consentsig"
	"github.com/fhirgate/fhirgate/policy"
	"github.com/fhirgate/fhirgate/store"
)

// Start time with many grants: the follower reloads its grant table from
// the store (not the chain's history). FHIRGATE_CONSENT_START_GRANTS sets
// the count (default 100,000: 20,000 patients × 5 grants, 1,000
// practitioners).
func TestStartupTimeManyGrants(t *testing.T) {
	if testing.Short() {
		t.Skip("writes many grants")
	}
	n := 100_000
	if s := os.Getenv("FHIRGATE_CONSENT_START_GRANTS"); s != "" {
		n, _ = strconv.Atoi(s)
	}
	e := newEnv(t, chain.DevConfig{Manual: true})
	ctx := testCtx(t)
	head := e.dev.Head()
	ks := keyspace{pfx: store.ExtensionPrefix(DefaultKeyspace)}
	var b store.Batch
	b.Set(ks.meta(), jsonMarshal(meta{ChainID: chain.DevChainID, Genesis: e.dev.GenesisHash(), Registry: e.registry, StartBlock: e.start}))
	b.Set(ks.cursor(), cursor{blockRef: blockRef{Number: head.Number.Uint64(), Hash: head.Hash(), Time: head.Time}, Events: uint64(n)}.encode())
	practitioners := make([]string, 1000)
	for i := range practitioners {
		practitioners[i] = fmt.Sprintf("Practitioner/p%d", i)
		b.Set(ks.preimage(consentsig.Grantee(practitioners[i])), []byte(practitioners[i]))
	}
	scopes := []string{"Observation.rs", "DiagnosticReport.rs", "Condition.r", "*.rs", "Encounter.rs"}
	patients := n / len(scopes)
	addr := func(i int) common.Address {
		var a common.Address
		binary.BigEndian.PutUint64(a[12:], uint64(i)+1)
		return a
	}
	for i := 0; i < n; i++ {
		k := gkey{Patient: addr(i / len(scopes)), Grantee: consentsig.Grantee(practitioners[i%len(practitioners)]), Scope: consentsig.Scope(scopes[i%len(scopes)])}
		p := pos{Block: 5, Time: head.Time, Index: uint32(i)}
		b.Set(ks.row(k), (&row{Expiry: forever, Granted: p, Changed: p}).encode())
		if len(b.Ops) >= 10_000 {
			if err := e.eng.Apply(ctx, &b); err != nil {
				t.Fatal(err)
			}
			b = store.Batch{}
		}
	}
	if err := e.eng.Apply(ctx, &b); err != nil {
		t.Fatal(err)
	}
	e.reopenEngine()
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)

	pc, _ := policy.NewConsent(time.Now)
	t0 := time.Now()
	f, err := NewFollower(ctx, Config{Client: e.c, Registry: e.registry, StartBlock: e.start, Engine: e.eng, Grants: pc.Grants(), Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	load := time.Since(t0)
	// The gateway's first start: every wallet mapped, in one call.
	ms := make([]WalletPatient, patients)
	for i := range ms {
		ms[i] = WalletPatient{CAIP10(chain.DevChainID, addr(i)), fmt.Sprintf("Patient/%d", i)}
	}
	t1 := time.Now()
	if err := f.SetPatients(ctx, ms); err != nil {
		t.Fatal(err)
	}
	feed := time.Since(t1)
	t2 := time.Now()
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- f.Run(rctx) }()
	<-f.Ready()
	ready := time.Since(t2)
	cancel()
	<-done
	var mem runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&mem)
	if got := pc.Grants().Len(); got != n {
		t.Fatalf("policy holds %d grants, want %d", got, n)
	}
	if !pc.Allowed("Practitioner/p5", "Patient/1", "Observation", policy.PermRead) {
		t.Error("a loaded grant is not in force")
	}
	t.Logf("first start, %d grants (%d patients): load %v, map %d wallets %v, first catch-up %v; heap +%d MB (follower and policy mirror)",
		n, patients, load.Round(time.Millisecond), patients, feed.Round(time.Millisecond), ready.Round(time.Millisecond), (int64(mem.HeapAlloc)-int64(before.HeapAlloc))>>20)
	runtime.KeepAlive(f)

	// A restart: the wallet mapping is in the store; feeding it again
	// changes nothing and writes nothing.
	e.reopenEngine()
	pc2, _ := policy.NewConsent(time.Now)
	t3 := time.Now()
	f2, err := NewFollower(ctx, Config{Client: e.c, Registry: e.registry, StartBlock: e.start, Engine: e.eng, Grants: pc2.Grants(), Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	load2 := time.Since(t3)
	if got := pc2.Grants().Len(); got != n {
		t.Fatalf("after restart the policy holds %d grants before any feed, want %d", got, n)
	}
	t4 := time.Now()
	if err := f2.SetPatients(ctx, ms); err != nil {
		t.Fatal(err)
	}
	t.Logf("restart, %d grants: load (grants in force at once) %v, re-feed %d wallets %v", n, load2.Round(time.Millisecond), patients, time.Since(t4).Round(time.Millisecond))
}

// Rebuilding from the chain (a fresh keyspace, or a reorg deeper than the
// kept history): backfill of real grants by eth_getLogs ranges.
func TestBackfillFromChain(t *testing.T) {
	if testing.Short() {
		t.Skip("sends many transactions")
	}
	n := 2000
	if s := os.Getenv("FHIRGATE_CONSENT_BACKFILL_GRANTS"); s != "" {
		n, _ = strconv.Atoi(s)
	}
	e := newEnv(t, chain.DevConfig{})
	var keys []*ecdsa.PrivateKey
	for i := 1; i <= 9; i++ {
		keys = append(keys, e.account(i).Key)
	}
	var pend []*chainPending
	t0 := time.Now()
	for i := 0; i < n; i++ {
		k := keys[i%len(keys)]
		pend = append(pend, &chainPending{k, e.sendGrant(k, fmt.Sprintf("Practitioner/p%d", i), "Observation.rs", forever)})
	}
	for _, p := range pend {
		e.wait(p.k, p.p)
	}
	sendTime := time.Since(t0)
	for i := 0; i < 100; i++ { // push the grants below the live window
		e.mine()
	}
	head := e.dev.Head().Number.Uint64()
	t1 := time.Now()
	fl := e.follow(func(c *Config) { c.RangeSize = 50 })
	<-fl.Ready()
	took := time.Since(t1)
	if st := fl.Status(); st.Events != uint64(n) || st.Block < head {
		t.Fatalf("status %+v", st)
	}
	t.Logf("%d grants sent in %v over %d blocks; a fresh follower rebuilt them in %v (ranges of 50 blocks)", n, sendTime.Round(time.Millisecond), head-e.start, took.Round(time.Millisecond))
	checkAgainstChain(t, e, fl)
}

type chainPending struct {
	k *ecdsa.PrivateKey
	p *chain.Pending
}
