package ethanchor

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/accounts/abi/bind/v2"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/fhirgate/fhirgate/anchor"
	"github.com/fhirgate/fhirgate/chain"
)

// ErrRolesTaken: the AuditAnchor's owner is an account the gateway
// neither holds nor may take the contract from: someone else controls
// who anchors to it.
var ErrRolesTaken = errors.New("ethanchor: the AuditAnchor is owned by another account")

// Roles are who may do what on an AuditAnchor.
type Roles struct {
	Owner    common.Address // may set the anchorer and transfer ownership
	Anchorer common.Address // may anchor
}

// ReadRoles reads owner() and anchorer() of the AuditAnchor at contract.
func ReadRoles(ctx context.Context, c bind.ContractBackend, contract common.Address) (Roles, error) {
	inst := abiAnchor.Instance(c, contract)
	opts := &bind.CallOpts{Context: ctx}
	owner, err := bind.Call(inst, opts, abiAnchor.PackOwner(), abiAnchor.UnpackOwner)
	if err != nil {
		return Roles{}, fmt.Errorf("ethanchor: owner(): %w", err)
	}
	who, err := bind.Call(inst, opts, abiAnchor.PackAnchorer(), abiAnchor.UnpackAnchorer)
	if err != nil {
		return Roles{}, fmt.Errorf("ethanchor: anchorer(): %w", err)
	}
	return Roles{Owner: owner, Anchorer: who}, nil
}

// ClaimRoles makes s's account the owner and the anchorer of the
// AuditAnchor at contract. When the owner is prev's account (dev account 0
// on a chain made by an earlier version of the gateway, whose key is
// public), prev gives s's account the anchorer role and then ownership;
// when s's account owns it, s makes itself the anchorer. Any other owner
// fails with ErrRolesTaken: the gateway will not anchor to a contract
// someone else controls. It returns whether it changed anything. prev may
// be nil (no account to take the contract from).
func ClaimRoles(ctx context.Context, s *chain.Sender, contract common.Address, prev *ecdsa.PrivateKey, opts chain.SenderOptions) (bool, error) {
	if err := CheckContract(ctx, s.Client(), contract); err != nil {
		return false, err
	}
	r, err := ReadRoles(ctx, s.Client(), contract)
	if err != nil {
		return false, err
	}
	me := s.Address()
	if r.Owner == me && r.Anchorer == me {
		return false, nil
	}
	from := s
	switch {
	case r.Owner == me:
	case prev != nil && r.Owner == crypto.PubkeyToAddress(prev.PublicKey):
		if from, err = chain.NewSender(ctx, s.Client(), prev, opts); err != nil {
			return false, err
		}
	default:
		return false, fmt.Errorf("%w: AuditAnchor %s is owned by %s, not by the gateway's account %s", ErrRolesTaken, contract.Hex(), r.Owner.Hex(), me.Hex())
	}
	if r.Anchorer != me {
		if _, err := from.Transact(ctx, chain.TxRequest{To: &contract, Data: abiAnchor.PackSetAnchorer(me)}); err != nil {
			return false, fmt.Errorf("ethanchor: setAnchorer(%s): %w", me.Hex(), err)
		}
	}
	if r.Owner != me {
		if _, err := from.Transact(ctx, chain.TxRequest{To: &contract, Data: abiAnchor.PackTransferOwnership(me)}); err != nil {
			return false, fmt.Errorf("ethanchor: transferOwnership(%s): %w", me.Hex(), err)
		}
	}
	return true, nil
}

// Preflight implements anchor.Preflighter: an error wrapping
// anchor.ErrNoRole when the contract's anchorer() is not the Sender's
// account, anchor.ErrNoFunds when the account holds less than one
// anchoring transaction may cost (GasLimit at twice the base fee plus the
// node's suggested tip). It warns in the log, at most hourly, when the
// account holds less than LowFundsAnchors transactions' worth.
func (a *Anchorer) Preflight(ctx context.Context) error {
	who, err := bind.Call(abiAnchor.Instance(a.c, a.cfg.Contract), &bind.CallOpts{Context: ctx}, abiAnchor.PackAnchorer(), abiAnchor.UnpackAnchorer)
	if err != nil {
		return fmt.Errorf("anchorer(): %w", err)
	}
	me := a.s.Address()
	if who != me {
		return fmt.Errorf("%w: AuditAnchor %s names %s, the gateway sends from %s (the contract's owner must call setAnchorer)", anchor.ErrNoRole, a.cfg.Contract.Hex(), who.Hex(), me.Hex())
	}
	head, err := a.c.HeaderByNumber(ctx, nil)
	if err != nil {
		return fmt.Errorf("latest header: %w", err)
	}
	bal, err := a.c.BalanceAt(ctx, me, nil)
	if err != nil {
		return fmt.Errorf("eth_getBalance: %w", err)
	}
	price := new(big.Int)
	if head.BaseFee != nil {
		price.Mul(head.BaseFee, big.NewInt(2))
	}
	if tip, err := a.c.SuggestGasTipCap(ctx); err == nil {
		price.Add(price, tip)
	}
	cost := new(big.Int).Mul(price, new(big.Int).SetUint64(a.cfg.GasLimit))
	if bal.Cmp(cost) < 0 {
		return fmt.Errorf("%w: %s holds %s wei; an anchoring transaction may cost %s wei", anchor.ErrNoFunds, me.Hex(), bal, cost)
	}
	if low := new(big.Int).Mul(cost, big.NewInt(LowFundsAnchors)); bal.Cmp(low) < 0 {
		a.mu.Lock()
		warn := time.Since(a.lowWarned) > time.Hour
		if warn {
			a.lowWarned = time.Now()
		}
		a.mu.Unlock()
		if warn {
			a.log.Warn("ethanchor: the gateway's account runs low on funds", "account", me.Hex(), "balanceWei", bal.String(), "anchorsLeft", new(big.Int).Div(bal, cost).String())
		}
	}
	return nil
}

// LowFundsAnchors: Preflight warns when the gateway's account can pay for
// fewer anchoring transactions than this at the worst price (about an
// hour and a half of anchoring every 5 seconds).
const LowFundsAnchors = 1000

// refusal wraps a send error the node will repeat whatever the retries
// (the account cannot pay) in anchor.ErrNoFunds.
func refusal(err error) error {
	if err != nil && strings.Contains(err.Error(), "insufficient funds") {
		return fmt.Errorf("%w: %w", anchor.ErrNoFunds, err)
	}
	return err
}
