// Code generated via abigen V2 - DO NOT EDIT.
// This file is a generated binding and any manual changes will be lost.

package bindings

import (
	"bytes"
	"errors"
	"math/big"

	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/accounts/abi/bind/v2"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
)

// Reference imports to suppress errors if they are not otherwise used.
var (
	_ = bytes.Equal
	_ = errors.New
	_ = big.NewInt
	_ = common.Big1
	_ = types.BloomLookup
	_ = abi.ConvertType
)

// AuditAnchorMetaData contains all meta data concerning the AuditAnchor contract.
var AuditAnchorMetaData = bind.MetaData{
	ABI: "[{\"inputs\":[{\"internalType\":\"address\",\"name\":\"initialAnchorer\",\"type\":\"address\"}],\"stateMutability\":\"nonpayable\",\"type\":\"constructor\"},{\"inputs\":[{\"internalType\":\"uint256\",\"name\":\"index\",\"type\":\"uint256\"}],\"name\":\"NoSuchCheckpoint\",\"type\":\"error\"},{\"inputs\":[{\"internalType\":\"address\",\"name\":\"caller\",\"type\":\"address\"}],\"name\":\"NotAnchorer\",\"type\":\"error\"},{\"inputs\":[{\"internalType\":\"address\",\"name\":\"caller\",\"type\":\"address\"}],\"name\":\"NotOwner\",\"type\":\"error\"},{\"inputs\":[{\"internalType\":\"bytes32\",\"name\":\"computed\",\"type\":\"bytes32\"}],\"name\":\"PreviousRootMismatch\",\"type\":\"error\"},{\"inputs\":[{\"internalType\":\"uint256\",\"name\":\"expected\",\"type\":\"uint256\"},{\"internalType\":\"uint256\",\"name\":\"actual\",\"type\":\"uint256\"}],\"name\":\"ProofLengthMismatch\",\"type\":\"error\"},{\"inputs\":[{\"internalType\":\"bytes32\",\"name\":\"computed\",\"type\":\"bytes32\"}],\"name\":\"RootMismatch\",\"type\":\"error\"},{\"inputs\":[{\"internalType\":\"uint64\",\"name\":\"latestTreeSize\",\"type\":\"uint64\"},{\"internalType\":\"uint64\",\"name\":\"treeSize\",\"type\":\"uint64\"}],\"name\":\"TreeSizeNotIncreasing\",\"type\":\"error\"},{\"inputs\":[],\"name\":\"ZeroAddress\",\"type\":\"error\"},{\"inputs\":[],\"name\":\"ZeroRoot\",\"type\":\"error\"},{\"anonymous\":false,\"inputs\":[{\"indexed\":true,\"internalType\":\"uint64\",\"name\":\"treeSize\",\"type\":\"uint64\"},{\"indexed\":false,\"internalType\":\"bytes32\",\"name\":\"root\",\"type\":\"bytes32\"}],\"name\":\"Anchored\",\"type\":\"event\"},{\"anonymous\":false,\"inputs\":[{\"indexed\":true,\"internalType\":\"address\",\"name\":\"previousAnchorer\",\"type\":\"address\"},{\"indexed\":true,\"internalType\":\"address\",\"name\":\"newAnchorer\",\"type\":\"address\"}],\"name\":\"AnchorerChanged\",\"type\":\"event\"},{\"anonymous\":false,\"inputs\":[{\"indexed\":true,\"internalType\":\"address\",\"name\":\"previousOwner\",\"type\":\"address\"},{\"indexed\":true,\"internalType\":\"address\",\"name\":\"newOwner\",\"type\":\"address\"}],\"name\":\"OwnershipTransferred\",\"type\":\"event\"},{\"inputs\":[{\"internalType\":\"uint64\",\"name\":\"treeSize\",\"type\":\"uint64\"},{\"internalType\":\"bytes32\",\"name\":\"root\",\"type\":\"bytes32\"},{\"internalType\":\"bytes32[]\",\"name\":\"consistencyProof\",\"type\":\"bytes32[]\"}],\"name\":\"anchor\",\"outputs\":[],\"stateMutability\":\"nonpayable\",\"type\":\"function\"},{\"inputs\":[],\"name\":\"anchorer\",\"outputs\":[{\"internalType\":\"address\",\"name\":\"\",\"type\":\"address\"}],\"stateMutability\":\"view\",\"type\":\"function\"},{\"inputs\":[{\"internalType\":\"uint256\",\"name\":\"index\",\"type\":\"uint256\"}],\"name\":\"checkpointAt\",\"outputs\":[{\"internalType\":\"uint64\",\"name\":\"treeSize\",\"type\":\"uint64\"},{\"internalType\":\"bytes32\",\"name\":\"root\",\"type\":\"bytes32\"},{\"internalType\":\"uint64\",\"name\":\"timestamp\",\"type\":\"uint64\"}],\"stateMutability\":\"view\",\"type\":\"function\"},{\"inputs\":[],\"name\":\"checkpointCount\",\"outputs\":[{\"internalType\":\"uint256\",\"name\":\"\",\"type\":\"uint256\"}],\"stateMutability\":\"view\",\"type\":\"function\"},{\"inputs\":[],\"name\":\"latest\",\"outputs\":[{\"internalType\":\"uint64\",\"name\":\"treeSize\",\"type\":\"uint64\"},{\"internalType\":\"bytes32\",\"name\":\"root\",\"type\":\"bytes32\"}],\"stateMutability\":\"view\",\"type\":\"function\"},{\"inputs\":[],\"name\":\"owner\",\"outputs\":[{\"internalType\":\"address\",\"name\":\"\",\"type\":\"address\"}],\"stateMutability\":\"view\",\"type\":\"function\"},{\"inputs\":[{\"internalType\":\"uint64\",\"name\":\"treeSize\",\"type\":\"uint64\"}],\"name\":\"rootAt\",\"outputs\":[{\"internalType\":\"bytes32\",\"name\":\"root\",\"type\":\"bytes32\"},{\"internalType\":\"uint64\",\"name\":\"timestamp\",\"type\":\"uint64\"}],\"stateMutability\":\"view\",\"type\":\"function\"},{\"inputs\":[{\"internalType\":\"address\",\"name\":\"newAnchorer\",\"type\":\"address\"}],\"name\":\"setAnchorer\",\"outputs\":[],\"stateMutability\":\"nonpayable\",\"type\":\"function\"},{\"inputs\":[{\"internalType\":\"address\",\"name\":\"newOwner\",\"type\":\"address\"}],\"name\":\"transferOwnership\",\"outputs\":[],\"stateMutability\":\"nonpayable\",\"type\":\"function\"}]",
	ID:  "AuditAnchor",
	Bin: "0x6080604052348015600e575f5ffd5b50604051611018380380611018833981016040819052602b9160b9565b5f8054336001600160a01b031991821681178355600180549092166001600160a01b038516179091556040519091907f8be0079c531659141344cd1fd0a4f28419497f9722a3daafe3b4186f6b6457e0908290a36040516001600160a01b038216905f907f69b1f79c8a6a5c0d63181c7a49453e8601d01ccd2432292c1cc65e0ac4d35bf7908290a35060e4565b5f6020828403121560c8575f5ffd5b81516001600160a01b038116811460dd575f5ffd5b9392505050565b610f27806100f15f395ff3fe608060405234801561000f575f5ffd5b506004361061009f575f3560e01c80638da5cb5b11610072578063eaa38b4111610058578063eaa38b41146101ab578063f2fde38b146101dc578063ff9536db146101ef575f5ffd5b80638da5cb5b146101795780639e1515d214610198575f5ffd5b80630e0ab0a1146100a35780631f618cd2146100b857806352bfe789146100f4578063846099211461013a575b5f5ffd5b6100b66100b1366004610d29565b61022d565b005b6001547c0100000000000000000000000000000000000000000000000000000000900463ffffffff166040519081526020015b60405180910390f35b60015474010000000000000000000000000000000000000000900467ffffffffffffffff165f8181526002602090815260409182902054825193845290830152016100eb565b60015473ffffffffffffffffffffffffffffffffffffffff165b60405173ffffffffffffffffffffffffffffffffffffffff90911681526020016100eb565b5f546101549073ffffffffffffffffffffffffffffffffffffffff1681565b6100b66101a6366004610d7f565b61032b565b6101be6101b9366004610e05565b610700565b6040805192835267ffffffffffffffff9091166020830152016100eb565b6100b66101ea366004610d29565b61080e565b6102026101fd366004610e1e565b610952565b6040805167ffffffffffffffff948516815260208101939093529216918101919091526060016100eb565b5f54339073ffffffffffffffffffffffffffffffffffffffff16811461029d576040517f245aecd300000000000000000000000000000000000000000000000000000000815273ffffffffffffffffffffffffffffffffffffffff90911660048201526024015b60405180910390fd5b5060015460405173ffffffffffffffffffffffffffffffffffffffff8084169216907f69b1f79c8a6a5c0d63181c7a49453e8601d01ccd2432292c1cc65e0ac4d35bf7905f90a3600180547fffffffffffffffffffffffff00000000000000000000000000000000000000001673ffffffffffffffffffffffffffffffffffffffff92909216919091179055565b6040805160608101825260015473ffffffffffffffffffffffffffffffffffffffff811680835274010000000000000000000000000000000000000000820467ffffffffffffffff1660208401527c010000000000000000000000000000000000000000000000000000000090910463ffffffff169282019290925290339081146103fb576040517f0e5e5f6f00000000000000000000000000000000000000000000000000000000815273ffffffffffffffffffffffffffffffffffffffff9091166004820152602401610294565b5060208101518567ffffffffffffffff8083169082161161045c576040517f52d232b100000000000000000000000000000000000000000000000000000000815267ffffffffffffffff928316600482015291166024820152604401610294565b50849050610496576040517fb263ae7300000000000000000000000000000000000000000000000000000000815260040160405180910390fd5b806020015167ffffffffffffffff165f036104f5575f8280156104ee576040517f74cfd44600000000000000000000000000000000000000000000000000000000815260048101929092526024820152604401610294565b5050610524565b60208082015167ffffffffffffffff81165f908152600290925260409091205461052491908790878787610a17565b67ffffffffffffffff8581165f9081526002602052604080822087905583810151429093169088901b6fffffffffffffffff0000000000000000161791600116900361058b5760408281015160011c637fffffff165f9081526003602052208190556105af565b60408281015160011c637fffffff165f9081526003602052208054608083901b1790555b6040518060600160405280835f015173ffffffffffffffffffffffffffffffffffffffff1681526020018767ffffffffffffffff168152602001836040015160016105fa9190610e62565b63ffffffff9081169091528151600180546020808601516040968701519095167c0100000000000000000000000000000000000000000000000000000000027bffffffffffffffffffffffffffffffffffffffffffffffffffffffff67ffffffffffffffff96871674010000000000000000000000000000000000000000027fffffffff0000000000000000000000000000000000000000000000000000000090941673ffffffffffffffffffffffffffffffffffffffff9096169590951792909217939093161790559151878152908816917f4ac5b9bdb01817da80ec1c33e76c5bef927ab969dd8e8ba4ce21da0d7996e56f910160405180910390a2505050505050565b67ffffffffffffffff81165f90815260026020526040812054908161072957505f928392509050565b6001545f907c0100000000000000000000000000000000000000000000000000000000900463ffffffff165b808210156107ff575f600161076a8385610e84565b901c600181901c5f9081526003602052604081205491925090600783901b6080161c6fffffffffffffffffffffffffffffffff169050604081901c67ffffffffffffffff808916908216036107c55750949694955050505050565b8767ffffffffffffffff168167ffffffffffffffff1610156107f3576107ec836001610e84565b94506107f7565b8293505b505050610755565b610807610e97565b5050915091565b5f54339073ffffffffffffffffffffffffffffffffffffffff168114610879576040517f245aecd300000000000000000000000000000000000000000000000000000000815273ffffffffffffffffffffffffffffffffffffffff9091166004820152602401610294565b5073ffffffffffffffffffffffffffffffffffffffff81166108c7576040517fd92e233d00000000000000000000000000000000000000000000000000000000815260040160405180910390fd5b5f805460405173ffffffffffffffffffffffffffffffffffffffff808516939216917f8be0079c531659141344cd1fd0a4f28419497f9722a3daafe3b4186f6b6457e091a35f80547fffffffffffffffffffffffff00000000000000000000000000000000000000001673ffffffffffffffffffffffffffffffffffffffff92909216919091179055565b6001545f908190819084907c0100000000000000000000000000000000000000000000000000000000900463ffffffff1681106109be576040517faa516f8a00000000000000000000000000000000000000000000000000000000815260040161029491815260200190565b50600184901c5f90815260036020526040812054600786901b6080161c6fffffffffffffffffffffffffffffffff1667ffffffffffffffff604082811c9182165f90815260026020522054909790965090945092505050565b5f6001870367ffffffffffffffff1690505f610a416001880367ffffffffffffffff168318610cb8565b90505f82821c600181901c675555555555555555169003600281901c673333333333333333908116911601600481901c01670f0f0f0f0f0f0f0f166701010101010101010260381c60ff1690505f6001610ab48b67ffffffffffffffff16196001018c67ffffffffffffffff1616610cb8565b039283900392905083811c5f8115610acd576001610acf565b5f5b60ff169050848101840187808214610b1c576040517f74cfd44600000000000000000000000000000000000000000000000000000000815260048101929092526024820152604401610294565b50505f825f14610b445788885f818110610b3857610b38610ec4565b90506020020135610b46565b8a5b604051909150819060018153600181016021820160018660051b8e015f5b8c811015610bd3576020820191358a821c6001168015610bb05781875289865260205f60418a60025afa851694505f51995088865260205f60418a60025afa851694505f519850610bc9565b88875281865260205f60418a60025afa851694505f5198505b5050600101610b64565b508d60051b8f015b80821015610c1c578135855287845260205f60418860025afa831692505f51975086845260205f60418860025afa831692505f519650602082019150610bdb565b505080610c27575f5ffd5b505050508b82148290610c69576040517ff74ebdd700000000000000000000000000000000000000000000000000000000815260040161029491815260200190565b5080808c14610ca7576040517f7388a41600000000000000000000000000000000000000000000000000000000815260040161029491815260200190565b505050505050505050505050505050565b5f602082901c15610ccb57602091821c91015b601082901c15610cdd57601091821c91015b600882901c15610cef57600891821c91015b600482901c15610d0157600491821c91015b600282901c15610d1357600291821c91015b600182901c15610d2557600191821c91015b0190565b5f60208284031215610d39575f5ffd5b813573ffffffffffffffffffffffffffffffffffffffff81168114610d5c575f5ffd5b9392505050565b803567ffffffffffffffff81168114610d7a575f5ffd5b919050565b5f5f5f5f60608587031215610d92575f5ffd5b610d9b85610d63565b935060208501359250604085013567ffffffffffffffff811115610dbd575f5ffd5b8501601f81018713610dcd575f5ffd5b803567ffffffffffffffff811115610de3575f5ffd5b8760208260051b8401011115610df7575f5ffd5b949793965060200194505050565b5f60208284031215610e15575f5ffd5b610d5c82610d63565b5f60208284031215610e2e575f5ffd5b5035919050565b7f4e487b71000000000000000000000000000000000000000000000000000000005f52601160045260245ffd5b63ffffffff8181168382160190811115610e7e57610e7e610e35565b92915050565b80820180821115610e7e57610e7e610e35565b7f4e487b71000000000000000000000000000000000000000000000000000000005f52600160045260245ffd5b7f4e487b71000000000000000000000000000000000000000000000000000000005f52603260045260245ffdfea2646970667358221220304213edc701ac6f27887d676dcc7960f10cb58831fba12293b32cdeee43931364736f6c63430008250033",
}

