package bindings

import (
	"errors"

	"github.com/ethereum/go-ethereum/accounts/abi/bind/v2"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/rpc"
)

// DeployAuditAnchor sends the creation transaction of an AuditAnchor owned
// by opts.From that lets anchorer anchor (address(0): paused). The address
// is final once tx is mined.
func DeployAuditAnchor(opts *bind.TransactOpts, backend bind.ContractBackend, anchorer common.Address) (common.Address, *types.Transaction, error) {
	return bind.DeployContract(opts, common.FromHex(AuditAnchorMetaData.Bin), backend, NewAuditAnchor().PackConstructor(anchorer))
}

// DeployConsentRegistry sends the creation transaction of a ConsentRegistry.
// It has no owner: nobody but a patient can change that patient's grants.
func DeployConsentRegistry(opts *bind.TransactOpts, backend bind.ContractBackend) (common.Address, *types.Transaction, error) {
	return bind.DeployContract(opts, common.FromHex(ConsentRegistryMetaData.Bin), backend, nil)
}

// RevertData returns the revert payload carried by the error of a failed
// eth_call or eth_estimateGas (and so of bind.Call and bind.Transact), and
// whether there was one. Decode it with the contract's UnpackError, e.g.
// NewAuditAnchor().UnpackError(data) yields *AuditAnchorTreeSizeNotIncreasing.
func RevertData(err error) ([]byte, bool) {
	var de rpc.DataError
	if !errors.As(err, &de) {
		return nil, false
	}
	s, ok := de.ErrorData().(string)
	if !ok {
		return nil, false
	}
	data, derr := hexutil.Decode(s)
	if derr != nil || len(data) < 4 {
		return nil, false
	}
	return data, true
}
