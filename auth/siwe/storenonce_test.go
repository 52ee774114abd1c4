package siwe_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fhirgate/fhirgate/auth/siwe"
	"github.com/fhirgate/fhirgate/internal/enginetest"
	"github.com/fhirgate/fhirgate/store"
)

// The store's nonces mean what the memory ones do: single use, unknown and
// expired ones refused, the number outstanding bounded (oldest dropped).
func TestStoreNonceStore(t *testing.T) {
	for _, be := range enginetest.Backends(t) {
		t.Run(be.Name, func(t *testing.T) {
			ctx := context.Background()
			s := siwe.NewStoreNonceStore(be.Open(t), 8)
			now := time.Now()
			put := func(n string, ttl time.Duration) {
				t.Helper()
				if err := s.Put(ctx, n, now.Add(ttl)); err != nil {
					t.Fatal(err)
				}
			}
			use := func(n string, at time.Time) bool {
				t.Helper()
				ok, err := s.Consume(ctx, n, at)
				if err != nil {
					t.Fatal(err)
				}
				return ok
			}
			put("aaaaaaaa", time.Minute)
			if !use("aaaaaaaa", now) || use("aaaaaaaa", now) {
				t.Fatal("nonce not single-use")
			}
			if use("neverissued", now) || use("not a nonce\x00", now) {
				t.Fatal("unknown nonce accepted")
			}
			put("bbbbbbbb", time.Minute)
			if use("bbbbbbbb", now.Add(time.Minute)) {
				t.Fatal("expired nonce accepted")
			}
			if use("bbbbbbbb", now) {
				t.Fatal("an expired nonce refused once is still usable")
			}
			// Bounded: at the maximum, a sweep drops the oldest down to 3/4.
			for i := range 9 {
				put(fmt.Sprintf("n%07d", i), time.Minute+time.Duration(i)*time.Second)
			}
			time.Sleep(1100 * time.Millisecond) // sweeps at the maximum run at most once a second
			put("n0000009", 2*time.Minute)
			if got := s.Len(); got > 8 {
				t.Fatalf("Len = %d after a sweep at the maximum of 8", got)
			}
			if use("n0000000", now) || use("n0000001", now) || !use("n0000008", now) || !use("n0000009", now) {
				t.Fatal("eviction order: the oldest nonces go first")
			}
		})
	}
}

// Assumption 7 of issue 15: a nonce is single-use across replicas. Two
// Services over one shared engine: a nonce issued by one is accepted by
// the other once; every replay, on either, is refused; when both race
// the same signed message, exactly one wins.
func TestNonceSingleUseAcrossReplicas(t *testing.T) {
	for _, be := range enginetest.Backends(t) {
		t.Run(be.Name, func(t *testing.T) {
			e := be.Open(t)
			f := newFixture(t, func(c *siwe.Config) { c.Nonces = siwe.NewStoreNonceStore(e, 0) })
			// Replica B: its own Service and nonce store, over the same
			// engine (on Redis: its own connection).
			e2 := be.Open(t)
			b, err := siwe.New(siwe.Config{Domain: "portal.example.org", Origin: "https://portal.example.org",
				ChainID: chainID, Key: f.key, Resolve: f.resolver(), Nonces: siwe.NewStoreNonceStore(e2, 0)})
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			pat := newKey(t)
			f.links[pat.Address] = siwe.Link{Resource: "Patient/pat-1"}

			m := f.message(pat) // nonce from A
			text, sig := m.String(), pat.SignPersonalHex([]byte(m.String()))
			if _, err := b.Login(ctx, text, sig, f.now); err != nil {
				t.Fatalf("A's nonce on B: %v", err)
			}
			for name, svc := range map[string]*siwe.Service{"A": f.svc, "B": b} {
				if _, err := svc.Login(ctx, text, sig, f.now); !errors.Is(err, siwe.ErrNonce) {
					t.Errorf("replay on %s: %v, want ErrNonce", name, err)
				}
			}

			// Races: each message presented to both replicas at once.
			const rounds = 40
			var wins, losses atomic.Int64
			var wg sync.WaitGroup
			for range rounds {
				m := f.message(pat)
				text, sig := m.String(), pat.SignPersonalHex([]byte(m.String()))
				for _, svc := range []*siwe.Service{f.svc, b, f.svc, b} {
					wg.Add(1)
					go func() {
						defer wg.Done()
						_, err := svc.Login(ctx, text, sig, f.now)
						switch {
						case err == nil:
							wins.Add(1)
						case errors.Is(err, siwe.ErrNonce):
							losses.Add(1)
						default:
							t.Error(err)
						}
					}()
				}
			}
			wg.Wait()
			if wins.Load() != rounds || losses.Load() != 3*rounds {
				t.Fatalf("%d sign-ins succeeded and %d were refused; want %d and %d", wins.Load(), losses.Load(), rounds, 3*rounds)
			}

			// Expired: issued by B, presented to A after its lifetime.
			n, err := b.NewNonce(ctx, f.now.Add(-siwe.DefaultNonceTTL-time.Second))
			if err != nil {
				t.Fatal(err)
			}
			m = f.message(pat)
			m.Nonce = n.Nonce
			if _, err := f.svc.Login(ctx, m.String(), pat.SignPersonalHex([]byte(m.String())), f.now); !errors.Is(err, siwe.ErrNonce) {
				t.Fatalf("expired nonce: %v, want ErrNonce", err)
			}
		})
	}
}

// The engine is told to forget a nonce (Op.TTL) a little after it expires.
func TestStoreNonceTTL(t *testing.T) {
	rec := &recordingEngine{Engine: enginetest.Backends(t)[0].Open(t)}
	s := siwe.NewStoreNonceStore(rec, 0)
	now := time.Now()
	if err := s.Put(context.Background(), "abcdefgh", now.Add(5*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if len(rec.ttls) != 1 || rec.ttls[0] < 5*time.Minute || rec.ttls[0] > 7*time.Minute {
		t.Fatalf("TTL hints %v, want one a little over 5m", rec.ttls)
	}
}

// recordingEngine notes the TTL hints of the writes through it.
type recordingEngine struct {
	store.Engine
	mu   sync.Mutex
	ttls []time.Duration
}

func (r *recordingEngine) Apply(ctx context.Context, b *store.Batch) error {
	r.mu.Lock()
	for _, op := range b.Ops {
		if !op.Delete {
			r.ttls = append(r.ttls, op.TTL)
		}
	}
	r.mu.Unlock()
	return r.Engine.Apply(ctx, b)
}

// BenchmarkStoreNonce: one sign-in's cost of the shared nonce store (an
// issue and a use: a conditional commit each, and a read), 64 at once.
func BenchmarkStoreNonce(b *testing.B) {
	for _, be := range enginetest.Backends(b) {
		b.Run(be.Name, func(b *testing.B) {
			s := siwe.NewStoreNonceStore(be.Open(b), 1<<30)
			ctx := context.Background()
			var n atomic.Int64
			b.SetParallelism(32) // 64 goroutines on 2 cores
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					nonce := fmt.Sprintf("bench%017d", n.Add(1))
					now := time.Now()
					if err := s.Put(ctx, nonce, now.Add(time.Minute)); err != nil {
						b.Fatal(err)
					}
					if ok, err := s.Consume(ctx, nonce, now); !ok || err != nil {
						b.Fatal(ok, err)
					}
				}
			})
		})
	}
}
