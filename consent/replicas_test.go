package consent

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/fhirgate/fhirgate/chain"
	"github.com/fhirgate/fhirgate/contracts/consentsig"
	"github.com/fhirgate/fhirgate/fhir/rest"
	"github.com/fhirgate/fhirgate/internal/redistest"
	"github.com/fhirgate/fhirgate/policy"
	"github.com/fhirgate/fhirgate/store"
	"github.com/fhirgate/fhirgate/store/redis"
)

// Two gateway replicas: two followers, each with its own Store (and so
// its own read cache and memory), over ONE engine. Nothing reaches one
// replica from the other but the store and the chain.

// replica is one gateway replica's store and follower.
type replica struct {
	name string
	st   *store.Store
	fl   *follower
}

// consentDB is the Consent resources both replicas project into, written
// as rest.Server.WriteAsGateway writes them: the same content again makes
// no new version.
type consentDB struct {
	mu       sync.Mutex
	bodies   map[string][]byte
	versions map[string]int
	by       map[string]int // projections written, per replica
}

func newConsentDB() *consentDB {
	return &consentDB{bodies: map[string][]byte{}, versions: map[string]int{}, by: map[string]int{}}
}

func (db *consentDB) project(name string, fail func() bool) func(context.Context, []Projection) error {
	return func(_ context.Context, ps []Projection) error {
		if fail != nil && fail() {
			return fmt.Errorf("replica %s cannot write", name)
		}
		db.mu.Lock()
		defer db.mu.Unlock()
		for _, p := range ps {
			if bytes.Equal(db.bodies[p.ID], p.Body) {
				continue
			}
			db.bodies[p.ID] = p.Body
			db.versions[p.ID]++
			db.by[name]++
		}
		return nil
	}
}

func (db *consentDB) status(id string) (string, int) {
	db.mu.Lock()
	defer db.mu.Unlock()
	b := db.bodies[id]
	if b == nil {
		return "none", db.versions[id]
	}
	var c consentResource
	jsonUnmarshal(b, &c)
	return c.Status, db.versions[id]
}

// replica starts a replica over eng (nil: e.eng).
func (e *env) replica(name string, eng store.Engine, db *consentDB, fail func() bool) *replica {
	e.t.Helper()
	if eng == nil {
		eng = e.eng
	}
	st := store.New(eng, store.Options{})
	fl := e.follow(func(c *Config) {
		c.Engine = eng
		c.Directory, c.WalletsOf = st, rest.WalletIdentifiers
		if db != nil {
			c.Project = db.project(name, fail)
		}
	})
	if err := fl.SeedIdentities(testCtx(e.t)); err != nil {
		e.t.Fatal(err)
	}
	return &replica{name: name, st: st, fl: fl}
}

// backends runs test with the two replicas' engines: one Pebble store
// (both replicas on one engine), and one Redis (redis-server started for
// the test) opened by each replica.
func backends(t *testing.T, test func(t *testing.T, e *env, a, b store.Engine)) {
	t.Run("pebble", func(t *testing.T) {
		e := newEnv(t, chain.DevConfig{Manual: true})
		test(t, e, e.eng, e.eng)
	})
	t.Run("redis", func(t *testing.T) {
		srv := redistest.Start(t)
		prefix := redistest.Prefix(t)
		open := func() store.Engine {
			db, err := redis.Open(testCtx(t), redis.Config{URL: srv.URL(), Prefix: prefix, Logger: testLogger()})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			return db
		}
		e := newEnv(t, chain.DevConfig{Manual: true})
		test(t, e, open(), open())
	})
}

// write commits a version of typ/id through r, as the REST layer does
// (a Patient or Practitioner holds the wallets it lists), and tells r's
// follower, as rest.Config.OnWrite does.
func (r *replica) write(t *testing.T, typ, id string, wallets ...common.Address) {
	t.Helper()
	ctx := testCtx(t)
	var prev *store.Version
	vid := uint64(1)
	if cur, err := r.st.Current(ctx, typ, id); err == nil {
		prev, vid = &cur, cur.VID+1
	}
	var ids, names []string
	for _, a := range wallets {
		ids = append(ids, `{"system":"https://chainagnostic.org/CAIPs/caip-10","value":"`+wallet(a)+`"}`)
		names = append(names, "wallet:"+strings.ToLower(a.Hex()))
	}
	body := `{"resourceType":"` + typ + `","id":"` + id + `"`
	if len(ids) > 0 {
		body += `,"identifier":[` + strings.Join(ids, ",") + `]`
	}
	body += "}"
	v := store.Version{Type: typ, ID: id, VID: vid, LastUpdated: time.Now(), Method: store.MethodUpdate, Body: []byte(body)}
	w := store.Write{Prev: prev, New: v, HoldsUnique: typ == "Patient" || typ == "Practitioner", Unique: names}
	if err := r.st.Commit(ctx, []store.Write{w}); err != nil {
		t.Fatal(err)
	}
	r.fl.Noticed(&w)
}

