// Package ethsigtest signs like a wallet does, for tests of code that
// verifies Ethereum signatures (Sign-In With Ethereum and the like) without
// importing go-ethereum themselves. Real secp256k1 keys and signatures.
package ethsigtest

import (
	"crypto/ecdsa"
	"encoding/hex"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/fhirgate/fhirgate/chain/ethsig"
)

// Key is a secp256k1 account key.
type Key struct {
	priv    *ecdsa.PrivateKey
	Address ethsig.Address
}

// NewKey generates a random key.
func NewKey() (*Key, error) {
	priv, err := crypto.GenerateKey()
	if err != nil {
		return nil, err
	}
	return wrap(priv), nil
}

// KeyFromHex loads a key from 64 hex digits (no 0x prefix).
func KeyFromHex(s string) (*Key, error) {
	priv, err := crypto.HexToECDSA(s)
	if err != nil {
		return nil, err
	}
	return wrap(priv), nil
}

func wrap(priv *ecdsa.PrivateKey) *Key {
	return &Key{priv: priv, Address: ethsig.Address(crypto.PubkeyToAddress(priv.PublicKey))}
}

// SignDigest signs a 32-byte digest: r || s || v with v = 0 or 1 and low s.
func (k *Key) SignDigest(digest [32]byte) []byte {
	sig, err := crypto.Sign(digest[:], k.priv)
	if err != nil {
		panic(err) // only for a malformed digest, which [32]byte rules out
	}
	return sig
}

// SignPersonal signs message as personal_sign (EIP-191 0x45) does in a
// wallet: r || s || v with v = 27 or 28.
func (k *Key) SignPersonal(message []byte) []byte {
	sig := k.SignDigest(ethsig.PersonalHash(message))
	sig[64] += 27
	return sig
}

// SignPersonalHex is SignPersonal as the "0x…" hex string wallets return.
func (k *Key) SignPersonalHex(message []byte) string {
	return "0x" + hex.EncodeToString(k.SignPersonal(message))
}