// AuditAnchor is an auto generated Go binding around an Ethereum contract.
type AuditAnchor struct {
	abi abi.ABI
}

// GetABI returns the ABI associated with this contract binding.
func (c *AuditAnchor) GetABI() abi.ABI {
	return c.abi
}

// NewAuditAnchor creates a new instance of AuditAnchor.
func NewAuditAnchor() *AuditAnchor {
	parsed, err := AuditAnchorMetaData.ParseABI()
	if err != nil {
		panic(errors.New("invalid ABI: " + err.Error()))
	}
	return &AuditAnchor{abi: *parsed}
}

// Instance creates a wrapper for a deployed contract instance at the given address.
// Use this to create the instance object passed to abigen v2 library functions Call, Transact, etc.
func (c *AuditAnchor) Instance(backend bind.ContractBackend, addr common.Address) *bind.BoundContract {
	return bind.NewBoundContract(addr, c.abi, backend, backend, backend)
}

// PackConstructor is the Go binding used to pack the parameters required for
// contract deployment.
//
// Solidity: constructor(address initialAnchorer) returns()
func (auditAnchor *AuditAnchor) PackConstructor(initialAnchorer common.Address) []byte {
	enc, err := auditAnchor.abi.Pack("", initialAnchorer)
	if err != nil {
		panic(err)
	}
	return enc
}

