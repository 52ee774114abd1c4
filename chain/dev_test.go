package chain

import (
	"bytes"
	"encoding/json"
	"errors"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/params"
	"github.com/ethereum/go-ethereum/rpc"
)

func TestMainnetRules(t *testing.T) {
	cfg := DevGenesis().Config
	if cfg.ChainID.Uint64() != DevChainID {
		t.Errorf("chain id %v", cfg.ChainID)
	}
	ours := reflect.ValueOf(cfg).Elem()
	main := reflect.ValueOf(params.MainnetChainConfig).Elem()
	n := 0
	for i := 0; i < ours.NumField(); i++ {
		f := ours.Type().Field(i)
		if f.Type != reflect.TypeOf((*uint64)(nil)) || !strings.HasSuffix(f.Name, "Time") {
			continue
		}
		n++
		switch {
		case main.Field(i).IsNil() && !ours.Field(i).IsNil():
			t.Errorf("%s is set, mainnet does not have it", f.Name)
		case !main.Field(i).IsNil() && (ours.Field(i).IsNil() || *ours.Field(i).Interface().(*uint64) != 0):
			t.Errorf("%s is not active at genesis, mainnet has it", f.Name)
		}
	}
	if n < 5 {
		t.Fatalf("found only %d fork time fields", n)
	}
	if !cfg.IsOsaka(common.Big1, 1) || !cfg.IsPrague(common.Big1, 1) {
		t.Error("Prague/Osaka not active")
	}
	if params.AllDevChainProtocolChanges.BogotaTime == nil {
		t.Log("note: go-ethereum's dev config no longer enables Bogota")
	}
	if cfg.BogotaTime != nil || cfg.AmsterdamTime != nil {
		t.Error("pre-release fork active")
	}
	if err := cfg.CheckConfigForkOrder(); err != nil {
		t.Error(err)
	}
	if a, b := DevGenesis().ToBlock().Hash(), DevGenesis().ToBlock().Hash(); a != b {
		t.Errorf("genesis not deterministic: %s vs %s", a, b)
	}
}

