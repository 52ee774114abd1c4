// Package consentsig builds, signs and verifies the EIP-712 messages that
// ConsentRegistry's grantBySig and revokeBySig accept, and hashes grantee
// and scope identifiers the way the contract expects them.
//
// It is what the gateway's relay endpoint uses to check a patient's
// signature before paying gas for it, so it accepts exactly what the
// contract accepts: 65-byte r || s || v signatures with v in {27, 28} and
// low s. It imports no chain client.
package consentsig

import (
	"crypto/ecdsa"
	"errors"
	"fmt"
	"math/big"
	"strconv"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/math"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/signer/core/apitypes"
)

// Domain name and version of ConsentRegistry's EIP-712 domain.
const (
	DomainName    = "fhirgate ConsentRegistry"
	DomainVersion = "1"
)

// Errors returned by Recover and Verify; each matches a ConsentRegistry
// custom error.
var (
	ErrSignatureLength = errors.New("consentsig: signature is not 65 bytes")   // InvalidSignatureLength
	ErrSignatureV      = errors.New("consentsig: signature v is not 27 or 28") // InvalidSignatureV
	ErrSignatureHighS  = errors.New("consentsig: signature s is malleable")    // InvalidSignatureS
	ErrSignature       = errors.New("consentsig: invalid signature")           // InvalidSignature
	ErrWrongSigner     = errors.New("consentsig: signed by another account")   // WrongSigner
)

// secp256k1 group order / 2; ConsentRegistry rejects larger s.
var halfOrder = new(big.Int).Rsh(crypto.S256().Params().N, 1)

var eip712Types = apitypes.Types{
	"EIP712Domain": {
		{Name: "name", Type: "string"},
		{Name: "version", Type: "string"},
		{Name: "chainId", Type: "uint256"},
		{Name: "verifyingContract", Type: "address"},
	},
	"Grant": {
		{Name: "patient", Type: "address"},
		{Name: "grantee", Type: "bytes32"},
		{Name: "scope", Type: "bytes32"},
		{Name: "expiry", Type: "uint64"},
		{Name: "nonce", Type: "uint256"},
		{Name: "deadline", Type: "uint256"},
	},
	"Revoke": {
		{Name: "patient", Type: "address"},
		{Name: "grantee", Type: "bytes32"},
		{Name: "scope", Type: "bytes32"},
		{Name: "nonce", Type: "uint256"},
		{Name: "deadline", Type: "uint256"},
	},
}

// Grantee returns the on-chain grantee identifier of a FHIR reference or
// client: keccak256 of its UTF-8 bytes, e.g. Grantee("Practitioner/123"),
// Grantee("Organization/abc"), Grantee("client/ehr-1").
func Grantee(ref string) common.Hash { return crypto.Keccak256Hash([]byte(ref)) }

// Scope returns the on-chain scope identifier: keccak256 of "<Type>.<perms>",
// e.g. Scope("DiagnosticReport.rs"), Scope("*.rs").
func Scope(scope string) common.Hash { return crypto.Keccak256Hash([]byte(scope)) }

// Domain is the EIP-712 domain of the ConsentRegistry at registry on chainID.
type Domain struct {
	ChainID  *big.Int
	Registry common.Address
}

// Grant is the message a patient signs for grantBySig. Nonce must be the
// registry's nonces(Patient) at execution time.
type Grant struct {
	Patient  common.Address
	Grantee  common.Hash
	Scope    common.Hash
	Expiry   uint64
	Nonce    *big.Int
	Deadline *big.Int
}

// Revoke is the message a patient signs for revokeBySig.
type Revoke struct {
	Patient  common.Address
	Grantee  common.Hash
	Scope    common.Hash
	Nonce    *big.Int
	Deadline *big.Int
}

func (d Domain) typed() apitypes.TypedDataDomain {
	return apitypes.TypedDataDomain{
		Name:              DomainName,
		Version:           DomainVersion,
		ChainId:           (*math.HexOrDecimal256)(d.ChainID),
		VerifyingContract: d.Registry.Hex(),
	}
}

