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

// ConsentRegistryMetaData contains all meta data concerning the ConsentRegistry contract.
var ConsentRegistryMetaData = bind.MetaData{
	ABI: "[{\"inputs\":[],\"stateMutability\":\"nonpayable\",\"type\":\"constructor\"},{\"inputs\":[{\"internalType\":\"uint64\",\"name\":\"expiry\",\"type\":\"uint64\"}],\"name\":\"ExpiryNotInFuture\",\"type\":\"error\"},{\"inputs\":[],\"name\":\"InvalidSignature\",\"type\":\"error\"},{\"inputs\":[{\"internalType\":\"uint256\",\"name\":\"length\",\"type\":\"uint256\"}],\"name\":\"InvalidSignatureLength\",\"type\":\"error\"},{\"inputs\":[{\"internalType\":\"bytes32\",\"name\":\"s\",\"type\":\"bytes32\"}],\"name\":\"InvalidSignatureS\",\"type\":\"error\"},{\"inputs\":[{\"internalType\":\"uint8\",\"name\":\"v\",\"type\":\"uint8\"}],\"name\":\"InvalidSignatureV\",\"type\":\"error\"},{\"inputs\":[{\"internalType\":\"address\",\"name\":\"patient\",\"type\":\"address\"},{\"internalType\":\"bytes32\",\"name\":\"grantee\",\"type\":\"bytes32\"},{\"internalType\":\"bytes32\",\"name\":\"scope\",\"type\":\"bytes32\"}],\"name\":\"NoSuchGrant\",\"type\":\"error\"},{\"inputs\":[{\"internalType\":\"uint256\",\"name\":\"deadline\",\"type\":\"uint256\"}],\"name\":\"SignatureExpired\",\"type\":\"error\"},{\"inputs\":[{\"internalType\":\"address\",\"name\":\"recovered\",\"type\":\"address\"},{\"internalType\":\"address\",\"name\":\"patient\",\"type\":\"address\"}],\"name\":\"WrongSigner\",\"type\":\"error\"},{\"inputs\":[],\"name\":\"ZeroGranteeOrScope\",\"type\":\"error\"},{\"anonymous\":false,\"inputs\":[{\"indexed\":true,\"internalType\":\"address\",\"name\":\"patient\",\"type\":\"address\"},{\"indexed\":true,\"internalType\":\"bytes32\",\"name\":\"grantee\",\"type\":\"bytes32\"},{\"indexed\":true,\"internalType\":\"bytes32\",\"name\":\"scope\",\"type\":\"bytes32\"},{\"indexed\":false,\"internalType\":\"uint64\",\"name\":\"expiry\",\"type\":\"uint64\"}],\"name\":\"ConsentGranted\",\"type\":\"event\"},{\"anonymous\":false,\"inputs\":[{\"indexed\":true,\"internalType\":\"address\",\"name\":\"patient\",\"type\":\"address\"},{\"indexed\":true,\"internalType\":\"bytes32\",\"name\":\"grantee\",\"type\":\"bytes32\"},{\"indexed\":true,\"internalType\":\"bytes32\",\"name\":\"scope\",\"type\":\"bytes32\"}],\"name\":\"ConsentRevoked\",\"type\":\"event\"},{\"inputs\":[],\"name\":\"DOMAIN_SEPARATOR\",\"outputs\":[{\"internalType\":\"bytes32\",\"name\":\"\",\"type\":\"bytes32\"}],\"stateMutability\":\"view\",\"type\":\"function\"},{\"inputs\":[],\"name\":\"GRANT_TYPEHASH\",\"outputs\":[{\"internalType\":\"bytes32\",\"name\":\"\",\"type\":\"bytes32\"}],\"stateMutability\":\"view\",\"type\":\"function\"},{\"inputs\":[],\"name\":\"REVOKE_TYPEHASH\",\"outputs\":[{\"internalType\":\"bytes32\",\"name\":\"\",\"type\":\"bytes32\"}],\"stateMutability\":\"view\",\"type\":\"function\"},{\"inputs\":[{\"internalType\":\"address\",\"name\":\"patient\",\"type\":\"address\"},{\"internalType\":\"bytes32\",\"name\":\"grantee\",\"type\":\"bytes32\"},{\"internalType\":\"bytes32\",\"name\":\"scope\",\"type\":\"bytes32\"}],\"name\":\"expiryOf\",\"outputs\":[{\"internalType\":\"uint64\",\"name\":\"\",\"type\":\"uint64\"}],\"stateMutability\":\"view\",\"type\":\"function\"},{\"inputs\":[{\"internalType\":\"bytes32\",\"name\":\"grantee\",\"type\":\"bytes32\"},{\"internalType\":\"bytes32\",\"name\":\"scope\",\"type\":\"bytes32\"},{\"internalType\":\"uint64\",\"name\":\"expiry\",\"type\":\"uint64\"}],\"name\":\"grant\",\"outputs\":[],\"stateMutability\":\"nonpayable\",\"type\":\"function\"},{\"inputs\":[{\"internalType\":\"address\",\"name\":\"patient\",\"type\":\"address\"},{\"internalType\":\"bytes32\",\"name\":\"grantee\",\"type\":\"bytes32\"},{\"internalType\":\"bytes32\",\"name\":\"scope\",\"type\":\"bytes32\"},{\"internalType\":\"uint64\",\"name\":\"expiry\",\"type\":\"uint64\"},{\"internalType\":\"uint256\",\"name\":\"deadline\",\"type\":\"uint256\"},{\"internalType\":\"bytes\",\"name\":\"signature\",\"type\":\"bytes\"}],\"name\":\"grantBySig\",\"outputs\":[],\"stateMutability\":\"nonpayable\",\"type\":\"function\"},{\"inputs\":[{\"internalType\":\"address\",\"name\":\"patient\",\"type\":\"address\"},{\"internalType\":\"bytes32\",\"name\":\"grantee\",\"type\":\"bytes32\"},{\"internalType\":\"bytes32\",\"name\":\"scope\",\"type\":\"bytes32\"}],\"name\":\"isPermitted\",\"outputs\":[{\"internalType\":\"bool\",\"name\":\"\",\"type\":\"bool\"}],\"stateMutability\":\"view\",\"type\":\"function\"},{\"inputs\":[{\"internalType\":\"address\",\"name\":\"patient\",\"type\":\"address\"}],\"name\":\"nonces\",\"outputs\":[{\"internalType\":\"uint256\",\"name\":\"\",\"type\":\"uint256\"}],\"stateMutability\":\"view\",\"type\":\"function\"},{\"inputs\":[{\"internalType\":\"bytes32\",\"name\":\"grantee\",\"type\":\"bytes32\"},{\"internalType\":\"bytes32\",\"name\":\"scope\",\"type\":\"bytes32\"}],\"name\":\"revoke\",\"outputs\":[],\"stateMutability\":\"nonpayable\",\"type\":\"function\"},{\"inputs\":[{\"internalType\":\"address\",\"name\":\"patient\",\"type\":\"address\"},{\"internalType\":\"bytes32\",\"name\":\"grantee\",\"type\":\"bytes32\"},{\"internalType\":\"bytes32\",\"name\":\"scope\",\"type\":\"bytes32\"},{\"internalType\":\"uint256\",\"name\":\"deadline\",\"type\":\"uint256\"},{\"internalType\":\"bytes\",\"name\":\"signature\",\"type\":\"bytes\"}],\"name\":\"revokeBySig\",\"outputs\":[],\"stateMutability\":\"nonpayable\",\"type\":\"function\"}]",
	ID:  "ConsentRegistry",
	Bin: "0x60c060405234801561000f575f5ffd5b50466080526100bb604080517f8b73c3c69bb8fe3d512ecc4cf759cc79239f7b179b0ffacaa9a75d522b39400f60208201527fea088250304dd2ac5af99508831df7972414f9cdea376aecc8833895498c2a71918101919091527fc89efdaa54c0f20c7adf612882df0950f5a951637e0307cdcb4c672f298b8bc660608201524660808201523060a08201525f9060c00160405160208183030381529060405280519060200120905090565b60a05260805160a051610e786100df5f395f61037b01525f6102a70152610e785ff3fe608060405234801561000f575f5ffd5b50600436106100b9575f3560e01c80638a73222711610072578063b532d68711610058578063b532d6871461026b578063c26646101461027e578063c76f896914610291575f5ffd5b80638a732227146101b8578063a18c4439146101df575f5ffd5b80635b04632b116100a25780635b04632b146100ff5780637ecebe00146101145780638159df4914610133575f5ffd5b8063073f5d9f146100bd5780633644e515146100f7575b5f5ffd5b6100e47fb2d2792e723bbce751adef7d80e19c9b86223288a10830f09ccff6819c38fe8481565b6040519081526020015b60405180910390f35b6100e46102a4565b61011261010d366004610c27565b61039d565b005b6100e4610122366004610ca3565b5f6020819052908152604090205481565b6101a8610141366004610cc3565b6040805173ffffffffffffffffffffffffffffffffffffffff949094166020808601919091528482019390935260608085019290925280518085039092018252608090930183528051908201205f9081526001909152205467ffffffffffffffff16421090565b60405190151581526020016100ee565b6100e47f66ec5b0ef7863906005849eeddcdc370cf52a411497234baa8d06a4ebd9f905e81565b6102526101ed366004610cc3565b6040805173ffffffffffffffffffffffffffffffffffffffff949094166020808601919091528482019390935260608085019290925280518085039092018252608090930183528051908201205f9081526001909152205467ffffffffffffffff1690565b60405167ffffffffffffffff90911681526020016100ee565b610112610279366004610cf3565b6104da565b61011261028c366004610d5f565b6105f4565b61011261029f366004610d7f565b610603565b5f7f0000000000000000000000000000000000000000000000000000000000000000461461037857610373604080517f8b73c3c69bb8fe3d512ecc4cf759cc79239f7b179b0ffacaa9a75d522b39400f60208201527fea088250304dd2ac5af99508831df7972414f9cdea376aecc8833895498c2a71918101919091527fc89efdaa54c0f20c7adf612882df0950f5a951637e0307cdcb4c672f298b8bc660608201524660808201523060a08201525f9060c00160405160208183030381529060405280519060200120905090565b905090565b507f000000000000000000000000000000000000000000000000000000000000000090565b8242111583906103e5576040517fcd21db4f0000000000000000000000000000000000000000000000000000000081526004016103dc91815260200190565b60405180910390fd5b5073ffffffffffffffffffffffffffffffffffffffff87165f818152602081815260408083205481517fb2d2792e723bbce751adef7d80e19c9b86223288a10830f09ccff6819c38fe849381019390935290820193909352606081018990526080810188905267ffffffffffffffff871660a082015260c0810183905260e08101869052610100016040516020818303038152906040528051906020012090506104998961049283610614565b8686610675565b73ffffffffffffffffffffffffffffffffffffffff89165f9081526020819052604090206001830190556104cf89898989610903565b505050505050505050565b824211158390610519576040517fcd21db4f0000000000000000000000000000000000000000000000000000000081526004016103dc91815260200190565b5073ffffffffffffffffffffffffffffffffffffffff86165f818152602081815260408083205481517f66ec5b0ef7863906005849eeddcdc370cf52a411497234baa8d06a4ebd9f905e9381019390935290820193909352606081018890526080810187905260a0810183905260c0810186905260e0016040516020818303038152906040528051906020012090506105b58861049283610614565b73ffffffffffffffffffffffffffffffffffffffff88165f9081526020819052604090206001830190556105ea888888610a61565b5050505050505050565b6105ff338383610a61565b5050565b61060f33848484610903565b505050565b5f61061d6102a4565b6040517f19010000000000000000000000000000000000000000000000000000000000006020820152602281019190915260428101839052606201604051602081830303815290604052805190602001209050919050565b80604181146106b3576040517f2c33b5680000000000000000000000000000000000000000000000000000000081526004016103dc91815260200190565b505f6106c26020828486610db1565b6106cb91610dd8565b90505f6106dc604060208587610db1565b6106e591610dd8565b90505f848460408181106106fb576106fb610e15565b919091013560f81c91508290507f7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0811115610765576040517f5682f3bf0000000000000000000000000000000000000000000000000000000081526004016103dc91815260200190565b508060ff16601b148061077b57508060ff16601c145b81906107b9576040517fba76ff0200000000000000000000000000000000000000000000000000000000815260ff90911660048201526024016103dc565b50604080515f8082526020820180845289905260ff841692820192909252606081018590526080810184905260019060a0016020604051602081039080840390855afa15801561080b573d5f5f3e3d5ffd5b50506040517fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffe0015191505073ffffffffffffffffffffffffffffffffffffffff8116610883576040517f8baa579f00000000000000000000000000000000000000000000000000000000815260040160405180910390fd5b808873ffffffffffffffffffffffffffffffffffffffff828116908216146108f7576040517f366d29f700000000000000000000000000000000000000000000000000000000815273ffffffffffffffffffffffffffffffffffffffff9283166004820152911660248201526044016103dc565b50505050505050505050565b821580159061091157508115155b610947576040517f3217be1e00000000000000000000000000000000000000000000000000000000815260040160405180910390fd5b804267ffffffffffffffff821611610998576040517f8d499f7d00000000000000000000000000000000000000000000000000000000815267ffffffffffffffff90911660048201526024016103dc565b506040805173ffffffffffffffffffffffffffffffffffffffff86166020808301829052828401879052606080840187905284518085039091018152608084018086528151918301919091205f908152600190925290849020805467ffffffffffffffff87167fffffffffffffffffffffffffffffffffffffffffffffffff00000000000000009091168117909155905291518492869290917feb5fa7e22ffbbaee1c7cedd5925031cb7a942d1b5ee3c09d738c29112d5f785d9181900360a00190a450505050565b6040805173ffffffffffffffffffffffffffffffffffffffff8516602080830191909152818301859052606080830185905283518084039091018152608090920183528151918101919091205f81815260019092529190205484908490849067ffffffffffffffff16610b26576040517f3fb7455200000000000000000000000000000000000000000000000000000000815273ffffffffffffffffffffffffffffffffffffffff9093166004840152602483019190915260448201526064016103dc565b5050505f8181526001602052604080822080547fffffffffffffffffffffffffffffffffffffffffffffffff0000000000000000169055518391859173ffffffffffffffffffffffffffffffffffffffff8816917faab5df7ce2fd5a6396ce593b2b2afdc936765eb280e78f926b562d7236f7714f91a450505050565b803573ffffffffffffffffffffffffffffffffffffffff81168114610bc6575f5ffd5b919050565b803567ffffffffffffffff81168114610bc6575f5ffd5b5f5f83601f840112610bf2575f5ffd5b50813567ffffffffffffffff811115610c09575f5ffd5b602083019150836020828501011115610c20575f5ffd5b9250929050565b5f5f5f5f5f5f5f60c0888a031215610c3d575f5ffd5b610c4688610ba3565b96506020880135955060408801359450610c6260608901610bcb565b93506080880135925060a088013567ffffffffffffffff811115610c84575f5ffd5b610c908a828b01610be2565b989b979a50959850939692959293505050565b5f60208284031215610cb3575f5ffd5b610cbc82610ba3565b9392505050565b5f5f5f60608486031215610cd5575f5ffd5b610cde84610ba3565b95602085013595506040909401359392505050565b5f5f5f5f5f5f60a08789031215610d08575f5ffd5b610d1187610ba3565b9550602087013594506040870135935060608701359250608087013567ffffffffffffffff811115610d41575f5ffd5b610d4d89828a01610be2565b979a9699509497509295939492505050565b5f5f60408385031215610d70575f5ffd5b50508035926020909101359150565b5f5f5f60608486031215610d91575f5ffd5b8335925060208401359150610da860408501610bcb565b90509250925092565b5f5f85851115610dbf575f5ffd5b83861115610dcb575f5ffd5b5050820193919092039150565b80356020831015610e0f577fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff602084900360031b1b165b92915050565b7f4e487b71000000000000000000000000000000000000000000000000000000005f52603260045260245ffdfea2646970667358221220100cef140b8c1197f1bed2710aeb27f972a309cd9e5226f28e53b309d891010f64736f6c63430008250033",
}