// PackAnchor is the Go binding used to pack the parameters required for calling
// the contract method with ID 0x9e1515d2.  This method will panic if any
// invalid/nil inputs are passed.
//
// Solidity: function anchor(uint64 treeSize, bytes32 root, bytes32[] consistencyProof) returns()
func (auditAnchor *AuditAnchor) PackAnchor(treeSize uint64, root [32]byte, consistencyProof [][32]byte) []byte {
	enc, err := auditAnchor.abi.Pack("anchor", treeSize, root, consistencyProof)
	if err != nil {
		panic(err)
	}
	return enc
}

// TryPackAnchor is the Go binding used to pack the parameters required for calling
// the contract method with ID 0x9e1515d2.  This method will return an error
// if any inputs are invalid/nil.
//
// Solidity: function anchor(uint64 treeSize, bytes32 root, bytes32[] consistencyProof) returns()
func (auditAnchor *AuditAnchor) TryPackAnchor(treeSize uint64, root [32]byte, consistencyProof [][32]byte) ([]byte, error) {
	return auditAnchor.abi.Pack("anchor", treeSize, root, consistencyProof)
}

// PackAnchorer is the Go binding used to pack the parameters required for calling
// the contract method with ID 0x84609921.  This method will panic if any
// invalid/nil inputs are passed.
//
// Solidity: function anchorer() view returns(address)
func (auditAnchor *AuditAnchor) PackAnchorer() []byte {
	enc, err := auditAnchor.abi.Pack("anchorer")
	if err != nil {
		panic(err)
	}
	return enc
}

