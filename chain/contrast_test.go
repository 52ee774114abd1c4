package chain

import (
	"context"
	"math/big"
	"testing"

	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/ethclient/simulated"
)

// go-ethereum's own dev configuration (ethclient/simulated, geth --dev)
// prices the same probe differently: this is why DevGenesis clears the
// pre-release fork. If this starts failing, go-ethereum's dev config may
// have caught up with mainnet; MainnetRules is still right.
func TestPreReleaseForkGasDiffers(t *testing.T) {
	acc := DevAccounts()[0]
	sim := simulated.NewBackend(types.GenesisAlloc{acc.Address: {Balance: DevAccountBalance}})
	defer sim.Close()
	c := sim.Client()
	ctx := context.Background()
	nonce, _ := c.PendingNonceAt(ctx, acc.Address)
	tip := big.NewInt(1e9)
	head, _ := c.HeaderByNumber(ctx, nil)
	tx, err := types.SignNewTx(acc.Key, types.LatestSignerForChainID(big.NewInt(1337)), &types.DynamicFeeTx{
		ChainID: big.NewInt(1337), Nonce: nonce, GasTipCap: tip, GasFeeCap: new(big.Int).Add(tip, new(big.Int).Mul(head.BaseFee, big.NewInt(2))),
		Gas: 1_000_000, Data: sstoreProbe,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SendTransaction(ctx, tx); err != nil {
		t.Fatal(err)
	}
	sim.Commit()
	r, err := c.TransactionReceipt(ctx, tx.Hash())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("SSTORE probe: %d gas under go-ethereum's dev config, %d under mainnet rules", r.GasUsed, sstoreProbeGas)
	if r.GasUsed == sstoreProbeGas {
		t.Errorf("dev config prices the probe like mainnet (%d gas)", r.GasUsed)
	}
}