// ConsentRegistry is an auto generated Go binding around an Ethereum contract.
type ConsentRegistry struct {
	abi abi.ABI
}

// GetABI returns the ABI associated with this contract binding.
func (c *ConsentRegistry) GetABI() abi.ABI {
	return c.abi
}

// NewConsentRegistry creates a new instance of ConsentRegistry.
func NewConsentRegistry() *ConsentRegistry {
	parsed, err := ConsentRegistryMetaData.ParseABI()
	if err != nil {
		panic(errors.New("invalid ABI: " + err.Error()))
	}
	return &ConsentRegistry{abi: *parsed}
}

// Instance creates a wrapper for a deployed contract instance at the given address.
// Use this to create the instance object passed to abigen v2 library functions Call, Transact, etc.
func (c *ConsentRegistry) Instance(backend bind.ContractBackend, addr common.Address) *bind.BoundContract {
	return bind.NewBoundContract(addr, c.abi, backend, backend, backend)
}

// PackDOMAINSEPARATOR is the Go binding used to pack the parameters required for calling
// the contract method with ID 0x3644e515.  This method will panic if any
// invalid/nil inputs are passed.
//
// Solidity: function DOMAIN_SEPARATOR() view returns(bytes32)
func (consentRegistry *ConsentRegistry) PackDOMAINSEPARATOR() []byte {
	enc, err := consentRegistry.abi.Pack("DOMAIN_SEPARATOR")
	if err != nil {
		panic(err)
	}
	return enc
}

