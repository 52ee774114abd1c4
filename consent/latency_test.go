package consent

import (
	"crypto/ecdsa"
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/core/types"

	"github.com/fhirgate/fhirgate/chain"
)

// From the moment the block holding a grant or revocation reaches the
// configured confirmations (the head that confirms it arrives) to the
// moment the policy mirror reflects it: p50/p99 over ~100 operations on
// the embedded chain with 1-second blocks (the gateway's default). The
// bar is 2 s. FHIRGATE_CONSENT_LATENCY_OPS changes the count.
func TestEffectiveLatency(t *testing.T) {
	if testing.Short() {
		t.Skip("takes about 30 s")
	}
	ops := 100
	if s := os.Getenv("FHIRGATE_CONSENT_LATENCY_OPS"); s != "" {
		ops, _ = strconv.Atoi(s)
	}
	for _, tc := range []struct {
		conf uint64
		http bool // poll over HTTP (no subscriptions) every PollInterval (default 1 s)
	}{{1, false}, {3, false}, {1, true}} {
		conf := tc.conf
		name := fmt.Sprintf("confirmations=%d", conf)
		if tc.http {
			name += ",http-polling"
		}
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, chain.DevConfig{BlockPeriod: time.Second, ListenAddr: "127.0.0.1:0"})
			var (
				mu      sync.Mutex
				arrived = map[uint64]time.Time{}
			)
			heads := make(chan *types.Header, 64)
			sub, err := e.c.SubscribeNewHead(testCtx(t), heads)
			if err != nil {
				t.Fatal(err)
			}
			defer sub.Unsubscribe()
			go func() {
				for h := range heads {
					now := time.Now()
					mu.Lock()
					arrived[h.Number.Uint64()] = now
					mu.Unlock()
				}
			}()
			fl := e.follow(func(c *Config) {
				c.Confirmations = conf
				if tc.http {
					hc, err := chain.Dial(testCtx(t), e.dev.HTTPURL())
					if err != nil {
						t.Fatal(err)
					}
					t.Cleanup(hc.Close)
					c.Client, c.PollInterval = hc, 0
				}
			})
			var keys []*ecdsa.PrivateKey
			for i := 1; i <= 9; i++ {
				k := e.account(i).Key
				keys = append(keys, k)
				fl.SetPatient(testCtx(t), wallet(addrOf(k)), fmt.Sprintf("Patient/lat-%d", i))
			}
			fl.AddGrantees(testCtx(t), "Practitioner/lat")
			type sent struct {
				k *ecdsa.PrivateKey
				p *chain.Pending
			}
			var all []sent
			for i := 0; i < ops; i++ {
				k := keys[i%len(keys)]
				scope := fmt.Sprintf("Observation.%s", permString(1+(i/len(keys)/2)%31))
				var p *chain.Pending
				if (i/len(keys))%2 == 0 {
					p = e.sendGrant(k, "Practitioner/lat", scope, forever)
				} else {
					p = e.sendRevoke(k, "Practitioner/lat", fmt.Sprintf("Observation.%s", permString(1+((i/len(keys)-1)/2)%31)))
				}
				all = append(all, sent{k, p})
				time.Sleep(time.Duration(i%7) * 40 * time.Millisecond) // spread over the block period
			}
			var last uint64
			txBlock := map[[32]byte]uint64{}
			for _, s := range all {
				r := e.wait(s.k, s.p)
				txBlock[r.TxHash] = r.BlockNumber.Uint64()
				last = max(last, r.BlockNumber.Uint64())
			}
			fl.caughtUpTo(t, last)
			var lat []time.Duration
			for _, c := range fl.changeLog() {
				mu.Lock()
				at, ok := arrived[c.Block+conf-1]
				mu.Unlock()
				if !ok {
					t.Fatalf("no head %d seen", c.Block+conf-1)
				}
				d := max(c.At.Sub(at), 0)
				for range c.Events {
					lat = append(lat, d)
				}
			}
			if len(lat) != ops {
				t.Fatalf("%d events applied, want %d", len(lat), ops)
			}
			slices.Sort(lat)
			p50, p99 := lat[len(lat)/2], lat[(len(lat)*99+99)/100-1]
			t.Logf("%s: %d grants/revocations: effective after confirmation p50 %v, p99 %v, max %v",
				name, ops, p50.Round(10*time.Microsecond), p99.Round(10*time.Microsecond), lat[len(lat)-1].Round(10*time.Microsecond))
			if p99 > 2*time.Second {
				t.Errorf("p99 %v > 2 s", p99)
			}
			checkAgainstChain(t, e, fl)
		})
	}
}
