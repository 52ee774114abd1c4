package chain

import (
	"encoding/json"
	"math/big"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/fhirgate/fhirgate/internal/gethtest"
)

// The sender, deployments and gas rules against a real geth --dev,
// initialised with DevGenesis (as docker-compose does: geth init, then
// geth --dev on that data dir), so it runs the same chain as the embedded
// one.
func TestGethDev(t *testing.T) {
	if testing.Short() {
		t.Skip("starts geth")
	}
	g, _ := json.Marshal(DevGenesis())
	node := gethtest.StartDev(t, g, 0)
	httpURL, wsURL := node.HTTP, node.WS
	ctx := testCtx(t)
	httpC, wsC := dial(t, httpURL), dial(t, wsURL)

	info, err := NewInfo(ctx, httpC, httpURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	if info.ChainID != DevChainID || info.GenesisHash != DevGenesis().ToBlock().Hash() {
		t.Fatalf("geth runs chain %d genesis %s; DevGenesis is %s", info.ChainID, info.GenesisHash, DevGenesis().ToBlock().Hash())
	}
	for i, a := range DevAccounts() {
		if bal, err := httpC.BalanceAt(ctx, a.Address, nil); err != nil || bal.Cmp(DevAccountBalance) != 0 {
			t.Errorf("account %d: %v, %v", i, bal, err)
		}
	}
	if httpC.SupportsSubscriptions() || !wsC.SupportsSubscriptions() {
		t.Error("subscription support misreported")
	}

	t.Run("transfer-and-gas", func(t *testing.T) {
		s := newSender(t, httpC, DevAccounts()[1], SenderOptions{})
		to := common.HexToAddress("0x00000000000000000000000000000000000000aa")
		r, err := s.Transact(ctx, TxRequest{To: &to, Value: ether(1)})
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
			t.Errorf("SSTORE probe %d gas on geth, want %d", r.GasUsed, sstoreProbeGas)
		}
	})
	t.Run("pipelining-ws", func(t *testing.T) {
		pipeline(t, wsC, 30, func(*Pending) {})
	})
	t.Run("pipelining-http", func(t *testing.T) {
		pipeline(t, httpC, 30, func(*Pending) {})
	})
	t.Run("deploy-once", func(t *testing.T) {
		store := loadStore(t)
		book := OpenDeployments(filepath.Join(t.TempDir(), "deployments.json"))
		s := newSender(t, wsC, DevAccounts()[0], SenderOptions{})
		dep, err := book.DeployOnce(ctx, s, "Store", store.bin, store.ctorArgs(t, 9))
		if err != nil {
			t.Fatal(err)
		}
		again, err := book.DeployOnce(ctx, newSender(t, httpC, DevAccounts()[0], SenderOptions{}), "Store", store.bin, store.ctorArgs(t, 9))
		if err != nil || again != dep {
			t.Errorf("second DeployOnce %+v, %v", again, err)
		}
		if v := store.value(t, httpC, dep.Address); v != 9 {
			t.Errorf("value %d", v)
		}
	})
	// N confirmations: on an on-demand chain they come from later traffic.
	t.Run("confirmations", func(t *testing.T) {
		s := newSender(t, httpC, DevAccounts()[2], SenderOptions{Confirmations: 3})
		other := newSender(t, wsC, DevAccounts()[3], SenderOptions{})
		to := DevAccounts()[4].Address
		p, err := s.Send(ctx, TxRequest{To: &to, Value: big.NewInt(1)})
		if err != nil {
			t.Fatal(err)
		}
		type res struct {
			r   *types.Receipt
			err error
		}
		done := make(chan res, 1)
		go func() {
			r, err := s.Wait(ctx, p)
			done <- res{r, err}
		}()
		for i := 0; i < 3; i++ {
			if _, err := other.Transact(ctx, TxRequest{To: &to, Value: big.NewInt(1)}); err != nil {
				t.Fatal(err)
			}
			select {
			case got := <-done:
				head, _ := httpC.BlockNumber(ctx)
				if got.err != nil || head < got.r.BlockNumber.Uint64()+2 {
					t.Fatalf("Wait returned at head %d: %+v", head, got)
				}
				return
			default:
			}
		}
		got := <-done
		if got.err != nil {
			t.Fatal(got.err)
		}
	})
}

// go-ethereum's stock dev genesis enables forks mainnet does not run; the
// reason DevGenesis exists.
func TestGethDevStockGenesis(t *testing.T) {
	if testing.Short() {
		t.Skip("runs geth")
	}
	bin := gethtest.Binary(t)
	out, err := exec.Command(bin, "--dev", "dumpgenesis").Output()
	if err != nil {
		t.Fatalf("geth --dev dumpgenesis: %v", err)
	}
	var stock struct {
		Config map[string]any `json:"config"`
	}
	if err := json.Unmarshal(out, &stock); err != nil {
		t.Fatal(err)
	}
	ours, _ := json.Marshal(DevGenesis().Config)
	var oursMap map[string]any
	json.Unmarshal(ours, &oursMap)
	var extra []string
	for k := range stock.Config {
		if strings.HasSuffix(k, "Time") {
			if _, ok := oursMap[k]; !ok {
				extra = append(extra, k)
			}
		}
	}
	t.Logf("geth --dev enables %v beyond mainnet rules", extra)
	if stock.Config["chainId"] != float64(DevChainID) {
		t.Errorf("stock dev chain id %v", stock.Config["chainId"])
	}
}