// TryPackDOMAINSEPARATOR is the Go binding used to pack the parameters required for calling
// the contract method with ID 0x3644e515.  This method will return an error
// if any inputs are invalid/nil.
//
// Solidity: function DOMAIN_SEPARATOR() view returns(bytes32)
func (consentRegistry *ConsentRegistry) TryPackDOMAINSEPARATOR() ([]byte, error) {
	return consentRegistry.abi.Pack("DOMAIN_SEPARATOR")
}

// UnpackDOMAINSEPARATOR is the Go binding that unpacks the parameters returned
// from invoking the contract method with ID 0x3644e515.
//
// Solidity: function DOMAIN_SEPARATOR() view returns(bytes32)
func (consentRegistry *ConsentRegistry) UnpackDOMAINSEPARATOR(data []byte) ([32]byte, error) {
	out, err := consentRegistry.abi.Unpack("DOMAIN_SEPARATOR", data)
	if err != nil {
		return *new([32]byte), err
	}
	out0 := *abi.ConvertType(out[0], new([32]byte)).(*[32]byte)
	return out0, nil
}

// PackGRANTTYPEHASH is the Go binding used to pack the parameters required for calling
// the contract method with ID 0x073f5d9f.  This method will panic if any
// invalid/nil inputs are passed.
//
// Solidity: function GRANT_TYPEHASH() view returns(bytes32)
func (consentRegistry *ConsentRegistry) PackGRANTTYPEHASH() []byte {
	enc, err := consentRegistry.abi.Pack("GRANT_TYPEHASH")
	if err != nil {
		panic(err)
	}
	return enc
}

