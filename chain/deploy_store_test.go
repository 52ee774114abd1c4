package chain

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/core/types"

	"github.com/fhirgate/fhirgate/internal/enginetest"
	"github.com/fhirgate/fhirgate/store"
)

// Assumption 9 of issue 15: a replica without deployments.json deployed
// contracts of its own. With the book in the shared store, replicas
// starting at once on an empty store deploy once: one deploys, the others
// wait for its record and use it.
func TestStoreDeploymentsReplicas(t *testing.T) {
	d := startDev(t, DevConfig{})
	fx := loadStore(t)
	gw := DevAccounts()[0]
	for _, be := range enginetest.Backends(t) {
		t.Run(be.Name, func(t *testing.T) {
			ctx := testCtx(t)
			before, _ := d.Client().NonceAt(ctx, gw.Address, nil)
			const replicas = 3
			deps := make([]Deployment, replicas)
			start := time.Now()
			var wg sync.WaitGroup
			for i := range replicas {
				// Each replica: its own store handle, book and Sender
				// (one key, as replicas share the gateway's account).
				book := OpenStoreDeployments(be.Open(t), "")
				s := newSender(t, d.Client(), gw, SenderOptions{})
				wg.Add(1)
				go func() {
					defer wg.Done()
					dep, err := book.DeployOnce(ctx, s, "Store", fx.bin, fx.ctorArgs(t, 7))
					if err != nil {
						t.Error(err)
					}
					deps[i] = dep
				}()
			}
			wg.Wait()
			if t.Failed() {
				return
			}
			for _, dep := range deps {
				if dep.Address != deps[0].Address {
					t.Fatalf("replicas use different contracts: %s and %s", deps[0].Address.Hex(), dep.Address.Hex())
				}
			}
			if after, _ := d.Client().NonceAt(ctx, gw.Address, nil); after != before+1 {
				t.Fatalf("%d transactions sent for one deployment", after-before)
			}
			t.Logf("%d replicas, one deployment, all agreed after %v", replicas, time.Since(start).Round(time.Millisecond))
			if v := fx.value(t, d.Client(), deps[0].Address); v != 7 {
				t.Fatalf("value %d", v)
			}
			// A replica started later reads the record; all agree.
			all, err := OpenStoreDeployments(be.Open(t), "").All(ctx, d.Client())
			if err != nil || all["Store"].Address != deps[0].Address || all["Store"].Block == 0 {
				t.Fatalf("All: %v, %v", all, err)
			}
			// Other init code under the same name: refused, not redeployed.
			if _, err := OpenStoreDeployments(be.Open(t), "").DeployOnce(ctx, newSender(t, d.Client(), gw, SenderOptions{}), "Store", fx.bin, fx.ctorArgs(t, 8)); !errors.Is(err, ErrCodeChanged) {
				t.Fatalf("changed init code: %v", err)
			}
		})
	}
}

// The replica deploying dies after broadcasting (its pending record
// written, fenced by its lease, and never renewed): another replica takes
// the lease over after its TTL and adopts that transaction's contract
// instead of deploying a second one.
func TestStoreDeploymentsTakeOver(t *testing.T) {
	d := startDev(t, DevConfig{})
	fx := loadStore(t)
	gw := DevAccounts()[0]
	for _, be := range enginetest.Backends(t) {
		t.Run(be.Name, func(t *testing.T) {
			ctx := testCtx(t)
			key, err := ChainKey(ctx, d.Client())
			if err != nil {
				t.Fatal(err)
			}
			const ttl = 400 * time.Millisecond
			dead := OpenStoreDeployments(be.Open(t), "")
			lease := store.NewLease(be.Open(t), deployLeaseName(key, "Store"), "dead-replica", store.LeaseOptions{TTL: ttl})
			if held, err := lease.Acquire(ctx); !held || err != nil {
				t.Fatalf("lease: %v %v", held, err)
			}
			s := newSender(t, d.Client(), gw, SenderOptions{})
			p, err := s.Send(ctx, TxRequest{Data: append(fx.bin, fx.ctorArgs(t, 9)...), BeforeSend: func(tx *types.Transaction) error {
				return dead.put(ctx, key, "Store", Deployment{
					Address: deployAddress(s.Address(), tx.Nonce()), TxHash: tx.Hash(), Deployer: s.Address(),
					InitCodeHash: hashOf(fx.bin, fx.ctorArgs(t, 9)), Pending: true,
				}, lease)
			}})
			if err != nil {
				t.Fatal(err)
			}
			// The holder dies here: no renewal, no release.

			book := OpenStoreDeployments(be.Open(t), "")
			book.leaseTTL, book.poll = ttl, 50*time.Millisecond
			start := time.Now()
			dep, err := book.DeployOnce(ctx, newSender(t, d.Client(), gw, SenderOptions{}), "Store", fx.bin, fx.ctorArgs(t, 9))
			if err != nil {
				t.Fatal(err)
			}
			if dep.Address != deployAddress(gw.Address, p.Nonce()) || dep.Pending || dep.Block == 0 {
				t.Fatalf("adopted %+v", dep)
			}
			waited := time.Since(start)
			if waited < ttl {
				t.Fatalf("took the lease over after %v, before its TTL %v", waited, ttl)
			}
			t.Logf("took over and adopted the dead replica's deployment after %v (lease TTL %v)", waited.Round(time.Millisecond), ttl)
			if n, _ := d.Client().NonceAt(ctx, gw.Address, nil); n != p.Nonce()+1 {
				t.Fatalf("nonce %d: deployed twice?", n)
			}
			// The dead holder's fence no longer admits its writes.
			if err := dead.put(ctx, key, "Store", Deployment{}, lease); !errors.Is(err, store.ErrConflict) {
				t.Fatalf("a stale holder's write: %v, want ErrConflict", err)
			}
		})
	}
}