// TypedData returns the message as eth_signTypedData_v4 takes it. Its JSON
// is what a wallet signs: hex strings for address and bytes32, decimal
// strings for integers (JSON numbers lose precision past 2^53 in browsers).
func (g Grant) TypedData(d Domain) apitypes.TypedData {
	return apitypes.TypedData{
		Types:       eip712Types,
		PrimaryType: "Grant",
		Domain:      d.typed(),
		Message: apitypes.TypedDataMessage{
			"patient":  g.Patient.Hex(),
			"grantee":  g.Grantee.Hex(),
			"scope":    g.Scope.Hex(),
			"expiry":   strconv.FormatUint(g.Expiry, 10),
			"nonce":    decimal(g.Nonce),
			"deadline": decimal(g.Deadline),
		},
	}
}

// TypedData returns the message as eth_signTypedData_v4 takes it; see
// Grant.TypedData.
func (r Revoke) TypedData(d Domain) apitypes.TypedData {
	return apitypes.TypedData{
		Types:       eip712Types,
		PrimaryType: "Revoke",
		Domain:      d.typed(),
		Message: apitypes.TypedDataMessage{
			"patient":  r.Patient.Hex(),
			"grantee":  r.Grantee.Hex(),
			"scope":    r.Scope.Hex(),
			"nonce":    decimal(r.Nonce),
			"deadline": decimal(r.Deadline),
		},
	}
}

// Digest returns the EIP-712 hash the patient signs.
func (g Grant) Digest(d Domain) (common.Hash, error) { return digest(g.TypedData(d)) }

// Digest returns the EIP-712 hash the patient signs.
func (r Revoke) Digest(d Domain) (common.Hash, error) { return digest(r.TypedData(d)) }

// DomainSeparator returns the domain's EIP-712 separator, equal to the
// registry's DOMAIN_SEPARATOR().
func (d Domain) DomainSeparator() (common.Hash, error) {
	td := apitypes.TypedData{Types: eip712Types, Domain: d.typed()}
	h, err := td.HashStruct("EIP712Domain", td.Domain.Map())
	if err != nil {
		return common.Hash{}, fmt.Errorf("consentsig: domain: %w", err)
	}
	return common.BytesToHash(h), nil
}

func digest(td apitypes.TypedData) (common.Hash, error) {
	if td.Domain.ChainId == nil {
		return common.Hash{}, errors.New("consentsig: domain has no chain id")
	}
	h, _, err := apitypes.TypedDataAndHash(td)
	if err != nil {
		return common.Hash{}, fmt.Errorf("consentsig: %s: %w", td.PrimaryType, err)
	}
	return common.BytesToHash(h), nil
}

// decimal formats x for typed data; nil is 0.
func decimal(x *big.Int) string {
	if x == nil {
		return "0"
	}
	return x.String()
}

// Sign signs digest with key and returns r || s || v with v = 27 or 28, as
// wallets do and as ConsentRegistry requires.
func Sign(digest common.Hash, key *ecdsa.PrivateKey) ([]byte, error) {
	sig, err := crypto.Sign(digest[:], key)
	if err != nil {
		return nil, fmt.Errorf("consentsig: sign: %w", err)
	}
	sig[64] += 27
	return sig, nil
}

// Recover returns the account that signed digest, applying ConsentRegistry's
// rules: 65 bytes, v in {27, 28}, s in the lower half of the curve order,
// and a recoverable public key.
func Recover(digest common.Hash, sig []byte) (common.Address, error) {
	if len(sig) != 65 {
		return common.Address{}, ErrSignatureLength
	}
	if new(big.Int).SetBytes(sig[32:64]).Cmp(halfOrder) > 0 {
		return common.Address{}, ErrSignatureHighS
	}
	v := sig[64]
	if v != 27 && v != 28 {
		return common.Address{}, ErrSignatureV
	}
	raw := make([]byte, 65)
	copy(raw, sig)
	raw[64] = v - 27
	pub, err := crypto.SigToPub(digest[:], raw)
	if err != nil {
		return common.Address{}, ErrSignature
	}
	return crypto.PubkeyToAddress(*pub), nil
}

// Verify reports whether sig is want's signature of digest, with the same
// outcome the registry would reach (nil, or one of the Err values).
func Verify(digest common.Hash, sig []byte, want common.Address) error {
	got, err := Recover(digest, sig)
	if err != nil {
		return err
	}
	if got != want {
		return fmt.Errorf("%w: recovered %s, want %s", ErrWrongSigner, got.Hex(), want.Hex())
	}
	return nil
}