// TryPackGRANTTYPEHASH is the Go binding used to pack the parameters required for calling
// the contract method with ID 0x073f5d9f.  This method will return an error
// if any inputs are invalid/nil.
//
// Solidity: function GRANT_TYPEHASH() view returns(bytes32)
func (consentRegistry *ConsentRegistry) TryPackGRANTTYPEHASH() ([]byte, error) {
	return consentRegistry.abi.Pack("GRANT_TYPEHASH")
}

// UnpackGRANTTYPEHASH is the Go binding that unpacks the parameters returned
// from invoking the contract method with ID 0x073f5d9f.
//
// Solidity: function GRANT_TYPEHASH() view returns(bytes32)
func (consentRegistry *ConsentRegistry) UnpackGRANTTYPEHASH(data []byte) ([32]byte, error) {
	out, err := consentRegistry.abi.Unpack("GRANT_TYPEHASH", data)
	if err != nil {
		return *new([32]byte), err
	}
	out0 := *abi.ConvertType(out[0], new([32]byte)).(*[32]byte)
	return out0, nil
}

// PackREVOKETYPEHASH is the Go binding used to pack the parameters required for calling
// the contract method with ID 0x8a732227.  This method will panic if any
// invalid/nil inputs are passed.
//
// Solidity: function REVOKE_TYPEHASH() view returns(bytes32)
func (consentRegistry *ConsentRegistry) PackREVOKETYPEHASH() []byte {
	enc, err := consentRegistry.abi.Pack("REVOKE_TYPEHASH")
	if err != nil {
		panic(err)
	}
	return enc
}

// TryPackREVOKETYPEHASH is the Go binding used to pack the parameters required for calling
// the contract method with ID 0x8a732227.  This method will return an error
// if any inputs are invalid/nil.
//
// Solidity: function REVOKE_TYPEHASH() view returns(bytes32)
func (consentRegistry *ConsentRegistry) TryPackREVOKETYPEHASH() ([]byte, error) {
	return consentRegistry.abi.Pack("REVOKE_TYPEHASH")
}

// UnpackREVOKETYPEHASH is the Go binding that unpacks the parameters returned
// from invoking the contract method with ID 0x8a732227.
//
// Solidity: function REVOKE_TYPEHASH() view returns(bytes32)
func (consentRegistry *ConsentRegistry) UnpackREVOKETYPEHASH(data []byte) ([32]byte, error) {
	out, err := consentRegistry.abi.Unpack("REVOKE_TYPEHASH", data)
	if err != nil {
		return *new([32]byte), err
	}
	out0 := *abi.ConvertType(out[0], new([32]byte)).(*[32]byte)
	return out0, nil
}

// PackExpiryOf is the Go binding used to pack the parameters required for calling
// the contract method with ID 0xa18c4439.  This method will panic if any
// invalid/nil inputs are passed.
//
// Solidity: function expiryOf(address patient, bytes32 grantee, bytes32 scope) view returns(uint64)
func (consentRegistry *ConsentRegistry) PackExpiryOf(patient common.Address, grantee [32]byte, scope [32]byte) []byte {
	enc, err := consentRegistry.abi.Pack("expiryOf", patient, grantee, scope)
	if err != nil {
		panic(err)
	}
	return enc
}

// TryPackExpiryOf is the Go binding used to pack the parameters required for calling
// the contract method with ID 0xa18c4439.  This method will return an error
// if any inputs are invalid/nil.
//
// Solidity: function expiryOf(address patient, bytes32 grantee, bytes32 scope) view returns(uint64)
func (consentRegistry *ConsentRegistry) TryPackExpiryOf(patient common.Address, grantee [32]byte, scope [32]byte) ([]byte, error) {
	return consentRegistry.abi.Pack("expiryOf", patient, grantee, scope)
}