// resume runs a stopped follower again, with the memory it stopped with.
func (fl *follower) resume() {
	ctx, cancel := context.WithCancel(context.Background())
	fl.cancel, fl.done = cancel, make(chan error, 1)
	go func() { fl.done <- fl.Run(ctx) }()
}

// within waits for cond, and fails when it took longer than d.
func within(t *testing.T, d time.Duration, cond func() bool, what string) time.Duration {
	t.Helper()
	start := time.Now()
	eventually(t, d, cond, what)
	took := time.Since(start)
	t.Logf("%s: %s", what, took.Round(time.Millisecond))
	return took
}

// A wallet unlinked through replica A stops speaking for the patient on
// replica B within a second, and a wallet linked through A takes effect
// on B within a second; a Practitioner created through A and granted on
// chain is honoured on B within two seconds. B learns all of it from the
// store, never from A.
func TestWalletLinksAcrossReplicas(t *testing.T) { backends(t, testWalletLinks) }

func testWalletLinks(t *testing.T, e *env, engA, engB store.Engine) {
	pat := e.account(1)
	a := e.replica("A", engA, nil, nil)
	b := e.replica("B", engB, nil, nil)
	const doc, p = "Practitioner/rep-doc", "Patient/rep-p"
	allowed := func(r *replica) bool { return r.fl.allowed(doc, p, "Observation", policy.PermRead) }

	a.write(t, "Practitioner", "rep-doc")
	a.write(t, "Patient", "rep-p", pat.Address)
	e.sendGrant(pat.Key, doc, "Observation.rs", forever)
	head := e.mine().Number.Uint64()
	a.fl.caughtUpTo(t, head)
	within(t, 2*time.Second, func() bool { return allowed(a) && allowed(b) }, "grant effective on both replicas")

	// Unlink through A: A refuses at once (its own write), B within 1 s.
	a.write(t, "Patient", "rep-p")
	if allowed(a) {
		t.Fatal("replica A still honours the unlinked wallet after its own write")
	}
	within(t, time.Second, func() bool { return !allowed(b) }, "unlink on A refused on B")

	// Link again through A: B honours the grant within 1 s.
	a.write(t, "Patient", "rep-p", pat.Address)
	if !allowed(a) {
		t.Fatal("replica A does not honour the linked wallet after its own write")
	}
	within(t, time.Second, func() bool { return allowed(b) }, "link on A honoured on B")

	// The wallet moves to another patient through B: on A the grant
	// speaks for the new patient only.
	b.write(t, "Patient", "rep-p")
	b.write(t, "Patient", "rep-q", pat.Address)
	within(t, time.Second, func() bool {
		return !allowed(a) && a.fl.allowed(doc, "Patient/rep-q", "Observation", policy.PermRead)
	}, "wallet moved on B, seen on A")
	for _, r := range []*replica{a, b} {
		if err := r.fl.Health(); err != nil {
			t.Errorf("replica %s: %v", r.name, err)
		}
	}
}

// Consent projections are written once per chain event however many
// replicas follow the chain: a grant and its revocation make two versions
// of one Consent, not one per replica, and a replica that cannot write
// (it died after claiming the block) is taken over by another.
func TestProjectionOncePerEventAcrossReplicas(t *testing.T) { backends(t, testProjectionOnce) }

func testProjectionOnce(t *testing.T, e0 *env, engA, engB store.Engine) {
	for i, tc := range []struct {
		name  string
		failA bool
	}{{"both write", false}, {"A cannot write", true}} {
		t.Run(tc.name, func(t *testing.T) {
			e := e0
			pat := e.account(1 + i)
			db := newConsentDB()
			var failA func() bool
			if tc.failA {
				failA = func() bool { return true }
			}
			a := e.replica("A", engA, db, failA)
			b := e.replica("B", engB, db, nil)
			defer a.fl.stop()
			defer b.fl.stop()
			doc := "Practitioner/once-doc" + fmt.Sprint(i)
			a.write(t, "Practitioner", "once-doc"+fmt.Sprint(i))
			a.write(t, "Patient", "once-p"+fmt.Sprint(i), pat.Address)
			b.fl.AddGrantees(testCtx(t), doc)
			k := gkey{Patient: pat.Address, Grantee: consentsig.Grantee(doc), Scope: consentsig.Scope("Observation.rs")}
			id := consentID(chain.DevChainID, e.registry, k)

			e.sendGrant(pat.Key, doc, "Observation.rs", forever)
			if tc.failA {
				// A claims the block (B is stopped), then cannot project it.
				b.fl.stop()
				a.fl.caughtUpTo(t, e.mine().Number.Uint64())
				b.fl.resume()
			} else {
				e.mine()
			}
			wait := 3 * time.Second
			if tc.failA {
				wait = projTakeOver + 5*time.Second
			}
			within(t, wait, func() bool { s, _ := db.status(id); return s == "active" }, "grant projected")
			e.sendRevoke(pat.Key, doc, "Observation.rs")
			e.mine()
			within(t, wait, func() bool { s, _ := db.status(id); return s == "inactive" }, "revocation projected")
			time.Sleep(time.Second) // let both replicas flush whatever they would
			if s, n := db.status(id); s != "inactive" || n != 2 {
				t.Fatalf("Consent %s is %s after %d versions; want inactive after 2 (one per chain event)", id, s, n)
			}
			db.mu.Lock()
			t.Logf("versions written by replica: %v", db.by)
			db.mu.Unlock()
		})
	}
}