// TryPackAnchorer is the Go binding used to pack the parameters required for calling
// the contract method with ID 0x84609921.  This method will return an error
// if any inputs are invalid/nil.
//
// Solidity: function anchorer() view returns(address)
func (auditAnchor *AuditAnchor) TryPackAnchorer() ([]byte, error) {
	return auditAnchor.abi.Pack("anchorer")
}

// UnpackAnchorer is the Go binding that unpacks the parameters returned
// from invoking the contract method with ID 0x84609921.
//
// Solidity: function anchorer() view returns(address)
func (auditAnchor *AuditAnchor) UnpackAnchorer(data []byte) (common.Address, error) {
	out, err := auditAnchor.abi.Unpack("anchorer", data)
	if err != nil {
		return *new(common.Address), err
	}
	out0 := *abi.ConvertType(out[0], new(common.Address)).(*common.Address)
	return out0, nil
}

// PackCheckpointAt is the Go binding used to pack the parameters required for calling
// the contract method with ID 0xff9536db.  This method will panic if any
// invalid/nil inputs are passed.
//
// Solidity: function checkpointAt(uint256 index) view returns(uint64 treeSize, bytes32 root, uint64 timestamp)
func (auditAnchor *AuditAnchor) PackCheckpointAt(index *big.Int) []byte {
	enc, err := auditAnchor.abi.Pack("checkpointAt", index)
	if err != nil {
		panic(err)
	}
	return enc
}

// TryPackCheckpointAt is the Go binding used to pack the parameters required for calling
// the contract method with ID 0xff9536db.  This method will return an error
// if any inputs are invalid/nil.
//
// Solidity: function checkpointAt(uint256 index) view returns(uint64 treeSize, bytes32 root, uint64 timestamp)
func (auditAnchor *AuditAnchor) TryPackCheckpointAt(index *big.Int) ([]byte, error) {
	return auditAnchor.abi.Pack("checkpointAt", index)
}

// CheckpointAtOutput serves as a container for the return parameters of contract
// method CheckpointAt.
type CheckpointAtOutput struct {
	TreeSize  uint64
	Root      [32]byte
	Timestamp uint64
}

// UnpackCheckpointAt is the Go binding that unpacks the parameters returned
// from invoking the contract method with ID 0xff9536db.
//
// Solidity: function checkpointAt(uint256 index) view returns(uint64 treeSize, bytes32 root, uint64 timestamp)
func (auditAnchor *AuditAnchor) UnpackCheckpointAt(data []byte) (CheckpointAtOutput, error) {
	out, err := auditAnchor.abi.Unpack("checkpointAt", data)
	outstruct := new(CheckpointAtOutput)
	if err != nil {
		return *outstruct, err
	}
	outstruct.TreeSize = *abi.ConvertType(out[0], new(uint64)).(*uint64)
	outstruct.Root = *abi.ConvertType(out[1], new([32]byte)).(*[32]byte)
	outstruct.Timestamp = *abi.ConvertType(out[2], new(uint64)).(*uint64)
	return *outstruct, nil
}

// PackCheckpointCount is the Go binding used to pack the parameters required for calling
// the contract method with ID 0x1f618cd2.  This method will panic if any
// invalid/nil inputs are passed.
//
// Solidity: function checkpointCount() view returns(uint256)
func (auditAnchor *AuditAnchor) PackCheckpointCount() []byte {
	enc, err := auditAnchor.abi.Pack("checkpointCount")
	if err != nil {
		panic(err)
	}
	return enc
}

// TryPackCheckpointCount is the Go binding used to pack the parameters required for calling
// the contract method with ID 0x1f618cd2.  This method will return an error
// if any inputs are invalid/nil.
//
// Solidity: function checkpointCount() view returns(uint256)
func (auditAnchor *AuditAnchor) TryPackCheckpointCount() ([]byte, error) {
	return auditAnchor.abi.Pack("checkpointCount")
}

// UnpackCheckpointCount is the Go binding that unpacks the parameters returned
// from invoking the contract method with ID 0x1f618cd2.
//
// Solidity: function checkpointCount() view returns(uint256)
func (auditAnchor *AuditAnchor) UnpackCheckpointCount(data []byte) (*big.Int, error) {
	out, err := auditAnchor.abi.Unpack("checkpointCount", data)
	if err != nil {
		return new(big.Int), err
	}
	out0 := abi.ConvertType(out[0], new(big.Int)).(*big.Int)
	return out0, nil
}