// UnpackExpiryOf is the Go binding that unpacks the parameters returned
// from invoking the contract method with ID 0xa18c4439.
//
// Solidity: function expiryOf(address patient, bytes32 grantee, bytes32 scope) view returns(uint64)
func (consentRegistry *ConsentRegistry) UnpackExpiryOf(data []byte) (uint64, error) {
	out, err := consentRegistry.abi.Unpack("expiryOf", data)
	if err != nil {
		return *new(uint64), err
	}
	out0 := *abi.ConvertType(out[0], new(uint64)).(*uint64)
	return out0, nil
}

// PackGrant is the Go binding used to pack the parameters required for calling
// the contract method with ID 0xc76f8969.  This method will panic if any
// invalid/nil inputs are passed.
//
// Solidity: function grant(bytes32 grantee, bytes32 scope, uint64 expiry) returns()
func (consentRegistry *ConsentRegistry) PackGrant(grantee [32]byte, scope [32]byte, expiry uint64) []byte {
	enc, err := consentRegistry.abi.Pack("grant", grantee, scope, expiry)
	if err != nil {
		panic(err)
	}
	return enc
}

// TryPackGrant is the Go binding used to pack the parameters required for calling
// the contract method with ID 0xc76f8969.  This method will return an error
// if any inputs are invalid/nil.
//
// Solidity: function grant(bytes32 grantee, bytes32 scope, uint64 expiry) returns()
func (consentRegistry *ConsentRegistry) TryPackGrant(grantee [32]byte, scope [32]byte, expiry uint64) ([]byte, error) {
	return consentRegistry.abi.Pack("grant", grantee, scope, expiry)
}

// PackGrantBySig is the Go binding used to pack the parameters required for calling
// the contract method with ID 0x5b04632b.  This method will panic if any
// invalid/nil inputs are passed.
//
// Solidity: function grantBySig(address patient, bytes32 grantee, bytes32 scope, uint64 expiry, uint256 deadline, bytes signature) returns()
func (consentRegistry *ConsentRegistry) PackGrantBySig(patient common.Address, grantee [32]byte, scope [32]byte, expiry uint64, deadline *big.Int, signature []byte) []byte {
	enc, err := consentRegistry.abi.Pack("grantBySig", patient, grantee, scope, expiry, deadline, signature)
	if err != nil {
		panic(err)
	}
	return enc
}

// TryPackGrantBySig is the Go binding used to pack the parameters required for calling
// the contract method with ID 0x5b04632b.  This method will return an error
// if any inputs are invalid/nil.
//
// Solidity: function grantBySig(address patient, bytes32 grantee, bytes32 scope, uint64 expiry, uint256 deadline, bytes signature) returns()
func (consentRegistry *ConsentRegistry) TryPackGrantBySig(patient common.Address, grantee [32]byte, scope [32]byte, expiry uint64, deadline *big.Int, signature []byte) ([]byte, error) {
	return consentRegistry.abi.Pack("grantBySig", patient, grantee, scope, expiry, deadline, signature)
}

// PackIsPermitted is the Go binding used to pack the parameters required for calling
// the contract method with ID 0x8159df49.  This method will panic if any
// invalid/nil inputs are passed.
//
// Solidity: function isPermitted(address patient, bytes32 grantee, bytes32 scope) view returns(bool)
func (consentRegistry *ConsentRegistry) PackIsPermitted(patient common.Address, grantee [32]byte, scope [32]byte) []byte {
	enc, err := consentRegistry.abi.Pack("isPermitted", patient, grantee, scope)
	if err != nil {
		panic(err)
	}
	return enc
}

// TryPackIsPermitted is the Go binding used to pack the parameters required for calling
// the contract method with ID 0x8159df49.  This method will return an error
// if any inputs are invalid/nil.
//
// Solidity: function isPermitted(address patient, bytes32 grantee, bytes32 scope) view returns(bool)
func (consentRegistry *ConsentRegistry) TryPackIsPermitted(patient common.Address, grantee [32]byte, scope [32]byte) ([]byte, error) {
	return consentRegistry.abi.Pack("isPermitted", patient, grantee, scope)
}

// UnpackIsPermitted is the Go binding that unpacks the parameters returned
// from invoking the contract method with ID 0x8159df49.
//
// Solidity: function isPermitted(address patient, bytes32 grantee, bytes32 scope) view returns(bool)
func (consentRegistry *ConsentRegistry) UnpackIsPermitted(data []byte) (bool, error) {
	out, err := consentRegistry.abi.Unpack("isPermitted", data)
	if err != nil {
		return *new(bool), err
	}
	out0 := *abi.ConvertType(out[0], new(bool)).(*bool)
	return out0, nil
}

// PackNonces is the Go binding used to pack the parameters required for calling
// the contract method with ID 0x7ecebe00.  This method will panic if any
// invalid/nil inputs are passed.
//
// Solidity: function nonces(address patient) view returns(uint256)
func (consentRegistry *ConsentRegistry) PackNonces(patient common.Address) []byte {
	enc, err := consentRegistry.abi.Pack("nonces", patient)
	if err != nil {
		panic(err)
	}
	return enc
}

// TryPackNonces is the Go binding used to pack the parameters required for calling
// the contract method with ID 0x7ecebe00.  This method will return an error
// if any inputs are invalid/nil.
//
// Solidity: function nonces(address patient) view returns(uint256)
func (consentRegistry *ConsentRegistry) TryPackNonces(patient common.Address) ([]byte, error) {
	return consentRegistry.abi.Pack("nonces", patient)
}

// UnpackNonces is the Go binding that unpacks the parameters returned
// from invoking the contract method with ID 0x7ecebe00.
//
// Solidity: function nonces(address patient) view returns(uint256)
func (consentRegistry *ConsentRegistry) UnpackNonces(data []byte) (*big.Int, error) {
	out, err := consentRegistry.abi.Unpack("nonces", data)
	if err != nil {
		return new(big.Int), err
	}
	out0 := abi.ConvertType(out[0], new(big.Int)).(*big.Int)
	return out0, nil
}

