package ethanchor

import (
	"context"
	"crypto/ecdsa"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/eth/ethconfig"
	"github.com/ethereum/go-ethereum/ethclient/simulated"
	"github.com/ethereum/go-ethereum/node"
	"github.com/ethereum/go-ethereum/params"

	"github.com/fhirgate/fhirgate/anchor"
	"github.com/fhirgate/fhirgate/chain"
	"github.com/fhirgate/fhirgate/internal/gethtest"
	"github.com/fhirgate/fhirgate/store"
	"github.com/fhirgate/fhirgate/store/pebble"
)

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// testLogger sends log records to t.Log while the test runs (and drops
// the ones that come after).
func testLogger(t testing.TB, level slog.Level) *slog.Logger {
	w := &tWriter{t: t}
	t.Cleanup(func() {
		w.mu.Lock()
		w.done = true
		w.mu.Unlock()
	})
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

type tWriter struct {
	mu   sync.Mutex
	t    testing.TB
	done bool
}

func (w *tWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimRight(string(b), "\n"))
	}
	return len(b), nil
}

func openStore(t testing.TB) *store.Store {
	t.Helper()
	db, err := pebble.New(context.Background(), pebble.Config{Dir: t.TempDir(), CacheBytes: 16 << 20})
	if err != nil {
		t.Fatal(err)
	}
	st := store.New(db, store.Options{})
	t.Cleanup(func() { st.Close() })
	return st
}

// writer creates resource versions with their leaves in one commit each,
// as fhir/rest does, and remembers when each was acknowledged.
type writer struct {
	st    *store.Store
	mu    sync.Mutex
	n     int
	acked []ack
}

type ack struct {
	v  store.Version
	at time.Time
}

func (w *writer) create(ctx context.Context) (store.Version, error) {
	w.mu.Lock()
	w.n++
	n := w.n
	id := fmt.Sprintf("p%d", n)
	w.mu.Unlock()
	v := store.Version{Type: "Patient", ID: id, VID: 1, LastUpdated: time.Now().UTC().Truncate(time.Microsecond), Method: store.MethodCreate}
	v.Body = fmt.Appendf(nil, `{"id":%q,"meta":{"versionId":"1"},"name":[{"family":"Test%d"}],"resourceType":"Patient"}`, id, n)
	if err := w.st.Commit(ctx, []store.Write{{New: v, Leaf: anchor.NewLeaf(v.Type, v.ID, v.VID, v.Body).Data()}}); err != nil {
		return v, err
	}
	w.mu.Lock()
	w.acked = append(w.acked, ack{v, time.Now()})
	w.mu.Unlock()
	return v, nil
}

func (w *writer) mustCreate(t testing.TB, ctx context.Context, n int) []store.Version {
	t.Helper()
	var out []store.Version
	for i := 0; i < n; i++ {
		v, err := w.create(ctx)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, v)
	}
	return out
}

// steady writes at rate versions per second from a few goroutines until
// stop is called.
func (w *writer) steady(t testing.TB, ctx context.Context, rate int) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	const workers = 4
	for i := 0; i < workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(time.Second * workers / time.Duration(rate))
			defer tick.Stop()
			for {
				select {
				case <-done:
					return
				case <-tick.C:
				}
				if _, err := w.create(ctx); err != nil && ctx.Err() == nil {
					t.Errorf("write: %v", err)
					return
				}
			}
		}()
	}
	var once sync.Once
	return func() { once.Do(func() { close(done); wg.Wait() }) }
}

// devChain is the embedded dev chain with blocks made by the test (so it
// can stop making them), a listener for RPC over HTTP, and the AuditAnchor
// deployed by dev account 0.
type devChain struct {
	d      *chain.DevChain
	miner  *blockMaker
	sender *chain.Sender
	dep    chain.Deployment
}