// PackLatest is the Go binding used to pack the parameters required for calling
// the contract method with ID 0x52bfe789.  This method will panic if any
// invalid/nil inputs are passed.
//
// Solidity: function latest() view returns(uint64 treeSize, bytes32 root)
func (auditAnchor *AuditAnchor) PackLatest() []byte {
	enc, err := auditAnchor.abi.Pack("latest")
	if err != nil {
		panic(err)
	}
	return enc
}

// TryPackLatest is the Go binding used to pack the parameters required for calling
// the contract method with ID 0x52bfe789.  This method will return an error
// if any inputs are invalid/nil.
//
// Solidity: function latest() view returns(uint64 treeSize, bytes32 root)
func (auditAnchor *AuditAnchor) TryPackLatest() ([]byte, error) {
	return auditAnchor.abi.Pack("latest")
}

// LatestOutput serves as a container for the return parameters of contract
// method Latest.
type LatestOutput struct {
	TreeSize uint64
	Root     [32]byte
}

// UnpackLatest is the Go binding that unpacks the parameters returned
// from invoking the contract method with ID 0x52bfe789.
//
// Solidity: function latest() view returns(uint64 treeSize, bytes32 root)
func (auditAnchor *AuditAnchor) UnpackLatest(data []byte) (LatestOutput, error) {
	out, err := auditAnchor.abi.Unpack("latest", data)
	outstruct := new(LatestOutput)
	if err != nil {
		return *outstruct, err
	}
	outstruct.TreeSize = *abi.ConvertType(out[0], new(uint64)).(*uint64)
	outstruct.Root = *abi.ConvertType(out[1], new([32]byte)).(*[32]byte)
	return *outstruct, nil
}

// PackOwner is the Go binding used to pack the parameters required for calling
// the contract method with ID 0x8da5cb5b.  This method will panic if any
// invalid/nil inputs are passed.
//
// Solidity: function owner() view returns(address)
func (auditAnchor *AuditAnchor) PackOwner() []byte {
	enc, err := auditAnchor.abi.Pack("owner")
	if err != nil {
		panic(err)
	}
	return enc
}

// TryPackOwner is the Go binding used to pack the parameters required for calling
// the contract method with ID 0x8da5cb5b.  This method will return an error
// if any inputs are invalid/nil.
//
// Solidity: function owner() view returns(address)
func (auditAnchor *AuditAnchor) TryPackOwner() ([]byte, error) {
	return auditAnchor.abi.Pack("owner")
}

// UnpackOwner is the Go binding that unpacks the parameters returned
// from invoking the contract method with ID 0x8da5cb5b.
//
// Solidity: function owner() view returns(address)
func (auditAnchor *AuditAnchor) UnpackOwner(data []byte) (common.Address, error) {
	out, err := auditAnchor.abi.Unpack("owner", data)
	if err != nil {
		return *new(common.Address), err
	}
	out0 := *abi.ConvertType(out[0], new(common.Address)).(*common.Address)
	return out0, nil
}

// PackRootAt is the Go binding used to pack the parameters required for calling
// the contract method with ID 0xeaa38b41.  This method will panic if any
// invalid/nil inputs are passed.
//
// Solidity: function rootAt(uint64 treeSize) view returns(bytes32 root, uint64 timestamp)
func (auditAnchor *AuditAnchor) PackRootAt(treeSize uint64) []byte {
	enc, err := auditAnchor.abi.Pack("rootAt", treeSize)
	if err != nil {
		panic(err)
	}
	return enc
}

// TryPackRootAt is the Go binding used to pack the parameters required for calling
// the contract method with ID 0xeaa38b41.  This method will return an error
// if any inputs are invalid/nil.
//
// Solidity: function rootAt(uint64 treeSize) view returns(bytes32 root, uint64 timestamp)
func (auditAnchor *AuditAnchor) TryPackRootAt(treeSize uint64) ([]byte, error) {
	return auditAnchor.abi.Pack("rootAt", treeSize)
}

// RootAtOutput serves as a container for the return parameters of contract
// method RootAt.
type RootAtOutput struct {
	Root      [32]byte
	Timestamp uint64
}

// UnpackRootAt is the Go binding that unpacks the parameters returned
// from invoking the contract method with ID 0xeaa38b41.
//
// Solidity: function rootAt(uint64 treeSize) view returns(bytes32 root, uint64 timestamp)
func (auditAnchor *AuditAnchor) UnpackRootAt(data []byte) (RootAtOutput, error) {
	out, err := auditAnchor.abi.Unpack("rootAt", data)
	outstruct := new(RootAtOutput)
	if err != nil {
		return *outstruct, err
	}
	outstruct.Root = *abi.ConvertType(out[0], new([32]byte)).(*[32]byte)
	outstruct.Timestamp = *abi.ConvertType(out[1], new(uint64)).(*uint64)
	return *outstruct, nil
}

// PackSetAnchorer is the Go binding used to pack the parameters required for calling
// the contract method with ID 0x0e0ab0a1.  This method will panic if any
// invalid/nil inputs are passed.
//
// Solidity: function setAnchorer(address newAnchorer) returns()
func (auditAnchor *AuditAnchor) PackSetAnchorer(newAnchorer common.Address) []byte {
	enc, err := auditAnchor.abi.Pack("setAnchorer", newAnchorer)
	if err != nil {
		panic(err)
	}
	return enc
}

// TryPackSetAnchorer is the Go binding used to pack the parameters required for calling
// the contract method with ID 0x0e0ab0a1.  This method will return an error
// if any inputs are invalid/nil.
//
// Solidity: function setAnchorer(address newAnchorer) returns()
func (auditAnchor *AuditAnchor) TryPackSetAnchorer(newAnchorer common.Address) ([]byte, error) {
	return auditAnchor.abi.Pack("setAnchorer", newAnchorer)
}

// PackTransferOwnership is the Go binding used to pack the parameters required for calling
// the contract method with ID 0xf2fde38b.  This method will panic if any
// invalid/nil inputs are passed.
//
// Solidity: function transferOwnership(address newOwner) returns()
func (auditAnchor *AuditAnchor) PackTransferOwnership(newOwner common.Address) []byte {
	enc, err := auditAnchor.abi.Pack("transferOwnership", newOwner)
	if err != nil {
		panic(err)
	}
	return enc
}