// The embedded chain over HTTP, WebSocket and in-process: balances at
// genesis, a transfer signed in Go, subscriptions, CORS, exposed APIs.
func TestDevChainRPC(t *testing.T) {
	d := startDev(t, DevConfig{ListenAddr: "127.0.0.1:0"})
	if d.HTTPURL() == "" || d.WSURL() == "" {
		t.Fatalf("urls %q %q", d.HTTPURL(), d.WSURL())
	}
	t.Logf("listening on %s and %s", d.HTTPURL(), d.WSURL())
	httpC, wsC := dial(t, d.HTTPURL()), dial(t, d.WSURL())
	clients := []struct {
		name string
		c    *Client
		subs bool
	}{
		{"http", httpC, false},
		{"ws", wsC, true},
		{"inproc", d.Client(), true},
	}
	ctx := testCtx(t)
	for _, tc := range clients {
		t.Run(tc.name, func(t *testing.T) {
			id, err := tc.c.ChainID(ctx)
			if err != nil || id.Uint64() != DevChainID {
				t.Fatalf("chain id %v, %v", id, err)
			}
			for i, a := range DevAccounts() {
				bal, err := tc.c.BalanceAt(ctx, a.Address, common.Big0)
				if err != nil {
					t.Fatal(err)
				}
				if bal.Cmp(DevAccountBalance) != 0 {
					t.Errorf("account %d balance at genesis %v, want %v", i, bal, DevAccountBalance)
				}
			}
			if tc.c.SupportsSubscriptions() != tc.subs {
				t.Errorf("SupportsSubscriptions = %v", tc.c.SupportsSubscriptions())
			}
			_, err = tc.c.SubscribeNewHead(ctx, make(chan *types.Header))
			if tc.subs && err != nil {
				t.Errorf("subscribe: %v", err)
			}
			if !tc.subs && !errors.Is(err, rpc.ErrNotificationsUnsupported) {
				t.Errorf("subscribe over HTTP: %v", err)
			}
		})
	}

	// A transfer from account 1, signed here, sent over HTTP; a WS
	// subscriber sees the block.
	heads := make(chan *types.Header, 8)
	sub, err := wsC.SubscribeNewHead(ctx, heads)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	accs := DevAccounts()
	s := newSender(t, httpC, accs[1], SenderOptions{})
	to := common.HexToAddress("0x00000000000000000000000000000000000000ff")
	r, err := s.Transact(ctx, TxRequest{To: &to, Value: ether(3)})
	if err != nil {
		t.Fatal(err)
	}
	if r.GasUsed != params.TxGas {
		t.Errorf("transfer used %d gas, want %d", r.GasUsed, params.TxGas)
	}
	select {
	case h := <-heads:
		if h.Number.Cmp(r.BlockNumber) > 0 {
			t.Errorf("first head %v after receipt block %v", h.Number, r.BlockNumber)
		}
	case <-time.After(10 * time.Second):
		t.Error("no new head over WebSocket")
	}
	bal, err := wsC.BalanceAt(ctx, to, nil)
	if err != nil || bal.Cmp(ether(3)) != 0 {
		t.Errorf("recipient balance %v, %v", bal, err)
	}

	// CORS for pages served from this machine (the portal), not for any
	// web site the operator's browser visits (issue 14).
	for origin, allowed := range map[string]bool{
		"http://localhost:8080": true, "http://127.0.0.1:3000": true, "http://[::1]:8080": true,
		"https://wallet.example": false, "http://localhost.evil.example": false,
	} {
		req, _ := http.NewRequest(http.MethodOptions, d.HTTPURL(), nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "POST")
		req.Header.Set("Access-Control-Request-Headers", "content-type")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		got := resp.Header.Get("Access-Control-Allow-Origin")
		if allowed && got != origin || !allowed && got != "" {
			t.Errorf("CORS for %s: allow origin %q", origin, got)
		}
	}
	// A host name other than localhost is refused (DNS rebinding).
	req, _ := http.NewRequest(http.MethodPost, d.HTTPURL(), strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}`))
	req.Header.Set("Content-Type", "application/json")
	req.Host = "rebind.evil.example"
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("Host rebind.evil.example: status %d, want 403", resp.StatusCode)
	}
	// WebSocket: a foreign page's Origin is refused, a local one accepted.
	for origin, allowed := range map[string]bool{"http://localhost:8080": true, "https://wallet.example": false} {
		c, err := rpc.DialOptions(ctx, d.WSURL(), rpc.WithHeader("Origin", origin))
		if allowed && err != nil || !allowed && err == nil {
			t.Errorf("WebSocket from %s: %v", origin, err)
		}
		if c != nil {
			c.Close()
		}
	}
	// Only the harmless namespaces are served to the network.
	for _, m := range []string{"admin_nodeInfo", "debug_setHead", "miner_setExtra"} {
		if err := httpC.RPC().CallContext(ctx, nil, m); err == nil || !strings.Contains(err.Error(), "does not exist") {
			t.Errorf("%s over HTTP: %v", m, err)
		}
	}
	var ver string
	if err := httpC.RPC().CallContext(ctx, &ver, "web3_clientVersion"); err != nil || !strings.HasPrefix(ver, "Geth") {
		t.Errorf("web3_clientVersion %q, %v", ver, err)
	}
}

// A chain on disk survives a restart: blocks, balances, contracts.
func TestDevChainRestart(t *testing.T) {
	dir := t.TempDir()
	store := loadStore(t)
	ctx := testCtx(t)
	accs := DevAccounts()
	to := common.HexToAddress("0x00000000000000000000000000000000000000ee")

	d := startDev(t, DevConfig{DataDir: dir})
	s := newSender(t, d.Client(), accs[1], SenderOptions{})
	if _, err := s.Transact(ctx, TxRequest{To: &to, Value: ether(5)}); err != nil {
		t.Fatal(err)
	}
	r, err := s.Transact(ctx, TxRequest{Data: append(store.bin, store.ctorArgs(t, 7)...)})
	if err != nil {
		t.Fatal(err)
	}
	head := d.Head()
	genesis := d.GenesisHash()
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "genesis.json")); err != nil {
		t.Error(err)
	}

	d2 := startDev(t, DevConfig{DataDir: dir})
	c := d2.Client()
	if d2.GenesisHash() != genesis {
		t.Errorf("genesis %s, was %s", d2.GenesisHash(), genesis)
	}
	if h := d2.Head(); h.Hash() != head.Hash() {
		t.Errorf("head after restart %d %s, was %d %s", h.Number, h.Hash(), head.Number, head.Hash())
	}
	if bal, err := c.BalanceAt(ctx, to, nil); err != nil || bal.Cmp(ether(5)) != 0 {
		t.Errorf("balance after restart %v, %v", bal, err)
	}
	if v := store.value(t, c, r.ContractAddress); v != 7 {
		t.Errorf("contract value after restart %d", v)
	}
	// The chain goes on from where it was.
	s2 := newSender(t, c, accs[1], SenderOptions{})
	r2, err := s2.Transact(ctx, TxRequest{To: &to, Value: ether(1)})
	if err != nil {
		t.Fatal(err)
	}
	if r2.BlockNumber.Uint64() != head.Number.Uint64()+1 {
		t.Errorf("next block %v, head was %v", r2.BlockNumber, head.Number)
	}
}

// A data dir holding another chain is refused.
func TestDevChainGenesisMismatch(t *testing.T) {
	dir := t.TempDir()
	g := DevGenesis()
	g.ExtraData = []byte("another chain")
	b, _ := json.Marshal(g)
	if err := os.WriteFile(filepath.Join(dir, "genesis.json"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	if d, err := StartDev(testCtx(t), DevConfig{DataDir: dir}); !errors.Is(err, ErrGenesisMismatch) {
		if d != nil {
			d.Close()
		}
		t.Fatalf("err = %v, want ErrGenesisMismatch", err)
	}
}

func TestDevChainManualMining(t *testing.T) {
	d := startDev(t, DevConfig{Manual: true})
	ctx := testCtx(t)
	c := d.Client()
	h0 := d.Head().Number.Uint64()
	// Empty block on demand.
	h, err := d.Mine(ctx)
	if err != nil || h.Number.Uint64() != h0+1 || len(d.eth.BlockChain().GetBlockByHash(h.Hash()).Transactions()) != 0 {
		t.Fatalf("Mine: %v, %v", h, err)
	}
	// A transaction waits in the pool until Mine.
	s := newSender(t, c, DevAccounts()[2], SenderOptions{})
	to := DevAccounts()[3].Address
	p, err := s.Send(ctx, TxRequest{To: &to, Value: big.NewInt(1)})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if _, err := c.TransactionReceipt(ctx, p.Hash()); !errors.Is(err, ethereum.NotFound) {
		t.Fatalf("receipt before Mine: %v", err)
	}
	h, err = d.Mine(ctx)
	if err != nil {
		t.Fatal(err)
	}
	r, err := s.Wait(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if r.BlockHash != h.Hash() {
		t.Errorf("mined in %s, Mine made %s", r.BlockHash, h.Hash())
	}
}

func TestDevChainBlockPeriod(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for blocks")
	}
	if _, err := StartDev(testCtx(t), DevConfig{BlockPeriod: 1500 * time.Millisecond}); err == nil {
		t.Error("fractional period accepted")
	}
	d := startDev(t, DevConfig{BlockPeriod: time.Second})
	if d.BlockPeriod() != time.Second {
		t.Errorf("BlockPeriod %v", d.BlockPeriod())
	}
	start := d.Head().Number.Uint64()
	time.Sleep(3200 * time.Millisecond)
	got := d.Head().Number.Uint64() - start
	if got < 2 || got > 4 {
		t.Errorf("%d blocks in 3.2s with a 1s period", got)
	}
	// Mine works alongside the period loop.
	if _, err := d.Mine(testCtx(t)); err != nil {
		t.Error(err)
	}
	b1 := d.eth.BlockChain().GetHeaderByNumber(start + 1)
	b2 := d.eth.BlockChain().GetHeaderByNumber(start + 2)
	if b1 == nil || b2 == nil || b2.Time-b1.Time != 1 {
		t.Errorf("block times %v %v", b1, b2)
	}
}

// With IdleBlocks an idle chain stops making blocks, and a transaction
// wakes it up for IdleBlocks more.
func TestDevChainIdleBlocks(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for blocks")
	}
	d := startDev(t, DevConfig{BlockPeriod: time.Second, IdleBlocks: 2})
	time.Sleep(3500 * time.Millisecond)
	idle := d.Head().Number.Uint64()
	if idle != 2 {
		t.Errorf("head %d after 3.5s idle, want 2", idle)
	}
	s := newSender(t, d.Client(), DevAccounts()[1], SenderOptions{})
	to := DevAccounts()[2].Address
	r, err := s.Transact(testCtx(t), TxRequest{To: &to, Value: big.NewInt(1)})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(3500 * time.Millisecond)
	if got, want := d.Head().Number.Uint64(), r.BlockNumber.Uint64()+2; got != want {
		t.Errorf("head %d, want %d (tx block %v + 2 idle blocks)", got, want, r.BlockNumber)
	}
}

// Mainnet gas: a plain transfer costs 21,000; a cold zero→non-zero SSTORE
// costs 22,100 (EIP-2929/2200, unchanged by Osaka, repriced by the
// pre-release fork go-ethereum's dev mode enables); Osaka's CLZ opcode
// (EIP-7939) exists, as on mainnet since December 2025.
func TestDevChainMainnetGas(t *testing.T) {
	d := startDev(t, DevConfig{})
	ctx := testCtx(t)
	s := newSender(t, d.Client(), DevAccounts()[4], SenderOptions{})
	to := DevAccounts()[5].Address
	r, err := s.Transact(ctx, TxRequest{To: &to, Value: big.NewInt(1)})
	if err != nil {
		t.Fatal(err)
	}
	if r.GasUsed != 21_000 {
		t.Errorf("transfer gas %d", r.GasUsed)
	}
	r, err = s.Transact(ctx, TxRequest{Data: sstoreProbe})
	if err != nil {
		t.Fatal(err)
	}
	if r.GasUsed != sstoreProbeGas {
		t.Errorf("SSTORE probe used %d gas, want %d (mainnet rules)", r.GasUsed, sstoreProbeGas)
	}
	out, err := d.Client().CallContract(ctx, ethereum.CallMsg{Data: clzProbe}, nil)
	if err != nil || len(out) != 32 || out[31] != 255 {
		t.Errorf("CLZ probe: %x, %v (Osaka not active?)", out, err)
	}
}

var (
	// Init code PUSH1 1, PUSH1 0, SSTORE, STOP: creation tx that stores 1
	// in slot 0 and deploys nothing.
	sstoreProbe = common.FromHex("0x600160005500")
	// 21,000 tx + 32,000 create + calldata (4 non-zero bytes × 16 + 2 zero
	// bytes × 4) + initcode word (2) + PUSH1 ×2 (6) + cold SSTORE 0→1 (22,100).
	sstoreProbeGas = uint64(21_000 + 32_000 + 4*16 + 2*4 + 2 + 6 + 22_100)
	// Init code PUSH1 1, CLZ, PUSH1 0, MSTORE, PUSH1 32, PUSH1 0, RETURN:
	// returns clz(1) = 255 when CLZ exists.
	clzProbe = common.FromHex("0x60011e60005260206000f3")
)

// ":port" listens on the loopback address only: another machine cannot
// reach the chain unless a host is named (issue 14).
func TestDevChainListensOnLoopback(t *testing.T) {
	d := startDev(t, DevConfig{ListenAddr: ":0", Manual: true})
	for _, ep := range []string{d.node.HTTPEndpoint(), d.node.WSEndpoint()} {
		_, hostport, _ := strings.Cut(ep, "://")
		host, _, err := net.SplitHostPort(hostport)
		if err != nil || host != "127.0.0.1" {
			t.Errorf("endpoint %s: host %q, want 127.0.0.1", ep, host)
		}
	}
	if id, err := dial(t, d.HTTPURL()).ChainID(testCtx(t)); err != nil || id.Uint64() != DevChainID {
		t.Errorf("chain id over loopback %v, %v", id, err)
	}
}

// The gateway's own key is funded at genesis and is what Key returns; a
// chain made before (genesis without it) keeps running and says so.
func TestDevChainGatewayKey(t *testing.T) {
	ctx := testCtx(t)
	key, _ := crypto.GenerateKey()
	addr := crypto.PubkeyToAddress(key.PublicKey)

	dir := t.TempDir()
	d := startDev(t, DevConfig{DataDir: dir, GatewayKey: key, Manual: true})
	if d.Key() != key || d.Legacy() {
		t.Fatalf("Key is not the gateway key, or Legacy = %v", d.Legacy())
	}
	if bal, err := d.Client().BalanceAt(ctx, addr, common.Big0); err != nil || bal.Cmp(DevAccountBalance) != 0 {
		t.Errorf("gateway balance at genesis %v, %v", bal, err)
	}
	for _, a := range d.Accounts() {
		if a.Address == addr {
			t.Error("the gateway key is among the public dev accounts")
		}
	}
	if d.GenesisHash() == DevGenesis().ToBlock().Hash() {
		t.Error("the genesis does not depend on the gateway key")
	}
	genesis := d.GenesisHash()
	d.Close()
	// Same key: same chain.
	d = startDev(t, DevConfig{DataDir: dir, GatewayKey: key, Manual: true})
	if d.GenesisHash() != genesis || d.Legacy() {
		t.Errorf("restart: genesis %s (was %s), legacy %v", d.GenesisHash(), genesis, d.Legacy())
	}
	d.Close()
	// Another key: refused, not silently another chain.
	other, _ := crypto.GenerateKey()
	if d, err := StartDev(ctx, DevConfig{DataDir: dir, GatewayKey: other, Manual: true}); !errors.Is(err, ErrGenesisMismatch) {
		if d != nil {
			d.Close()
		}
		t.Errorf("another key: %v, want ErrGenesisMismatch", err)
	}

	// A chain of an earlier version (no gateway key at genesis).
	old := t.TempDir()
	d = startDev(t, DevConfig{DataDir: old, Manual: true})
	legacyGenesis := d.GenesisHash()
	d.Close()
	d = startDev(t, DevConfig{DataDir: old, GatewayKey: key, Manual: true})
	if !d.Legacy() || d.GenesisHash() != legacyGenesis || d.Key() != key {
		t.Fatalf("legacy %v, genesis %s (was %s)", d.Legacy(), d.GenesisHash(), legacyGenesis)
	}
	if bal, _ := d.Client().BalanceAt(ctx, addr, nil); bal.Sign() != 0 {
		t.Errorf("gateway balance on the old chain %v", bal)
	}
	// FundFromDevAccounts gives it ether from a development account.
	done := make(chan error, 1)
	go func() {
		_, err := FundFromDevAccounts(ctx, d.Client(), addr, SenderOptions{PollInterval: 10 * time.Millisecond})
		done <- err
	}()
	mineUntil(t, d, done)
	// (It also receives the blocks' tips: it is the fee recipient.)
	if bal, _ := d.Client().BalanceAt(ctx, addr, nil); bal.Cmp(DevFunding) < 0 || bal.Cmp(new(big.Int).Add(DevFunding, ether(1))) > 0 {
		t.Errorf("gateway balance after funding %v, want %v", bal, DevFunding)
	}
	if sent, err := FundFromDevAccounts(ctx, d.Client(), addr, SenderOptions{}); sent || err != nil {
		t.Errorf("funding again: sent %v, %v", sent, err)
	}
}

// mineUntil mines blocks until done delivers (for Manual chains).
func mineUntil(t *testing.T, d *DevChain, done <-chan error) {
	t.Helper()
	for {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			return
		case <-time.After(20 * time.Millisecond):
			if _, err := d.Mine(testCtx(t)); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func TestDevChainKeyAndInfo(t *testing.T) {
	d := startDev(t, DevConfig{})
	if got := d.Key(); !bytes.Equal(got.D.Bytes(), DevAccounts()[0].Key.D.Bytes()) {
		t.Error("Key is not dev account 0")
	}
	info := d.Info(map[string]common.Address{"Store": {1}})
	b, err := json.Marshal(info)
	if err != nil {
		t.Fatal(err)
	}
	var back map[string]any
	json.Unmarshal(b, &back)
	if back["chainId"] != float64(1337) || back["dev"] != true || back["contracts"].(map[string]any)["Store"] != "0x0100000000000000000000000000000000000000" {
		t.Errorf("info JSON %s", b)
	}
	if p := info.AddEthereumChain(); p.ChainID != "0x539" || p.NativeCurrency.Decimals != 18 {
		t.Errorf("AddEthereumChain %+v", p)
	}
	i2, err := NewInfo(testCtx(t), d.Client(), "https://rpc.example", nil)
	if err != nil || i2.ChainID != DevChainID || i2.GenesisHash != d.GenesisHash() || i2.Dev {
		t.Errorf("NewInfo %+v, %v", i2, err)
	}
}
