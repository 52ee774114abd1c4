package chain

import (
	"context"
	"errors"
	"fmt"
	"math/big"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/params"
)

// ErrNoDevFunds: no development account holds enough ether to fund an
// account (their keys are public: anyone may have spent it).
var ErrNoDevFunds = errors.New("chain: no development account holds enough ether")

// DevFunding is what FundFromDevAccounts sends an account that holds less
// than DevFundingMin: 1,000 ether, about two million anchoring
// transactions at the dev chain's fees.
var (
	DevFunding    = new(big.Int).Mul(big.NewInt(1_000), big.NewInt(params.Ether))
	DevFundingMin = new(big.Int).Mul(big.NewInt(10), big.NewInt(params.Ether))
)

// FundFromDevAccounts makes sure that to holds at least DevFundingMin on a
// chain that runs DevGenesis (an embedded chain made before the gateway
// had a key of its own, or an external geth --dev initialised with
// `gateway dev-genesis`): if it holds less, the richest DevAccounts
// account sends it DevFunding and the call waits for the receipt. It
// reports whether it sent anything. The development accounts are only a
// source of ether here; they get no role.
func FundFromDevAccounts(ctx context.Context, c *Client, to common.Address, opts SenderOptions) (bool, error) {
	have, err := withRetry(ctx, defaultRetry, func(ctx context.Context) (*big.Int, error) { return c.BalanceAt(ctx, to, nil) })
	if err != nil {
		return false, fmt.Errorf("chain: eth_getBalance %s: %w", to.Hex(), err)
	}
	if have.Cmp(DevFundingMin) >= 0 {
		return false, nil
	}
	var from Account
	best := new(big.Int)
	for _, a := range DevAccounts() {
		b, err := withRetry(ctx, defaultRetry, func(ctx context.Context) (*big.Int, error) { return c.BalanceAt(ctx, a.Address, nil) })
		if err != nil {
			return false, fmt.Errorf("chain: eth_getBalance %s: %w", a.Address.Hex(), err)
		}
		if b.Cmp(best) > 0 {
			from, best = a, b
		}
	}
	// Room for the transfer's fee (21,000 gas at up to 100 gwei).
	need := new(big.Int).Add(DevFunding, new(big.Int).Mul(big.NewInt(21_000), big.NewInt(100*params.GWei)))
	if best.Cmp(need) < 0 {
		return false, fmt.Errorf("%w: the richest holds %s wei, funding %s needs %s", ErrNoDevFunds, best, to.Hex(), need)
	}
	s, err := NewSender(ctx, c, from.Key, opts)
	if err != nil {
		return false, err
	}
	if _, err := s.Transact(ctx, TxRequest{To: &to, Value: new(big.Int).Set(DevFunding), Gas: 21_000}); err != nil {
		return false, fmt.Errorf("chain: funding %s from dev account %s: %w", to.Hex(), from.Address.Hex(), err)
	}
	return true, nil
}
