package bindings_test

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"math/big"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/accounts/abi/bind/v2"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/eth/ethconfig"
	"github.com/ethereum/go-ethereum/ethclient/simulated"
	"github.com/ethereum/go-ethereum/node"
	"github.com/ethereum/go-ethereum/params"
	"github.com/google/go-cmp/cmp"

	"github.com/fhirgate/fhirgate/contracts/bindings"
)

// account is a funded externally owned account of the simulated chain.
type account struct {
	key  *ecdsa.PrivateKey
	addr common.Address
	opts *bind.TransactOpts
}

// chain is a simulated chain (the Truffle-on-Ganache setup: deploy, call,
// check) with a few funded accounts.
type chain struct {
	t       *testing.T
	sim     *simulated.Backend
	client  simulated.Client
	chainID *big.Int
}

type option = func(*node.Config, *ethconfig.Config)

// mainnetRules makes the simulated chain price gas as Ethereum mainnet does
// today (Osaka): the dev config also enables a pre-release fork (Bogota)
// whose storage pricing is several times higher.
func mainnetRules(_ *node.Config, ec *ethconfig.Config) {
	cfg := *ec.Genesis.Config
	cfg.AmsterdamTime = nil
	cfg.BogotaTime = nil
	cfg.UBTTime = nil
	ec.Genesis.Config = &cfg
}

func newAccounts(t *testing.T, n int) []account {
	t.Helper()
	accts := make([]account, n)
	for i := range accts {
		key, err := crypto.GenerateKey()
		if err != nil {
			t.Fatal(err)
		}
		accts[i] = account{key: key, addr: crypto.PubkeyToAddress(key.PublicKey)}
	}
	return accts
}

func newChain(t *testing.T, accts []account, opts ...option) *chain {
	t.Helper()
	alloc := types.GenesisAlloc{}
	for _, a := range accts {
		alloc[a.addr] = types.Account{Balance: new(big.Int).Mul(big.NewInt(1000), big.NewInt(params.Ether))}
	}
	sim := simulated.NewBackend(alloc, opts...)
	t.Cleanup(func() { _ = sim.Close() })
	c := &chain{t: t, sim: sim, client: sim.Client()}
	var err error
	if c.chainID, err = c.client.ChainID(context.Background()); err != nil {
		t.Fatal(err)
	}
	for i := range accts {
		accts[i].opts = bind.NewKeyedTransactor(accts[i].key, c.chainID)
	}
	return c
}

// mine commits the pending block and returns tx's receipt, failing the test
// unless tx was sent and succeeded.
func (c *chain) mine(tx *types.Transaction, err error) *types.Receipt {
	c.t.Helper()
	if err != nil {
		c.t.Fatalf("send: %v", err)
	}
	c.commit(tx)
	r, err := c.client.TransactionReceipt(context.Background(), tx.Hash())
	if err != nil {
		c.t.Fatalf("receipt: %v", err)
	}
	if r.Status != types.ReceiptStatusSuccessful {
		c.t.Fatalf("transaction %s failed", tx.Hash())
	}
	return r
}

// commit mines a block once the pool holds txs: it takes sent
// transactions in asynchronously, and a block mined before would leave
// them out (and a test waiting for their receipts would fail).
func (c *chain) commit(txs ...*types.Transaction) {
	c.t.Helper()
	signer := types.LatestSignerForChainID(c.chainID)
	for _, tx := range txs {
		from, err := types.Sender(signer, tx)
		if err != nil {
			c.t.Fatal(err)
		}
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(2 * time.Millisecond) {
			n, err := c.client.PendingNonceAt(context.Background(), from)
			if err == nil && n > tx.Nonce() {
				break
			}
			if time.Now().After(deadline) {
				c.t.Fatalf("transaction %s (nonce %d) not in the pool: pending nonce %d (%v)", tx.Hash(), tx.Nonce(), n, err)
			}
		}
	}
	c.sim.Commit()
}

// blockTime is the timestamp of block n (nil: latest).
func (c *chain) blockTime(n *big.Int) uint64 {
	c.t.Helper()
	h, err := c.client.HeaderByNumber(context.Background(), n)
	if err != nil {
		c.t.Fatal(err)
	}
	return h.Time
}

// deployed binds the contract that tx created at addr, once mined.
func (c *chain) deployed(meta *bind.MetaData, addr common.Address, tx *types.Transaction, err error) *bind.BoundContract {
	c.t.Helper()
	c.mine(tx, err)
	parsed, err := meta.ParseABI()
	if err != nil {
		c.t.Fatal(err)
	}
	return bind.NewBoundContract(addr, *parsed, c.client, c.client, c.client)
}

// revertError returns the custom error a failed eth_call or eth_estimateGas
// reverted with, decoded by unpack (a binding's UnpackError).
func revertError(err error, unpack func([]byte) (any, error)) (any, error) {
	if err == nil {
		return nil, errors.New("succeeded, want a revert")
	}
	data, ok := bindings.RevertData(err)
	if !ok {
		return nil, fmt.Errorf("got %w, want a revert with a custom error", err)
	}
	got, uerr := unpack(data)
	if uerr != nil {
		return nil, fmt.Errorf("revert %x is none of the contract's custom errors: %w", data, uerr)
	}
	return got, nil
}

var cmpBig = cmp.Comparer(func(a, b *big.Int) bool { return a.Cmp(b) == 0 })

// checkRevert reports whether err is a revert with exactly the custom error
// want (a pointer to a generated error struct, e.g. &AuditAnchorNotOwner{}):
// the selector picks the struct type, then every argument must match.
func checkRevert(err error, unpack func([]byte) (any, error), want any) error {
	got, err := revertError(err, unpack)
	if err != nil {
		return err
	}
	if diff := cmp.Diff(want, got, cmpBig); diff != "" {
		return fmt.Errorf("revert error mismatch (-want +got):\n%s", diff)
	}
	return nil
}

func wantRevert(t *testing.T, err error, unpack func([]byte) (any, error), want any) {
	t.Helper()
	if err := checkRevert(err, unpack, want); err != nil {
		t.Fatal(err)
	}
}

// callAs returns call options for a call sent from addr at the latest block.
func callAs(addr common.Address) *bind.CallOpts {
	return &bind.CallOpts{From: addr, Context: context.Background()}
}
