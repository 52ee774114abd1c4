package consent

import (
	"context"
	"crypto/ecdsa"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/fhirgate/fhirgate/chain"
	"github.com/fhirgate/fhirgate/policy"
	"github.com/fhirgate/fhirgate/store/pebble"
)

// TestKillHelper is not a test: TestKill9MidStream runs the test binary
// with FHIRGATE_CONSENT_KILL_DIR set, and this runs a follower over
// WebSocket on that store until the process is killed.
func TestKillHelper(t *testing.T) {
	dir := os.Getenv("FHIRGATE_CONSENT_KILL_DIR")
	if dir == "" {
		t.Skip("helper process for TestKill9MidStream")
	}
	ctx := context.Background()
	fail := func(err error) {
		fmt.Println("ERROR", err)
		os.Exit(1)
	}
	c, err := chain.Dial(ctx, os.Getenv("FHIRGATE_CONSENT_KILL_WS"))
	if err != nil {
		fail(err)
	}
	db, err := pebble.New(ctx, pebble.Config{Dir: dir, CacheBytes: 8 << 20})
	if err != nil {
		fail(err)
	}
	start, _ := strconv.ParseUint(os.Getenv("FHIRGATE_CONSENT_KILL_START"), 10, 64)
	pc, _ := policy.NewConsent(time.Now)
	f, err := NewFollower(ctx, Config{
		Client: c, Registry: common.HexToAddress(os.Getenv("FHIRGATE_CONSENT_KILL_REGISTRY")), StartBlock: start,
		Engine: db, Grants: pc.Grants(), PollInterval: 50 * time.Millisecond, Logger: testLogger(),
		Project: func(context.Context, []Projection) error { return nil },
	})
	if err != nil {
		fail(err)
	}
	fmt.Println("READY")
	f.Run(ctx) //nolint:errcheck // runs until killed
}

// The follower is killed with SIGKILL at random moments while consent
// transactions stream in, and restarted on the same store: the counter of
// applied events (written atomically with the grants) ends equal to the
// number of registry logs, and the grants equal the chain's.
func TestKill9MidStream(t *testing.T) {
	if testing.Short() {
		t.Skip("runs child processes")
	}
	e := newEnv(t, chain.DevConfig{ListenAddr: "127.0.0.1:0"})
	dir := filepath.Join(t.TempDir(), "child-store")
	var keys []*ecdsa.PrivateKey
	for i := 1; i <= 6; i++ {
		keys = append(keys, e.account(i).Key)
	}
	grantees := []string{"Practitioner/a", "Practitioner/b", "Organization/c", "client/d"}
	scopes := []string{"Observation.rs", "DiagnosticReport.r", "*.rs", "Patient.cruds"}

	done := make(chan struct{})
	var wg sync.WaitGroup
	kills := 0
	wg.Add(1)
	go func() {
		defer wg.Done()
		rng := rand.New(rand.NewPCG(3, 9))
		for {
			cmd := exec.Command(os.Args[0], "-test.run=^TestKillHelper$")
			cmd.Env = append(os.Environ(),
				"FHIRGATE_CONSENT_KILL_DIR="+dir,
				"FHIRGATE_CONSENT_KILL_WS="+e.dev.WSURL(),
				"FHIRGATE_CONSENT_KILL_REGISTRY="+e.registry.Hex(),
				"FHIRGATE_CONSENT_KILL_START="+strconv.FormatUint(e.start, 10))
			if err := cmd.Start(); err != nil {
				t.Error(err)
				return
			}
			select {
			case <-done:
			case <-time.After(time.Duration(100+rng.IntN(400)) * time.Millisecond):
			}
			cmd.Process.Signal(syscall.SIGKILL)
			cmd.Wait()
			kills++
			select {
			case <-done:
				return
			default:
			}
		}
	}()
	e.stream(t, keys, grantees, scopes, 600, 2)
	time.Sleep(300 * time.Millisecond)
	close(done)
	wg.Wait()
	t.Logf("follower killed %d times", kills)

	// The store the killed followers wrote, read by a follower here.
	e.eng.Close()
	db, err := pebble.New(testCtx(t), pebble.Config{Dir: dir, CacheBytes: 8 << 20})
	if err != nil {
		t.Fatal(err)
	}
	e.eng = db
	fl := e.follow(nil)
	for i, k := range keys {
		fl.SetPatient(testCtx(t), wallet(addrOf(k)), fmt.Sprintf("Patient/p%d", i))
	}
	fl.AddGrantees(testCtx(t), grantees...)
	before := fl.Status().Block
	fl.caughtUpTo(t, e.dev.Head().Number.Uint64())
	t.Logf("the killed followers had applied up to block %d of %d", before, e.dev.Head().Number)
	checkAgainstChain(t, e, fl)
}
