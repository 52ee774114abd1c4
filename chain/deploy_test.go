package chain

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
)

// DeployOnce deploys on first start only, across restarts; a fresh chain
// (same genesis, data wiped) gets a new deployment; changed init code is
// refused.
func TestDeployOnceAcrossRestarts(t *testing.T) {
	chainDir := t.TempDir()
	book := filepath.Join(t.TempDir(), "deployments.json")
	store := loadStore(t)
	ctx := testCtx(t)
	gw := DevAccounts()[0]

	d := startDev(t, DevConfig{DataDir: chainDir})
	s := newSender(t, d.Client(), gw, SenderOptions{})
	dep, err := OpenDeployments(book).DeployOnce(ctx, s, "Store", store.bin, store.ctorArgs(t, 42))
	if err != nil {
		t.Fatal(err)
	}
	if v := store.value(t, d.Client(), dep.Address); v != 42 {
		t.Fatalf("value %d", v)
	}
	if dep.Pending || dep.Block == 0 || dep.Deployer != gw.Address {
		t.Errorf("deployment %+v", dep)
	}
	// Same process, same book: no second deployment.
	again, err := OpenDeployments(book).DeployOnce(ctx, s, "Store", store.bin, store.ctorArgs(t, 42))
	if err != nil || again != dep {
		t.Fatalf("second DeployOnce %+v, %v", again, err)
	}
	nonce := d.Head().Number.Uint64()
	d.Close()

	// Restart: still deployed, nothing sent.
	d = startDev(t, DevConfig{DataDir: chainDir})
	s = newSender(t, d.Client(), gw, SenderOptions{})
	before, _ := d.Client().NonceAt(ctx, gw.Address, nil)
	got, err := OpenDeployments(book).DeployOnce(ctx, s, "Store", store.bin, store.ctorArgs(t, 42))
	if err != nil || got != dep {
		t.Fatalf("after restart %+v, %v", got, err)
	}
	after, _ := d.Client().NonceAt(ctx, gw.Address, nil)
	if after != before || d.Head().Number.Uint64() != nonce {
		t.Errorf("DeployOnce sent a transaction after restart (nonce %d→%d)", before, after)
	}
	all, err := OpenDeployments(book).All(ctx, d.Client())
	if err != nil || all["Store"] != dep || AddressesOf(all)["Store"] != dep.Address {
		t.Errorf("All %v, %v", all, err)
	}
	// Other constructor arguments: refused, not silently redeployed.
	if _, err := OpenDeployments(book).DeployOnce(ctx, s, "Store", store.bin, store.ctorArgs(t, 43)); !errors.Is(err, ErrCodeChanged) {
		t.Errorf("changed args: %v", err)
	}
	d.Close()

	// A fresh chain with the same genesis (data dir wiped): the book's key
	// matches but there is no code, so it deploys again.
	d = startDev(t, DevConfig{DataDir: t.TempDir()})
	s = newSender(t, d.Client(), gw, SenderOptions{})
	fresh, err := OpenDeployments(book).DeployOnce(ctx, s, "Store", store.bin, store.ctorArgs(t, 42))
	if err != nil {
		t.Fatal(err)
	}
	if v := store.value(t, d.Client(), fresh.Address); v != 42 {
		t.Errorf("value on fresh chain %d", v)
	}

	// The file is keyed by chain id and genesis hash.
	raw, _ := os.ReadFile(book)
	var m map[string]map[string]Deployment
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	key := "1337:" + d.GenesisHash().Hex()
	if m[key]["Store"].Address != fresh.Address {
		t.Errorf("book %s", raw)
	}
	if err := OpenDeployments(book).Forget(ctx, d.Client(), "Store"); err != nil {
		t.Fatal(err)
	}
	if all, _ := OpenDeployments(book).All(ctx, d.Client()); len(all) != 0 {
		t.Errorf("after Forget: %v", all)
	}
}

// A deployment broadcast before a crash (recorded as pending) is adopted,
// not repeated.
func TestDeployOncePendingAdopted(t *testing.T) {
	d := startDev(t, DevConfig{Manual: true})
	ctx := testCtx(t)
	store := loadStore(t)
	book := OpenDeployments(filepath.Join(t.TempDir(), "d.json"))
	s := newSender(t, d.Client(), DevAccounts()[0], SenderOptions{})
	// Simulate the crash: the BeforeSend hook records, the process dies
	// before the receipt.
	key, err := ChainKey(ctx, d.Client())
	if err != nil {
		t.Fatal(err)
	}
	p, err := s.Send(ctx, TxRequest{Data: append(store.bin, store.ctorArgs(t, 5)...), BeforeSend: func(tx *types.Transaction) error {
		return book.put(ctx, key, "Store", Deployment{
			Address: deployAddress(s.Address(), tx.Nonce()), TxHash: tx.Hash(), Deployer: s.Address(),
			InitCodeHash: hashOf(store.bin, store.ctorArgs(t, 5)), Pending: true,
		}, nil)
	}})
	if err != nil {
		t.Fatal(err)
	}
	if all, _ := book.All(ctx, d.Client()); len(all) != 0 {
		t.Errorf("pending deployment listed: %v", all)
	}
	go d.Mine(ctx) //nolint:errcheck
	s2 := newSender(t, d.Client(), DevAccounts()[0], SenderOptions{})
	dep, err := book.DeployOnce(ctx, s2, "Store", store.bin, store.ctorArgs(t, 5))
	if err != nil {
		t.Fatal(err)
	}
	if dep.Address != deployAddress(s.Address(), p.Nonce()) || dep.Pending {
		t.Errorf("adopted %+v", dep)
	}
	if n, _ := d.Client().NonceAt(ctx, s.Address(), nil); n != p.Nonce()+1 {
		t.Errorf("nonce %d: deployed twice?", n)
	}
}

func TestDeploymentsInMemory(t *testing.T) {
	d := startDev(t, DevConfig{})
	store := loadStore(t)
	ctx := testCtx(t)
	book := OpenDeployments("")
	s := newSender(t, d.Client(), DevAccounts()[0], SenderOptions{})
	a, err := book.DeployOnce(ctx, s, "Store", store.bin, store.ctorArgs(t, 1))
	if err != nil {
		t.Fatal(err)
	}
	b, err := book.DeployOnce(ctx, s, "Store", store.bin, store.ctorArgs(t, 1))
	if err != nil || a != b {
		t.Errorf("%+v %+v %v", a, b, err)
	}
	if _, err := book.DeployOnce(ctx, s, "Empty", nil, nil); err == nil || !strings.Contains(err.Error(), "empty") {
		t.Errorf("empty bytecode: %v", err)
	}
}

func hashOf(parts ...[]byte) common.Hash {
	var all []byte
	for _, p := range parts {
		all = append(all, p...)
	}
	return crypto.Keccak256Hash(all)
}