// TryPackTransferOwnership is the Go binding used to pack the parameters required for calling
// the contract method with ID 0xf2fde38b.  This method will return an error
// if any inputs are invalid/nil.
//
// Solidity: function transferOwnership(address newOwner) returns()
func (auditAnchor *AuditAnchor) TryPackTransferOwnership(newOwner common.Address) ([]byte, error) {
	return auditAnchor.abi.Pack("transferOwnership", newOwner)
}

// AuditAnchorAnchored represents a Anchored event raised by the AuditAnchor contract.
type AuditAnchorAnchored struct {
	TreeSize uint64
	Root     [32]byte
	Raw      *types.Log // Blockchain specific contextual infos
}

const AuditAnchorAnchoredEventName = "Anchored"

// ContractEventName returns the user-defined event name.
func (AuditAnchorAnchored) ContractEventName() string {
	return AuditAnchorAnchoredEventName
}

// UnpackAnchoredEvent is the Go binding that unpacks the event data emitted
// by contract.
//
// Solidity: event Anchored(uint64 indexed treeSize, bytes32 root)
func (auditAnchor *AuditAnchor) UnpackAnchoredEvent(log *types.Log) (*AuditAnchorAnchored, error) {
	event := "Anchored"
	if len(log.Topics) == 0 {
		return nil, bind.ErrNoEventSignature
	}
	if log.Topics[0] != auditAnchor.abi.Events[event].ID {
		return nil, bind.ErrEventSignatureMismatch
	}
	out := new(AuditAnchorAnchored)
	if len(log.Data) > 0 {
		if err := auditAnchor.abi.UnpackIntoInterface(out, event, log.Data); err != nil {
			return nil, err
		}
	}
	var indexed abi.Arguments
	for _, arg := range auditAnchor.abi.Events[event].Inputs {
		if arg.Indexed {
			indexed = append(indexed, arg)
		}
	}
	if err := abi.ParseTopics(out, indexed, log.Topics[1:]); err != nil {
		return nil, err
	}
	out.Raw = log
	return out, nil
}

// AuditAnchorAnchorerChanged represents a AnchorerChanged event raised by the AuditAnchor contract.
type AuditAnchorAnchorerChanged struct {
	PreviousAnchorer common.Address
	NewAnchorer      common.Address
	Raw              *types.Log // Blockchain specific contextual infos
}

const AuditAnchorAnchorerChangedEventName = "AnchorerChanged"

// ContractEventName returns the user-defined event name.
func (AuditAnchorAnchorerChanged) ContractEventName() string {
	return AuditAnchorAnchorerChangedEventName
}

// UnpackAnchorerChangedEvent is the Go binding that unpacks the event data emitted
// by contract.
//
// Solidity: event AnchorerChanged(address indexed previousAnchorer, address indexed newAnchorer)
func (auditAnchor *AuditAnchor) UnpackAnchorerChangedEvent(log *types.Log) (*AuditAnchorAnchorerChanged, error) {
	event := "AnchorerChanged"
	if len(log.Topics) == 0 {
		return nil, bind.ErrNoEventSignature
	}
	if log.Topics[0] != auditAnchor.abi.Events[event].ID {
		return nil, bind.ErrEventSignatureMismatch
	}
	out := new(AuditAnchorAnchorerChanged)
	if len(log.Data) > 0 {
		if err := auditAnchor.abi.UnpackIntoInterface(out, event, log.Data); err != nil {
			return nil, err
		}
	}
	var indexed abi.Arguments
	for _, arg := range auditAnchor.abi.Events[event].Inputs {
		if arg.Indexed {
			indexed = append(indexed, arg)
		}
	}
	if err := abi.ParseTopics(out, indexed, log.Topics[1:]); err != nil {
		return nil, err
	}
	out.Raw = log
	return out, nil
}

// AuditAnchorOwnershipTransferred represents a OwnershipTransferred event raised by the AuditAnchor contract.
type AuditAnchorOwnershipTransferred struct {
	PreviousOwner common.Address
	NewOwner      common.Address
	Raw           *types.Log // Blockchain specific contextual infos
}

const AuditAnchorOwnershipTransferredEventName = "OwnershipTransferred"

// ContractEventName returns the user-defined event name.
func (AuditAnchorOwnershipTransferred) ContractEventName() string {
	return AuditAnchorOwnershipTransferredEventName
}

// UnpackOwnershipTransferredEvent is the Go binding that unpacks the event data emitted
// by contract.
//
// Solidity: event OwnershipTransferred(address indexed previousOwner, address indexed newOwner)
func (auditAnchor *AuditAnchor) UnpackOwnershipTransferredEvent(log *types.Log) (*AuditAnchorOwnershipTransferred, error) {
	event := "OwnershipTransferred"
	if len(log.Topics) == 0 {
		return nil, bind.ErrNoEventSignature
	}
	if log.Topics[0] != auditAnchor.abi.Events[event].ID {
		return nil, bind.ErrEventSignatureMismatch
	}
	out := new(AuditAnchorOwnershipTransferred)
	if len(log.Data) > 0 {
		if err := auditAnchor.abi.UnpackIntoInterface(out, event, log.Data); err != nil {
			return nil, err
		}
	}
	var indexed abi.Arguments
	for _, arg := range auditAnchor.abi.Events[event].Inputs {
		if arg.Indexed {
			indexed = append(indexed, arg)
		}
	}
	if err := abi.ParseTopics(out, indexed, log.Topics[1:]); err != nil {
		return nil, err
	}
	out.Raw = log
	return out, nil
}