// The replicas share one follower state: each block's rows and cursor
// are written by one of them, and a replica that was stopped while the
// other went on never moves the stored cursor back when it resumes; both
// end with the chain's grants.
func TestSharedCursorNeverMovesBack(t *testing.T) {
	e := newEnv(t, chain.DevConfig{Manual: true})
	keys := e.dev.Accounts()[1:4]
	a := e.replica("A", nil, nil, nil)
	b := e.replica("B", nil, nil, nil)
	for i, acc := range keys {
		a.write(t, "Patient", fmt.Sprintf("cur-%d", i), acc.Address)
	}
	a.write(t, "Practitioner", "cur-doc")
	b.fl.AddGrantees(testCtx(t), "Practitioner/cur-doc")

	// Watch the stored cursor: its block never decreases.
	ks := b.fl.ks
	stop := make(chan struct{})
	watched := make(chan error, 1)
	go func() {
		var last uint64
		for {
			select {
			case <-stop:
				watched <- nil
				return
			case <-time.After(2 * time.Millisecond):
			}
			v, err := e.eng.Get(context.Background(), ks.cursor())
			if err != nil {
				continue
			}
			c, err := decodeCursor(v)
			if err != nil {
				watched <- err
				return
			}
			if c.Number < last {
				watched <- fmt.Errorf("stored cursor moved back from block %d to %d", last, c.Number)
				return
			}
			last = c.Number
		}
	}()

	scopes := []string{"Observation.rs", "Condition.rs", "Encounter.r"}
	for round := range 3 {
		if round == 1 {
			b.fl.stop() // B falls behind
		}
		for i, acc := range keys {
			e.sendGrant(acc.Key, "Practitioner/cur-doc", scopes[(i+round)%len(scopes)], forever)
		}
		head := e.mine().Number.Uint64()
		a.fl.caughtUpTo(t, head)
	}
	// B resumes from the memory it stopped with, behind the stored state.
	b.fl.resume()
	head := e.mine().Number.Uint64()
	b.fl.caughtUpTo(t, head)
	a.fl.caughtUpTo(t, head)
	close(stop)
	if err := <-watched; err != nil {
		t.Fatal(err)
	}
	checkAgainstChain(t, e, a.fl)
	checkAgainstChain(t, e, b.fl)
	for i := range keys {
		for _, s := range scopes {
			typ, _, _ := strings.Cut(s, ".")
			pa := fmt.Sprintf("Patient/cur-%d", i)
			if a.fl.allowed("Practitioner/cur-doc", pa, typ, policy.PermRead) != b.fl.allowed("Practitioner/cur-doc", pa, typ, policy.PermRead) {
				t.Errorf("replicas disagree on %s %s", pa, s)
			}
		}
	}
}

// Two deployments (two registries) on one store: a follower refuses to
// take over the keyspace while another keeps it current, instead of
// wiping its state; once that one has stopped it takes it over.
func TestKeyspaceOfAnotherRegistryRefused(t *testing.T) {
	e := newEnv(t, chain.DevConfig{Manual: true})
	first := e.follow(nil)
	first.caughtUpTo(t, e.dev.Head().Number.Uint64())
	eventually(t, 5*time.Second, func() bool {
		_, err := e.eng.Get(context.Background(), first.ks.heartbeat())
		return err == nil
	}, "heartbeat")

	other := common.HexToAddress("0x00000000000000000000000000000000000000aa")
	pc, _ := policy.NewConsent(time.Now)
	cfg := Config{Client: e.c, Registry: other, StartBlock: e.start, Engine: e.eng, Grants: pc.Grants(), Logger: testLogger()}
	if _, err := NewFollower(testCtx(t), cfg); err == nil || !strings.Contains(err.Error(), "keyspace") {
		t.Fatalf("a follower of another registry opened a keyspace in use: %v", err)
	}
	var m meta
	if v, err := e.eng.Get(context.Background(), first.ks.meta()); err != nil || jsonUnmarshal(v, &m) != nil || m.Registry != e.registry {
		t.Fatalf("the running follower's state was touched: %v, %+v", err, m)
	}
	first.stop()
	if _, err := NewFollower(testCtx(t), cfg); err != nil {
		t.Fatalf("after the first stopped: %v", err)
	}
}