func startDevChain(t testing.TB, period time.Duration) *devChain {
	t.Helper()
	ctx := testCtx(t)
	d, err := chain.StartDev(ctx, chain.DevConfig{ListenAddr: "127.0.0.1:0", Manual: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	m := startBlockMaker(period, func() { d.Mine(context.Background()) })
	t.Cleanup(m.stop)
	s, err := chain.NewSender(ctx, d.Client(), d.Key(), chain.SenderOptions{StuckAfter: 3 * time.Second, Logger: testLogger(t, slog.LevelWarn)})
	if err != nil {
		t.Fatal(err)
	}
	dep, err := Deploy(ctx, s, chain.OpenDeployments(""))
	if err != nil {
		t.Fatal(err)
	}
	return &devChain{d: d, miner: m, sender: s, dep: dep}
}

// blockMaker calls mine every period, unless paused.
type blockMaker struct {
	mu     sync.Mutex
	paused bool
	quit   chan struct{}
	done   chan struct{}
	once   sync.Once
}

func startBlockMaker(period time.Duration, mine func()) *blockMaker {
	m := &blockMaker{quit: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(m.done)
		t := time.NewTicker(period)
		defer t.Stop()
		for {
			select {
			case <-m.quit:
				return
			case <-t.C:
			}
			m.mu.Lock()
			if !m.paused {
				mine()
			}
			m.mu.Unlock()
		}
	}()
	return m
}

func (m *blockMaker) pause(p bool) {
	m.mu.Lock()
	m.paused = p
	m.mu.Unlock()
}

func (m *blockMaker) stop() { m.once.Do(func() { close(m.quit); <-m.done }) }

// newAnchorer returns an Anchorer on s, closed at the end of the test.
func newAnchorer(t testing.TB, s *chain.Sender, dep chain.Deployment) *Anchorer {
	t.Helper()
	a, err := New(testCtx(t), Config{Sender: s, Contract: dep.Address, FromBlock: dep.Block, Logger: testLogger(t, slog.LevelInfo)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}

// runLog opens a Log on st and a, running until the test ends or stop.
func runLog(t testing.TB, cfg anchor.Config) (*anchor.Log, func()) {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t, slog.LevelInfo)
	}
	l, err := anchor.Open(testCtx(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		l.Run(ctx)
	}()
	var once sync.Once
	stop := func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return l, stop
}

func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// proxy forwards TCP connections to target until it is cut; cutting
// closes the listener and every connection (the node becomes unreachable
// as when a network link drops).
type proxy struct {
	addr, target string
	mu           sync.Mutex
	ln           net.Listener
	conns        map[net.Conn]bool
}

func startProxy(t testing.TB, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{addr: ln.Addr().String(), target: target, conns: map[net.Conn]bool{}}
	p.serve(ln)
	t.Cleanup(func() { p.cut() })
	return p
}

func (p *proxy) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", p.target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			if p.ln != ln { // cut meanwhile
				p.mu.Unlock()
				c.Close()
				u.Close()
				continue
			}
			p.conns[c], p.conns[u] = true, true
			p.mu.Unlock()
			go func() { io.Copy(u, c); u.Close(); c.Close() }()
			go func() { io.Copy(c, u); u.Close(); c.Close() }()
		}
	}()
}

func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		c.Close()
	}
	p.conns = map[net.Conn]bool{}
}

func (p *proxy) restore(t testing.TB) {
	t.Helper()
	var ln net.Listener
	var err error
	for i := 0; i < 50; i++ {
		if ln, err = net.Listen("tcp", p.addr); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	p.serve(ln)
}

// simChain is go-ethereum's simulated backend (for reorgs: Fork) served
// over WebSocket so that chain.Dial can reach it.
type simChain struct {
	sim    *simulated.Backend
	client *chain.Client
	key    *ecdsa.PrivateKey
	miner  *blockMaker
}

func startSimChain(t testing.TB, period time.Duration) *simChain {
	t.Helper()
	key, _ := crypto.GenerateKey()
	addr := crypto.PubkeyToAddress(key.PublicKey)
	port := gethtest.FreePort(t)
	sim := simulated.NewBackend(types.GenesisAlloc{addr: {Balance: new(big.Int).Mul(big.NewInt(1000), big.NewInt(params.Ether))}},
		func(nc *node.Config, ec *ethconfig.Config) {
			nc.WSHost, nc.WSPort, nc.WSModules, nc.WSOrigins = "127.0.0.1", port, []string{"eth", "net", "web3"}, []string{"*"}
			cfg := chain.MainnetRules(ec.Genesis.Config)
			ec.Genesis.Config = cfg
		})
	t.Cleanup(func() { sim.Close() })
	m := startBlockMaker(period, func() { sim.Commit() })
	t.Cleanup(m.stop)
	c, err := chain.Dial(testCtx(t), fmt.Sprintf("ws://127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return &simChain{sim: sim, client: c, key: key, miner: m}
}

func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := int(p * float64(len(s)-1))
	return s[i]
}