// A deployments.json of an earlier version is imported once: its
// contracts are used (nothing deployed), and the file is not read again.
// Addresses the operator gives are recorded (a replica on an empty store
// with --consent-registry-address) and then used by the others; another
// address for the same contract is refused.
func TestStoreDeploymentsImportAndRecord(t *testing.T) {
	d := startDev(t, DevConfig{})
	fx := loadStore(t)
	gw := DevAccounts()[0]
	ctx := testCtx(t)
	file := filepath.Join(t.TempDir(), "deployments.json")
	old, err := OpenDeployments(file).DeployOnce(ctx, newSender(t, d.Client(), gw, SenderOptions{}), "Store", fx.bin, fx.ctorArgs(t, 3))
	if err != nil {
		t.Fatal(err)
	}
	given, err := OpenDeployments("").DeployOnce(ctx, newSender(t, d.Client(), gw, SenderOptions{}), "Given", fx.bin, fx.ctorArgs(t, 4))
	if err != nil {
		t.Fatal(err)
	}
	orig, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	for _, be := range enginetest.Backends(t) {
		t.Run(be.Name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "deployments.json")
			if err := os.WriteFile(file, orig, 0o600); err != nil {
				t.Fatal(err)
			}
			before, _ := d.Client().NonceAt(ctx, gw.Address, nil)
			dep, err := OpenStoreDeployments(be.Open(t), file).DeployOnce(ctx, newSender(t, d.Client(), gw, SenderOptions{}), "Store", fx.bin, fx.ctorArgs(t, 3))
			if err != nil || dep != old {
				t.Fatalf("imported: %+v, %v; the file had %+v", dep, err, old)
			}
			// Once: a file changed later is not read again.
			raw, _ := os.ReadFile(file)
			var m map[string]map[string]Deployment
			json.Unmarshal(raw, &m) //nolint:errcheck
			for k := range m {
				m[k]["Late"] = Deployment{Address: given.Address}
			}
			raw, _ = json.Marshal(m)
			os.WriteFile(file, raw, 0o600) //nolint:errcheck
			all, err := OpenStoreDeployments(be.Open(t), file).All(ctx, d.Client())
			if err != nil || len(all) != 1 {
				t.Fatalf("after a second open: %v, %v", all, err)
			}

			// Given on replica A, used by replica B.
			rec, err := OpenStoreDeployments(be.Open(t), "").Record(ctx, d.Client(), "Given", given.Address)
			if err != nil || rec.Address != given.Address {
				t.Fatalf("Record: %+v, %v", rec, err)
			}
			got, err := OpenStoreDeployments(be.Open(t), "").DeployOnce(ctx, newSender(t, d.Client(), gw, SenderOptions{}), "Given", fx.bin, fx.ctorArgs(t, 4))
			if err != nil || got.Address != given.Address {
				t.Fatalf("a recorded address on another replica: %+v, %v", got, err)
			}
			if _, err := OpenStoreDeployments(be.Open(t), "").Record(ctx, d.Client(), "Given", old.Address); !errors.Is(err, ErrAddressDiffers) {
				t.Fatalf("another address: %v, want ErrAddressDiffers", err)
			}
			if after, _ := d.Client().NonceAt(ctx, gw.Address, nil); after != before {
				t.Fatalf("%d transactions sent", after-before)
			}
		})
	}
}