// UnpackError attempts to decode the provided error data using user-defined
// error definitions.
func (auditAnchor *AuditAnchor) UnpackError(raw []byte) (any, error) {
	if bytes.Equal(raw[:4], auditAnchor.abi.Errors["NoSuchCheckpoint"].ID.Bytes()[:4]) {
		return auditAnchor.UnpackNoSuchCheckpointError(raw[4:])
	}
	if bytes.Equal(raw[:4], auditAnchor.abi.Errors["NotAnchorer"].ID.Bytes()[:4]) {
		return auditAnchor.UnpackNotAnchorerError(raw[4:])
	}
	if bytes.Equal(raw[:4], auditAnchor.abi.Errors["NotOwner"].ID.Bytes()[:4]) {
		return auditAnchor.UnpackNotOwnerError(raw[4:])
	}
	if bytes.Equal(raw[:4], auditAnchor.abi.Errors["PreviousRootMismatch"].ID.Bytes()[:4]) {
		return auditAnchor.UnpackPreviousRootMismatchError(raw[4:])
	}
	if bytes.Equal(raw[:4], auditAnchor.abi.Errors["ProofLengthMismatch"].ID.Bytes()[:4]) {
		return auditAnchor.UnpackProofLengthMismatchError(raw[4:])
	}
	if bytes.Equal(raw[:4], auditAnchor.abi.Errors["RootMismatch"].ID.Bytes()[:4]) {
		return auditAnchor.UnpackRootMismatchError(raw[4:])
	}
	if bytes.Equal(raw[:4], auditAnchor.abi.Errors["TreeSizeNotIncreasing"].ID.Bytes()[:4]) {
		return auditAnchor.UnpackTreeSizeNotIncreasingError(raw[4:])
	}
	if bytes.Equal(raw[:4], auditAnchor.abi.Errors["ZeroAddress"].ID.Bytes()[:4]) {
		return auditAnchor.UnpackZeroAddressError(raw[4:])
	}
	if bytes.Equal(raw[:4], auditAnchor.abi.Errors["ZeroRoot"].ID.Bytes()[:4]) {
		return auditAnchor.UnpackZeroRootError(raw[4:])
	}
	return nil, errors.New("Unknown error")
}

// AuditAnchorNoSuchCheckpoint represents a NoSuchCheckpoint error raised by the AuditAnchor contract.
type AuditAnchorNoSuchCheckpoint struct {
	Index *big.Int
}

// ErrorID returns the hash of canonical representation of the error's signature.
//
// Solidity: error NoSuchCheckpoint(uint256 index)
func AuditAnchorNoSuchCheckpointErrorID() common.Hash {
	return common.HexToHash("0xaa516f8acd31522b296525d40a51c8c322d9f2688ab0dc627f590ffad6025039")
}

// UnpackNoSuchCheckpointError is the Go binding used to decode the provided
// error data into the corresponding Go error struct.
//
// Solidity: error NoSuchCheckpoint(uint256 index)
func (auditAnchor *AuditAnchor) UnpackNoSuchCheckpointError(raw []byte) (*AuditAnchorNoSuchCheckpoint, error) {
	out := new(AuditAnchorNoSuchCheckpoint)
	if err := auditAnchor.abi.UnpackIntoInterface(out, "NoSuchCheckpoint", raw); err != nil {
		return nil, err
	}
	return out, nil
}

// AuditAnchorNotAnchorer represents a NotAnchorer error raised by the AuditAnchor contract.
type AuditAnchorNotAnchorer struct {
	Caller common.Address
}

// ErrorID returns the hash of canonical representation of the error's signature.
//
// Solidity: error NotAnchorer(address caller)
func AuditAnchorNotAnchorerErrorID() common.Hash {
	return common.HexToHash("0x0e5e5f6fb7b58e86a564686afc7a504f61673ce48074764f6af98ea30d68fcd6")
}

// UnpackNotAnchorerError is the Go binding used to decode the provided
// error data into the corresponding Go error struct.
//
// Solidity: error NotAnchorer(address caller)
func (auditAnchor *AuditAnchor) UnpackNotAnchorerError(raw []byte) (*AuditAnchorNotAnchorer, error) {
	out := new(AuditAnchorNotAnchorer)
	if err := auditAnchor.abi.UnpackIntoInterface(out, "NotAnchorer", raw); err != nil {
		return nil, err
	}
	return out, nil
}

// AuditAnchorNotOwner represents a NotOwner error raised by the AuditAnchor contract.
type AuditAnchorNotOwner struct {
	Caller common.Address
}

// ErrorID returns the hash of canonical representation of the error's signature.
//
// Solidity: error NotOwner(address caller)
func AuditAnchorNotOwnerErrorID() common.Hash {
	return common.HexToHash("0x245aecd3fabbd17d6c3c92dc7f0ab916ea8cbf6fc1862c8b56893090ac3fff4c")
}

// UnpackNotOwnerError is the Go binding used to decode the provided
// error data into the corresponding Go error struct.
//
// Solidity: error NotOwner(address caller)
func (auditAnchor *AuditAnchor) UnpackNotOwnerError(raw []byte) (*AuditAnchorNotOwner, error) {
	out := new(AuditAnchorNotOwner)
	if err := auditAnchor.abi.UnpackIntoInterface(out, "NotOwner", raw); err != nil {
		return nil, err
	}
	return out, nil
}

// AuditAnchorPreviousRootMismatch represents a PreviousRootMismatch error raised by the AuditAnchor contract.
type AuditAnchorPreviousRootMismatch struct {
	Computed [32]byte
}

// ErrorID returns the hash of canonical representation of the error's signature.
//
// Solidity: error PreviousRootMismatch(bytes32 computed)
func AuditAnchorPreviousRootMismatchErrorID() common.Hash {
	return common.HexToHash("0xf74ebdd7efa8711d1cac4fbce0d95dd06038e33202d1a7e3181a6251da50ca47")
}

