// Package ethsig recovers Ethereum accounts from signatures and handles
// account addresses: EIP-191 personal_sign (version 0x45) recovery with
// strict signature checks, and EIP-55 mixed-case checksum addresses.
//
// It is the one place the authentication code reaches go-ethereum's
// cryptography; its own imports stay at go-ethereum's crypto and common
// packages so that auth/ does not pull in the rest of go-ethereum.
package ethsig

import (
	"errors"
	"fmt"
	"math/big"
	"strconv"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
)

// Errors, wrapped with a short reason that never repeats the input.
var (
	ErrInvalidAddress   = errors.New("invalid Ethereum address")
	ErrInvalidSignature = errors.New("invalid signature")
)

// Address is a 20-byte Ethereum account address.
type Address [20]byte

// Hex is the EIP-55 mixed-case checksum form, with its 0x prefix.
func (a Address) Hex() string { return common.Address(a).Hex() }

// String is Hex.
func (a Address) String() string { return a.Hex() }

// IsZero reports whether a is the all-zero address.
func (a Address) IsZero() bool { return a == Address{} }

// ParseAddress parses "0x" followed by 40 hex digits. All-lowercase and
// all-uppercase hex are accepted as they are; mixed case must be the
// EIP-55 checksum form (a mistyped mixed-case address is refused, which is
// the point of EIP-55).
func ParseAddress(s string) (Address, error) {
	a, lower, upper, err := parseHex(s)
	if err != nil {
		return Address{}, err
	}
	if lower || upper {
		return a, nil
	}
	if a.Hex()[2:] != s[2:] {
		return Address{}, fmt.Errorf("%w: EIP-55 checksum mismatch", ErrInvalidAddress)
	}
	return a, nil
}

// ParseChecksumAddress parses an address that must be written exactly in
// its EIP-55 checksum form (which for a few addresses is all lowercase or
// all uppercase letters). Sign-In With Ethereum messages require it.
func ParseChecksumAddress(s string) (Address, error) {
	a, _, _, err := parseHex(s)
	if err != nil {
		return Address{}, err
	}
	if a.Hex()[2:] != s[2:] {
		return Address{}, fmt.Errorf("%w: not in EIP-55 checksum form", ErrInvalidAddress)
	}
	return a, nil
}

// ParseHexAddress parses "0x" followed by 40 hex digits in any mix of
// cases, without checking an EIP-55 checksum: for comparing stored
// identifiers case-insensitively, never for user input that EIP-55 should
// protect.
func ParseHexAddress(s string) (Address, error) {
	a, _, _, err := parseHex(s)
	return a, err
}

// ChecksumAddress returns the EIP-55 form of an address given in any form
// ParseAddress accepts.
func ChecksumAddress(s string) (string, error) {
	a, err := ParseAddress(s)
	if err != nil {
		return "", err
	}
	return a.Hex(), nil
}

// parseHex decodes "0x" + 40 hex digits, reporting whether the letters
// were all lowercase or all uppercase (both true when there are none).
func parseHex(s string) (a Address, lower, upper bool, err error) {
	if len(s) != 42 || s[0] != '0' || s[1] != 'x' {
		return Address{}, false, false, fmt.Errorf("%w: want 0x and 40 hex digits", ErrInvalidAddress)
	}
	lower, upper = true, true
	for i := 0; i < 40; i++ {
		c := s[2+i]
		var v byte
		switch {
		case '0' <= c && c <= '9':
			v = c - '0'
		case 'a' <= c && c <= 'f':
			v = c - 'a' + 10
			upper = false
		case 'A' <= c && c <= 'F':
			v = c - 'A' + 10
			lower = false
		default:
			return Address{}, false, false, fmt.Errorf("%w: want 0x and 40 hex digits", ErrInvalidAddress)
		}
		if i%2 == 0 {
			a[i/2] = v << 4
		} else {
			a[i/2] |= v
		}
	}
	return a, lower, upper, nil
}

// PersonalHash is the EIP-191 version 0x45 ("personal_sign") digest of a
// message: keccak256("\x19Ethereum Signed Message:\n" + len(message) +
// message), the length in decimal bytes.
func PersonalHash(message []byte) [32]byte {
	prefix := "\x19Ethereum Signed Message:\n" + strconv.Itoa(len(message))
	var h [32]byte
	copy(h[:], crypto.Keccak256([]byte(prefix), message))
	return h
}

// SignatureLength is the length of an [r || s || v] signature.
const SignatureLength = 65

var (
	secp256k1N     = crypto.S256().Params().N
	secp256k1HalfN = new(big.Int).Rsh(secp256k1N, 1)
)

// RecoverPersonal returns the account whose key signed message with
// personal_sign. sig is r || s || v (65 bytes); v may be 27/28 (what
// wallets return) or 0/1. Signatures with s in the upper half of the curve
// order (the malleable twin of a valid signature), r or s out of range, or
// any other v are refused. EIP-2098 compact (64-byte) signatures and
// contract-wallet (EIP-1271) signatures are not supported.
func RecoverPersonal(message, sig []byte) (Address, error) {
	h := PersonalHash(message)
	return Recover(h, sig)
}

// Recover returns the account whose key produced sig over the 32-byte
// digest, with the checks RecoverPersonal describes.
func Recover(digest [32]byte, sig []byte) (Address, error) {
	if len(sig) != SignatureLength {
		return Address{}, fmt.Errorf("%w: want %d bytes", ErrInvalidSignature, SignatureLength)
	}
	v := sig[64]
	switch v {
	case 27, 28:
		v -= 27
	case 0, 1:
	default:
		return Address{}, fmt.Errorf("%w: recovery id must be 27, 28, 0 or 1", ErrInvalidSignature)
	}
	r := new(big.Int).SetBytes(sig[:32])
	s := new(big.Int).SetBytes(sig[32:64])
	if r.Sign() == 0 || s.Sign() == 0 || r.Cmp(secp256k1N) >= 0 || s.Cmp(secp256k1N) >= 0 {
		return Address{}, fmt.Errorf("%w: r or s out of range", ErrInvalidSignature)
	}
	if s.Cmp(secp256k1HalfN) > 0 {
		return Address{}, fmt.Errorf("%w: malleable signature (high s)", ErrInvalidSignature)
	}
	norm := make([]byte, SignatureLength)
	copy(norm, sig[:64])
	norm[64] = v
	pub, err := crypto.SigToPub(digest[:], norm)
	if err != nil {
		return Address{}, fmt.Errorf("%w: no key recovers from it", ErrInvalidSignature)
	}
	return Address(crypto.PubkeyToAddress(*pub)), nil
}

// ParseSignature decodes a signature as wallets return it: "0x" followed by
// 130 hex digits (either case).
func ParseSignature(s string) ([]byte, error) {
	if len(s) != 2+2*SignatureLength || s[0] != '0' || s[1] != 'x' {
		return nil, fmt.Errorf("%w: want 0x and %d hex digits", ErrInvalidSignature, 2*SignatureLength)
	}
	out := make([]byte, SignatureLength)
	for i := range out {
		hi, ok1 := unhex(s[2+2*i])
		lo, ok2 := unhex(s[3+2*i])
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("%w: want 0x and %d hex digits", ErrInvalidSignature, 2*SignatureLength)
		}
		out[i] = hi<<4 | lo
	}
	return out, nil
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
