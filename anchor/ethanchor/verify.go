package ethanchor

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/accounts/abi/bind/v2"
	"github.com/ethereum/go-ethereum/common"

	"github.com/fhirgate/fhirgate/anchor"
	"github.com/fhirgate/fhirgate/chain"
	"github.com/fhirgate/fhirgate/contracts/bindings"
)

// Verification errors beyond anchor's (which they accompany).
var (
	// ErrWrongChain: the node serves another chain than the proof names;
	// nothing was checked (not a verdict: use an RPC URL of that chain).
	ErrWrongChain = errors.New("the node serves another chain than the proof's")
	// ErrUnexpectedContract: the proof names another contract than the
	// one the verifier was told to trust (WithContract). Wraps
	// anchor.ErrInvalid.
	ErrUnexpectedContract = fmt.Errorf("%w: checkpoint anchored to an unexpected contract", anchor.ErrInvalid)
)

// RootAt returns the root the AuditAnchor at contract holds for treeSize
// at the node's latest block, and false if that size was never anchored.
// It trusts only the node.
func RootAt(ctx context.Context, client bind.ContractCaller, contract common.Address, treeSize uint64) (anchor.Hash, bool, error) {
	return rootAt(ctx, client, contract, treeSize, nil)
}

func rootAt(ctx context.Context, client bind.ContractCaller, contract common.Address, treeSize uint64, block *big.Int) (anchor.Hash, bool, error) {
	out, err := rootAtCall(ctx, client, contract, treeSize, block)
	if err != nil {
		return anchor.Hash{}, false, err
	}
	return anchor.Hash(out.Root), out.Root != [32]byte{}, nil
}

func rootAtCall(ctx context.Context, client bind.ContractCaller, contract common.Address, treeSize uint64, block *big.Int) (bindings.RootAtOutput, error) {
	data, err := client.CallContract(ctx, ethereum.CallMsg{To: &contract, Data: abiAnchor.PackRootAt(treeSize)}, block)
	if err != nil {
		return bindings.RootAtOutput{}, fmt.Errorf("rootAt(%d): %w", treeSize, err)
	}
	out, err := abiAnchor.UnpackRootAt(data)
	if err != nil {
		return bindings.RootAtOutput{}, fmt.Errorf("rootAt(%d): %w", treeSize, err)
	}
	return out, nil
}

// VerifyOption adjusts VerifyOnChain.
type VerifyOption func(*verifyOptions)

type verifyOptions struct {
	contract *common.Address
}

// WithContract makes verification insist that the proof's checkpoint is
// anchored to addr: the AuditAnchor address the verifier learned
// independently (a registry, a regulator's notice), not from the proof.
func WithContract(addr common.Address) VerifyOption {
	return func(o *verifyOptions) { o.contract = &addr }
}

// Verified describes a proof that verified.
type Verified struct {
	ChainID    uint64
	Contract   common.Address
	TreeSize   uint64
	Root       anchor.Hash
	LeafIndex  uint64
	AnchoredAt time.Time // timestamp of the block that anchored the root
}

// Client is what verification needs from a node.
type Client interface {
	bind.ContractCaller
	ChainID(ctx context.Context) (*big.Int, error)
}

// VerifyOnChain checks a proof (and, if resource is not nil, that it is
// the proof of exactly these bytes) against the Ethereum node at rpcURL,
// trusting nothing from the gateway: the node must serve the proof's
// chain, the proof's contract must run AuditAnchor's code (and be the one
// WithContract names, if given), and it must hold the proof's root for
// the proof's tree size. The error wraps anchor.ErrInvalid when the proof
// is invalid (the reason says which check failed); otherwise the node
// could not be asked (anchor.ErrChainQuery) or serves another chain
// (ErrWrongChain). This is `gateway verify`.
func VerifyOnChain(ctx context.Context, rpcURL string, p anchor.Proof, resource []byte, opts ...VerifyOption) error {
	c, err := chain.Dial(ctx, rpcURL)
	if err != nil {
		return fmt.Errorf("%w: %w", anchor.ErrChainQuery, err)
	}
	defer c.Close()
	_, err = Verify(ctx, c, p, resource, opts...)
	return err
}

// Verify is VerifyOnChain on an open client; it also describes what
// verified.
func Verify(ctx context.Context, c Client, p anchor.Proof, resource []byte, opts ...VerifyOption) (Verified, error) {
	var o verifyOptions
	for _, f := range opts {
		f(&o)
	}
	if !common.IsHexAddress(p.Checkpoint.Contract) {
		return Verified{}, fmt.Errorf("%w: contract %q is not an address", anchor.ErrMalformed, p.Checkpoint.Contract)
	}
	contract := common.HexToAddress(p.Checkpoint.Contract)
	if o.contract != nil && *o.contract != contract {
		return Verified{}, fmt.Errorf("%w: proof names %s, expected %s", ErrUnexpectedContract, contract.Hex(), o.contract.Hex())
	}
	id, err := c.ChainID(ctx)
	if err != nil {
		return Verified{}, fmt.Errorf("%w: eth_chainId: %w", anchor.ErrChainQuery, err)
	}
	if id.Uint64() != p.Checkpoint.ChainID || !id.IsUint64() {
		return Verified{}, fmt.Errorf("%w: proof is for chain %d, node serves chain %s", ErrWrongChain, p.Checkpoint.ChainID, id)
	}
	// Pin one block for every read.
	head, err := headNumber(ctx, c)
	if err != nil {
		return Verified{}, fmt.Errorf("%w: %w", anchor.ErrChainQuery, err)
	}
	if err := CheckContract(ctx, c, contract); err != nil {
		if errors.Is(err, ErrNotAuditAnchor) {
			return Verified{}, fmt.Errorf("%w: %w", anchor.ErrInvalid, err)
		}
		return Verified{}, fmt.Errorf("%w: %w", anchor.ErrChainQuery, err)
	}
	var anchoredAt uint64
	err = anchor.VerifyProof(p, resource, func(size uint64) (anchor.Hash, bool, error) {
		out, err := rootAtCall(ctx, c, contract, size, head)
		if err != nil {
			return anchor.Hash{}, false, err
		}
		anchoredAt = out.Timestamp
		return anchor.Hash(out.Root), out.Root != [32]byte{}, nil
	})
	if err != nil {
		return Verified{}, err
	}
	return Verified{
		ChainID: p.Checkpoint.ChainID, Contract: contract, TreeSize: p.TreeSize, Root: p.Checkpoint.Root,
		LeafIndex: p.LeafIndex, AnchoredAt: time.Unix(int64(anchoredAt), 0).UTC(),
	}, nil
}

// headNumber returns the latest block number if the client can tell
// (nil: read at "latest").
func headNumber(ctx context.Context, c Client) (*big.Int, error) {
	type blockNumberer interface {
		BlockNumber(ctx context.Context) (uint64, error)
	}
	bn, ok := c.(blockNumberer)
	if !ok {
		return nil, nil
	}
	n, err := bn.BlockNumber(ctx)
	if err != nil {
		return nil, fmt.Errorf("eth_blockNumber: %w", err)
	}
	return new(big.Int).SetUint64(n), nil
}