// PackRevoke is the Go binding used to pack the parameters required for calling
// the contract method with ID 0xc2664610.  This method will panic if any
// invalid/nil inputs are passed.
//
// Solidity: function revoke(bytes32 grantee, bytes32 scope) returns()
func (consentRegistry *ConsentRegistry) PackRevoke(grantee [32]byte, scope [32]byte) []byte {
	enc, err := consentRegistry.abi.Pack("revoke", grantee, scope)
	if err != nil {
		panic(err)
	}
	return enc
}

// TryPackRevoke is the Go binding used to pack the parameters required for calling
// the contract method with ID 0xc2664610.  This method will return an error
// if any inputs are invalid/nil.
//
// Solidity: function revoke(bytes32 grantee, bytes32 scope) returns()
func (consentRegistry *ConsentRegistry) TryPackRevoke(grantee [32]byte, scope [32]byte) ([]byte, error) {
	return consentRegistry.abi.Pack("revoke", grantee, scope)
}

// PackRevokeBySig is the Go binding used to pack the parameters required for calling
// the contract method with ID 0xb532d687.  This method will panic if any
// invalid/nil inputs are passed.
//
// Solidity: function revokeBySig(address patient, bytes32 grantee, bytes32 scope, uint256 deadline, bytes signature) returns()
func (consentRegistry *ConsentRegistry) PackRevokeBySig(patient common.Address, grantee [32]byte, scope [32]byte, deadline *big.Int, signature []byte) []byte {
	enc, err := consentRegistry.abi.Pack("revokeBySig", patient, grantee, scope, deadline, signature)
	if err != nil {
		panic(err)
	}
	return enc
}

// TryPackRevokeBySig is the Go binding used to pack the parameters required for calling
// the contract method with ID 0xb532d687.  This method will return an error
// if any inputs are invalid/nil.
//
// Solidity: function revokeBySig(address patient, bytes32 grantee, bytes32 scope, uint256 deadline, bytes signature) returns()
func (consentRegistry *ConsentRegistry) TryPackRevokeBySig(patient common.Address, grantee [32]byte, scope [32]byte, deadline *big.Int, signature []byte) ([]byte, error) {
	return consentRegistry.abi.Pack("revokeBySig", patient, grantee, scope, deadline, signature)
}

// ConsentRegistryConsentGranted represents a ConsentGranted event raised by the ConsentRegistry contract.
type ConsentRegistryConsentGranted struct {
	Patient common.Address
	Grantee [32]byte
	Scope   [32]byte
	Expiry  uint64
	Raw     *types.Log // Blockchain specific contextual infos
}

const ConsentRegistryConsentGrantedEventName = "ConsentGranted"

// ContractEventName returns the user-defined event name.
func (ConsentRegistryConsentGranted) ContractEventName() string {
	return ConsentRegistryConsentGrantedEventName
}