// UnpackPreviousRootMismatchError is the Go binding used to decode the provided
// error data into the corresponding Go error struct.
//
// Solidity: error PreviousRootMismatch(bytes32 computed)
func (auditAnchor *AuditAnchor) UnpackPreviousRootMismatchError(raw []byte) (*AuditAnchorPreviousRootMismatch, error) {
	out := new(AuditAnchorPreviousRootMismatch)
	if err := auditAnchor.abi.UnpackIntoInterface(out, "PreviousRootMismatch", raw); err != nil {
		return nil, err
	}
	return out, nil
}

// AuditAnchorProofLengthMismatch represents a ProofLengthMismatch error raised by the AuditAnchor contract.
type AuditAnchorProofLengthMismatch struct {
	Expected *big.Int
	Actual   *big.Int
}

// ErrorID returns the hash of canonical representation of the error's signature.
//
// Solidity: error ProofLengthMismatch(uint256 expected, uint256 actual)
func AuditAnchorProofLengthMismatchErrorID() common.Hash {
	return common.HexToHash("0x74cfd446829961a630469f719dae7632f3a178e0c4977acb7110dcdfeaec5f15")
}

// UnpackProofLengthMismatchError is the Go binding used to decode the provided
// error data into the corresponding Go error struct.
//
// Solidity: error ProofLengthMismatch(uint256 expected, uint256 actual)
func (auditAnchor *AuditAnchor) UnpackProofLengthMismatchError(raw []byte) (*AuditAnchorProofLengthMismatch, error) {
	out := new(AuditAnchorProofLengthMismatch)
	if err := auditAnchor.abi.UnpackIntoInterface(out, "ProofLengthMismatch", raw); err != nil {
		return nil, err
	}
	return out, nil
}

// AuditAnchorRootMismatch represents a RootMismatch error raised by the AuditAnchor contract.
type AuditAnchorRootMismatch struct {
	Computed [32]byte
}

// ErrorID returns the hash of canonical representation of the error's signature.
//
// Solidity: error RootMismatch(bytes32 computed)
func AuditAnchorRootMismatchErrorID() common.Hash {
	return common.HexToHash("0x7388a4161c6a9af9cb6688bba939fe3e32a92ddc2c3753ef8736c91f80c0b080")
}

// UnpackRootMismatchError is the Go binding used to decode the provided
// error data into the corresponding Go error struct.
//
// Solidity: error RootMismatch(bytes32 computed)
func (auditAnchor *AuditAnchor) UnpackRootMismatchError(raw []byte) (*AuditAnchorRootMismatch, error) {
	out := new(AuditAnchorRootMismatch)
	if err := auditAnchor.abi.UnpackIntoInterface(out, "RootMismatch", raw); err != nil {
		return nil, err
	}
	return out, nil
}

// AuditAnchorTreeSizeNotIncreasing represents a TreeSizeNotIncreasing error raised by the AuditAnchor contract.
type AuditAnchorTreeSizeNotIncreasing struct {
	LatestTreeSize uint64
	TreeSize       uint64
}

// ErrorID returns the hash of canonical representation of the error's signature.
//
// Solidity: error TreeSizeNotIncreasing(uint64 latestTreeSize, uint64 treeSize)
func AuditAnchorTreeSizeNotIncreasingErrorID() common.Hash {
	return common.HexToHash("0x52d232b1191c78c6e56160fffa0355f32da05a7aea153e309a6eb47ed1323acb")
}

// UnpackTreeSizeNotIncreasingError is the Go binding used to decode the provided
// error data into the corresponding Go error struct.
//
// Solidity: error TreeSizeNotIncreasing(uint64 latestTreeSize, uint64 treeSize)
func (auditAnchor *AuditAnchor) UnpackTreeSizeNotIncreasingError(raw []byte) (*AuditAnchorTreeSizeNotIncreasing, error) {
	out := new(AuditAnchorTreeSizeNotIncreasing)
	if err := auditAnchor.abi.UnpackIntoInterface(out, "TreeSizeNotIncreasing", raw); err != nil {
		return nil, err
	}
	return out, nil
}

// AuditAnchorZeroAddress represents a ZeroAddress error raised by the AuditAnchor contract.
type AuditAnchorZeroAddress struct {
}

// ErrorID returns the hash of canonical representation of the error's signature.
//
// Solidity: error ZeroAddress()
func AuditAnchorZeroAddressErrorID() common.Hash {
	return common.HexToHash("0xd92e233df2717d4a40030e20904abd27b68fcbeede117eaaccbbdac9618c8c73")
}

// UnpackZeroAddressError is the Go binding used to decode the provided
// error data into the corresponding Go error struct.
//
// Solidity: error ZeroAddress()
func (auditAnchor *AuditAnchor) UnpackZeroAddressError(raw []byte) (*AuditAnchorZeroAddress, error) {
	out := new(AuditAnchorZeroAddress)
	if err := auditAnchor.abi.UnpackIntoInterface(out, "ZeroAddress", raw); err != nil {
		return nil, err
	}
	return out, nil
}

// AuditAnchorZeroRoot represents a ZeroRoot error raised by the AuditAnchor contract.
type AuditAnchorZeroRoot struct {
}

// ErrorID returns the hash of canonical representation of the error's signature.
//
// Solidity: error ZeroRoot()
func AuditAnchorZeroRootErrorID() common.Hash {
	return common.HexToHash("0xb263ae738e814ca9af6ee56bb85daa47624e790421913c947dcba2aac07cfdbd")
}

// UnpackZeroRootError is the Go binding used to decode the provided
// error data into the corresponding Go error struct.
//
// Solidity: error ZeroRoot()
func (auditAnchor *AuditAnchor) UnpackZeroRootError(raw []byte) (*AuditAnchorZeroRoot, error) {
	out := new(AuditAnchorZeroRoot)
	if err := auditAnchor.abi.UnpackIntoInterface(out, "ZeroRoot", raw); err != nil {
		return nil, err
	}
	return out, nil
}
