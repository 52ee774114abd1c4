package chain

import (
	"context"
	"encoding/hex"
	"log/slog"
	"math/big"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
)

// The Store fixture (testdata/Store.sol, compiled by testdata/compile.js
// with solc 0.8.37, optimizer 200 runs, evmVersion shanghai):
//
//	contract Store {
//	    uint256 public value;
//	    event Stored(address indexed by, uint256 value);
//	    constructor(uint256 initial) { value = initial; }
//	    function set(uint256 v) external {
//	        require(v != 13, "unlucky");
//	        value = v;
//	        emit Stored(msg.sender, v);
//	    }
//	}
type storeFixture struct {
	bin []byte
	abi abi.ABI
}

func loadStore(t testing.TB) storeFixture {
	t.Helper()
	binHex, err := os.ReadFile("testdata/Store.bin")
	if err != nil {
		t.Fatal(err)
	}
	bin, err := hex.DecodeString(strings.TrimSpace(string(binHex)))
	if err != nil {
		t.Fatal(err)
	}
	abiJSON, err := os.ReadFile("testdata/Store.abi")
	if err != nil {
		t.Fatal(err)
	}
	a, err := abi.JSON(strings.NewReader(string(abiJSON)))
	if err != nil {
		t.Fatal(err)
	}
	return storeFixture{bin: bin, abi: a}
}

func (s storeFixture) ctorArgs(t testing.TB, initial int64) []byte {
	t.Helper()
	b, err := s.abi.Pack("", big.NewInt(initial))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (s storeFixture) pack(t testing.TB, method string, args ...any) []byte {
	t.Helper()
	b, err := s.abi.Pack(method, args...)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// value calls Store.value() at the latest block.
func (s storeFixture) value(t testing.TB, c *Client, at common.Address) int64 {
	t.Helper()
	out, err := c.CallContract(testCtx(t), callMsg(at, s.pack(t, "value")), nil)
	if err != nil {
		t.Fatal(err)
	}
	v, err := s.abi.Unpack("value", out)
	if err != nil {
		t.Fatal(err)
	}
	return v[0].(*big.Int).Int64()
}

// startDev starts a dev chain that is closed when the test ends.
func startDev(t testing.TB, cfg DevConfig) *DevChain {
	t.Helper()
	start := time.Now()
	d, err := StartDev(testCtx(t), cfg)
	if err != nil {
		t.Fatalf("StartDev: %v", err)
	}
	t.Logf("dev chain started in %v (datadir %q, head %d)", time.Since(start).Round(time.Millisecond), cfg.DataDir, d.Head().Number)
	t.Cleanup(func() {
		if err := d.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return d
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func newSender(t testing.TB, c *Client, acc Account, opts SenderOptions) *Sender {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = testLogger()
	}
	s, err := NewSender(testCtx(t), c, acc.Key, opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func ether(n int64) *big.Int { return new(big.Int).Mul(big.NewInt(n), big.NewInt(1e18)) }

func dial(t testing.TB, url string) *Client {
	t.Helper()
	c, err := Dial(testCtx(t), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func callMsg(to common.Address, data []byte) ethereum.CallMsg {
	return ethereum.CallMsg{To: &to, Data: data}
}

func deployAddress(from common.Address, nonce uint64) common.Address {
	return crypto.CreateAddress(from, nonce)
}

// testLogger shows Sender logs (replacements, resyncs, reorgs) with -v.
func testLogger() *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	return slog.New(slog.DiscardHandler)
}