// UnpackConsentGrantedEvent is the Go binding that unpacks the event data emitted
// by contract.
//
// Solidity: event ConsentGranted(address indexed patient, bytes32 indexed grantee, bytes32 indexed scope, uint64 expiry)
func (consentRegistry *ConsentRegistry) UnpackConsentGrantedEvent(log *types.Log) (*ConsentRegistryConsentGranted, error) {
	event := "ConsentGranted"
	if len(log.Topics) == 0 {
		return nil, bind.ErrNoEventSignature
	}
	if log.Topics[0] != consentRegistry.abi.Events[event].ID {
		return nil, bind.ErrEventSignatureMismatch
	}
	out := new(ConsentRegistryConsentGranted)
	if len(log.Data) > 0 {
		if err := consentRegistry.abi.UnpackIntoInterface(out, event, log.Data); err != nil {
			return nil, err
		}
	}
	var indexed abi.Arguments
	for _, arg := range consentRegistry.abi.Events[event].Inputs {
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

// ConsentRegistryConsentRevoked represents a ConsentRevoked event raised by the ConsentRegistry contract.
type ConsentRegistryConsentRevoked struct {
	Patient common.Address
	Grantee [32]byte
	Scope   [32]byte
	Raw     *types.Log // Blockchain specific contextual infos
}

const ConsentRegistryConsentRevokedEventName = "ConsentRevoked"

// ContractEventName returns the user-defined event name.
func (ConsentRegistryConsentRevoked) ContractEventName() string {
	return ConsentRegistryConsentRevokedEventName
}

// UnpackConsentRevokedEvent is the Go binding that unpacks the event data emitted
// by contract.
//
// Solidity: event ConsentRevoked(address indexed patient, bytes32 indexed grantee, bytes32 indexed scope)
func (consentRegistry *ConsentRegistry) UnpackConsentRevokedEvent(log *types.Log) (*ConsentRegistryConsentRevoked, error) {
	event := "ConsentRevoked"
	if len(log.Topics) == 0 {
		return nil, bind.ErrNoEventSignature
	}
	if log.Topics[0] != consentRegistry.abi.Events[event].ID {
		return nil, bind.ErrEventSignatureMismatch
	}
	out := new(ConsentRegistryConsentRevoked)
	if len(log.Data) > 0 {
		if err := consentRegistry.abi.UnpackIntoInterface(out, event, log.Data); err != nil {
			return nil, err
		}
	}
	var indexed abi.Arguments
	for _, arg := range consentRegistry.abi.Events[event].Inputs {
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
func (consentRegistry *ConsentRegistry) UnpackError(raw []byte) (any, error) {
	if bytes.Equal(raw[:4], consentRegistry.abi.Errors["ExpiryNotInFuture"].ID.Bytes()[:4]) {
		return consentRegistry.UnpackExpiryNotInFutureError(raw[4:])
	}
	if bytes.Equal(raw[:4], consentRegistry.abi.Errors["InvalidSignature"].ID.Bytes()[:4]) {
		return consentRegistry.UnpackInvalidSignatureError(raw[4:])
	}
	if bytes.Equal(raw[:4], consentRegistry.abi.Errors["InvalidSignatureLength"].ID.Bytes()[:4]) {
		return consentRegistry.UnpackInvalidSignatureLengthError(raw[4:])
	}
	if bytes.Equal(raw[:4], consentRegistry.abi.Errors["InvalidSignatureS"].ID.Bytes()[:4]) {
		return consentRegistry.UnpackInvalidSignatureSError(raw[4:])
	}
	if bytes.Equal(raw[:4], consentRegistry.abi.Errors["InvalidSignatureV"].ID.Bytes()[:4]) {
		return consentRegistry.UnpackInvalidSignatureVError(raw[4:])
	}
	if bytes.Equal(raw[:4], consentRegistry.abi.Errors["NoSuchGrant"].ID.Bytes()[:4]) {
		return consentRegistry.UnpackNoSuchGrantError(raw[4:])
	}
	if bytes.Equal(raw[:4], consentRegistry.abi.Errors["SignatureExpired"].ID.Bytes()[:4]) {
		return consentRegistry.UnpackSignatureExpiredError(raw[4:])
	}
	if bytes.Equal(raw[:4], consentRegistry.abi.Errors["WrongSigner"].ID.Bytes()[:4]) {
		return consentRegistry.UnpackWrongSignerError(raw[4:])
	}
	if bytes.Equal(raw[:4], consentRegistry.abi.Errors["ZeroGranteeOrScope"].ID.Bytes()[:4]) {
		return consentRegistry.UnpackZeroGranteeOrScopeError(raw[4:])
	}
	return nil, errors.New("Unknown error")
}

// ConsentRegistryExpiryNotInFuture represents a ExpiryNotInFuture error raised by the ConsentRegistry contract.
type ConsentRegistryExpiryNotInFuture struct {
	Expiry uint64
}

// ErrorID returns the hash of canonical representation of the error's signature.
//
// Solidity: error ExpiryNotInFuture(uint64 expiry)
func ConsentRegistryExpiryNotInFutureErrorID() common.Hash {
	return common.HexToHash("0x8d499f7d88f2578b5cfffdc4bd257be1cf9f4c346e299f4fd4dd2fda0e1ff42e")
}

// UnpackExpiryNotInFutureError is the Go binding used to decode the provided
// error data into the corresponding Go error struct.
//
// Solidity: error ExpiryNotInFuture(uint64 expiry)
func (consentRegistry *ConsentRegistry) UnpackExpiryNotInFutureError(raw []byte) (*ConsentRegistryExpiryNotInFuture, error) {
	out := new(ConsentRegistryExpiryNotInFuture)
	if err := consentRegistry.abi.UnpackIntoInterface(out, "ExpiryNotInFuture", raw); err != nil {
		return nil, err
	}
	return out, nil
}

// ConsentRegistryInvalidSignature represents a InvalidSignature error raised by the ConsentRegistry contract.
type ConsentRegistryInvalidSignature struct {
}

// ErrorID returns the hash of canonical representation of the error's signature.
//
// Solidity: error InvalidSignature()
func ConsentRegistryInvalidSignatureErrorID() common.Hash {
	return common.HexToHash("0x8baa579fce362245063d36f11747a89dd489c54795634fc673cc0e0db51fedc5")
}

// UnpackInvalidSignatureError is the Go binding used to decode the provided
// error data into the corresponding Go error struct.
//
// Solidity: error InvalidSignature()
func (consentRegistry *ConsentRegistry) UnpackInvalidSignatureError(raw []byte) (*ConsentRegistryInvalidSignature, error) {
	out := new(ConsentRegistryInvalidSignature)
	if err := consentRegistry.abi.UnpackIntoInterface(out, "InvalidSignature", raw); err != nil {
		return nil, err
	}
	return out, nil
}

// ConsentRegistryInvalidSignatureLength represents a InvalidSignatureLength error raised by the ConsentRegistry contract.
type ConsentRegistryInvalidSignatureLength struct {
	Length *big.Int
}

// ErrorID returns the hash of canonical representation of the error's signature.
//
// Solidity: error InvalidSignatureLength(uint256 length)
func ConsentRegistryInvalidSignatureLengthErrorID() common.Hash {
	return common.HexToHash("0x2c33b5680a9fef1303384e1d65d338fdf3c385db42aef31f2b5a9618f7249d8a")
}

// UnpackInvalidSignatureLengthError is the Go binding used to decode the provided
// error data into the corresponding Go error struct.
//
// Solidity: error InvalidSignatureLength(uint256 length)
func (consentRegistry *ConsentRegistry) UnpackInvalidSignatureLengthError(raw []byte) (*ConsentRegistryInvalidSignatureLength, error) {
	out := new(ConsentRegistryInvalidSignatureLength)
	if err := consentRegistry.abi.UnpackIntoInterface(out, "InvalidSignatureLength", raw); err != nil {
		return nil, err
	}
	return out, nil
}

// ConsentRegistryInvalidSignatureS represents a InvalidSignatureS error raised by the ConsentRegistry contract.
type ConsentRegistryInvalidSignatureS struct {
	S [32]byte
}

// ErrorID returns the hash of canonical representation of the error's signature.
//
// Solidity: error InvalidSignatureS(bytes32 s)
func ConsentRegistryInvalidSignatureSErrorID() common.Hash {
	return common.HexToHash("0x5682f3bf4b3bf8ad0bc0069bbb2507a8577586fdc58d6a2de6794b7cb704da54")
}

// UnpackInvalidSignatureSError is the Go binding used to decode the provided
// error data into the corresponding Go error struct.
//
// Solidity: error InvalidSignatureS(bytes32 s)
func (consentRegistry *ConsentRegistry) UnpackInvalidSignatureSError(raw []byte) (*ConsentRegistryInvalidSignatureS, error) {
	out := new(ConsentRegistryInvalidSignatureS)
	if err := consentRegistry.abi.UnpackIntoInterface(out, "InvalidSignatureS", raw); err != nil {
		return nil, err
	}
	return out, nil
}

// ConsentRegistryInvalidSignatureV represents a InvalidSignatureV error raised by the ConsentRegistry contract.
type ConsentRegistryInvalidSignatureV struct {
	V uint8
}

// ErrorID returns the hash of canonical representation of the error's signature.
//
// Solidity: error InvalidSignatureV(uint8 v)
func ConsentRegistryInvalidSignatureVErrorID() common.Hash {
	return common.HexToHash("0xba76ff026d45908d17fefcce692bf9956e66357df37d89df51e86f322a5c37b4")
}

// UnpackInvalidSignatureVError is the Go binding used to decode the provided
// error data into the corresponding Go error struct.
//
// Solidity: error InvalidSignatureV(uint8 v)
func (consentRegistry *ConsentRegistry) UnpackInvalidSignatureVError(raw []byte) (*ConsentRegistryInvalidSignatureV, error) {
	out := new(ConsentRegistryInvalidSignatureV)
	if err := consentRegistry.abi.UnpackIntoInterface(out, "InvalidSignatureV", raw); err != nil {
		return nil, err
	}
	return out, nil
}

// ConsentRegistryNoSuchGrant represents a NoSuchGrant error raised by the ConsentRegistry contract.
type ConsentRegistryNoSuchGrant struct {
	Patient common.Address
	Grantee [32]byte
	Scope   [32]byte
}

// ErrorID returns the hash of canonical representation of the error's signature.
//
// Solidity: error NoSuchGrant(address patient, bytes32 grantee, bytes32 scope)
func ConsentRegistryNoSuchGrantErrorID() common.Hash {
	return common.HexToHash("0x3fb7455287314d5fbe6c03e3c66dd16399a1b41acbbf1d1e94a546f8b6912ab6")
}

// UnpackNoSuchGrantError is the Go binding used to decode the provided
// error data into the corresponding Go error struct.
//
// Solidity: error NoSuchGrant(address patient, bytes32 grantee, bytes32 scope)
func (consentRegistry *ConsentRegistry) UnpackNoSuchGrantError(raw []byte) (*ConsentRegistryNoSuchGrant, error) {
	out := new(ConsentRegistryNoSuchGrant)
	if err := consentRegistry.abi.UnpackIntoInterface(out, "NoSuchGrant", raw); err != nil {
		return nil, err
	}
	return out, nil
}

// ConsentRegistrySignatureExpired represents a SignatureExpired error raised by the ConsentRegistry contract.
type ConsentRegistrySignatureExpired struct {
	Deadline *big.Int
}

// ErrorID returns the hash of canonical representation of the error's signature.
//
// Solidity: error SignatureExpired(uint256 deadline)
func ConsentRegistrySignatureExpiredErrorID() common.Hash {
	return common.HexToHash("0xcd21db4f5222c209a625f44a7faa4c7077b21128ed96c96bd5c3a0f7bcc95d38")
}

// UnpackSignatureExpiredError is the Go binding used to decode the provided
// error data into the corresponding Go error struct.
//
// Solidity: error SignatureExpired(uint256 deadline)
func (consentRegistry *ConsentRegistry) UnpackSignatureExpiredError(raw []byte) (*ConsentRegistrySignatureExpired, error) {
	out := new(ConsentRegistrySignatureExpired)
	if err := consentRegistry.abi.UnpackIntoInterface(out, "SignatureExpired", raw); err != nil {
		return nil, err
	}
	return out, nil
}

// ConsentRegistryWrongSigner represents a WrongSigner error raised by the ConsentRegistry contract.
type ConsentRegistryWrongSigner struct {
	Recovered common.Address
	Patient   common.Address
}

// ErrorID returns the hash of canonical representation of the error's signature.
//
// Solidity: error WrongSigner(address recovered, address patient)
func ConsentRegistryWrongSignerErrorID() common.Hash {
	return common.HexToHash("0x366d29f7de543b1e5962d6f7315450f1f5ec3d853d28dca80282b4c242185268")
}

// UnpackWrongSignerError is the Go binding used to decode the provided
// error data into the corresponding Go error struct.
//
// Solidity: error WrongSigner(address recovered, address patient)
func (consentRegistry *ConsentRegistry) UnpackWrongSignerError(raw []byte) (*ConsentRegistryWrongSigner, error) {
	out := new(ConsentRegistryWrongSigner)
	if err := consentRegistry.abi.UnpackIntoInterface(out, "WrongSigner", raw); err != nil {
		return nil, err
	}
	return out, nil
}

// ConsentRegistryZeroGranteeOrScope represents a ZeroGranteeOrScope error raised by the ConsentRegistry contract.
type ConsentRegistryZeroGranteeOrScope struct {
}

// ErrorID returns the hash of canonical representation of the error's signature.
//
// Solidity: error ZeroGranteeOrScope()
func ConsentRegistryZeroGranteeOrScopeErrorID() common.Hash {
	return common.HexToHash("0x3217be1ea98f6a1237cfc67671f21a8df81d156fcaf9119ef2064c3ca8542778")
}

// UnpackZeroGranteeOrScopeError is the Go binding used to decode the provided
// error data into the corresponding Go error struct.
//
// Solidity: error ZeroGranteeOrScope()
func (consentRegistry *ConsentRegistry) UnpackZeroGranteeOrScopeError(raw []byte) (*ConsentRegistryZeroGranteeOrScope, error) {
	out := new(ConsentRegistryZeroGranteeOrScope)
	if err := consentRegistry.abi.UnpackIntoInterface(out, "ZeroGranteeOrScope", raw); err != nil {
		return nil, err
	}
	return out, nil
}
