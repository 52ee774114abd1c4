package chain

import (
	"crypto/ecdsa"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/sha512"
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"strings"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
)

// DevMnemonic is the well-known development mnemonic used by Hardhat,
// Anvil and Ganache. Its keys are public: never use them on a real network.
const DevMnemonic = "test test test test test test test test test test test junk"

// DevAccountCount is the number of accounts funded in the dev genesis.
const DevAccountCount = 10

// DevPathPrefix is the BIP-44 Ethereum derivation path of the dev accounts;
// account i is DevPathPrefix + "/" + i, as in Hardhat and Anvil.
const DevPathPrefix = "m/44'/60'/0'/0"

// ErrInvalidPath reports a malformed BIP-32 derivation path.
var ErrInvalidPath = errors.New("chain: invalid derivation path")

// Account is a key and its address.
type Account struct {
	Address common.Address
	Key     *ecdsa.PrivateKey
}

// PrivateKeyHex returns the account's private key as 0x-prefixed hex, the
// form wallets import.
func (a Account) PrivateKeyHex() string {
	return "0x" + common.Bytes2Hex(crypto.FromECDSA(a.Key))
}

// DevAccounts returns the DevAccountCount accounts derived from DevMnemonic
// at DevPathPrefix/0 … DevPathPrefix/9. Account 0 is the gateway's own key on
// the dev chain.
func DevAccounts() []Account {
	accs, err := DeriveAccounts(DevMnemonic, "", DevAccountCount)
	if err != nil {
		panic(err) // fixed input: cannot fail
	}
	return accs
}

// DeriveAccounts derives n accounts from a BIP-39 mnemonic (and optional
// BIP-39 passphrase) at m/44'/60'/0'/0/i. The mnemonic's checksum is not
// verified: any phrase gives a seed, as BIP-39 specifies.
func DeriveAccounts(mnemonic, passphrase string, n int) ([]Account, error) {
	seed, err := MnemonicSeed(mnemonic, passphrase)
	if err != nil {
		return nil, err
	}
	parent, err := derivePath(masterKey(seed), DevPathPrefix)
	if err != nil {
		return nil, err
	}
	accs := make([]Account, 0, n)
	for i := 0; i < n; i++ {
		child, err := parent.child(uint32(i))
		if err != nil {
			return nil, err
		}
		key, err := crypto.ToECDSA(child.key)
		if err != nil {
			return nil, err
		}
		accs = append(accs, Account{Address: crypto.PubkeyToAddress(key.PublicKey), Key: key})
	}
	return accs, nil
}

// DeriveKey derives the key at a BIP-32 path such as "m/44'/60'/0'/0/3"
// from a BIP-39 mnemonic.
func DeriveKey(mnemonic, passphrase, path string) (*ecdsa.PrivateKey, error) {
	seed, err := MnemonicSeed(mnemonic, passphrase)
	if err != nil {
		return nil, err
	}
	k, err := derivePath(masterKey(seed), path)
	if err != nil {
		return nil, err
	}
	return crypto.ToECDSA(k.key)
}

// MnemonicSeed turns a BIP-39 mnemonic into its 64-byte seed:
// PBKDF2-HMAC-SHA512, 2048 rounds, salt "mnemonic"+passphrase. Words are
// separated by single spaces (extra white space is folded). Only ASCII
// phrases are accepted, because the NFKD normalisation BIP-39 requires is
// the identity on ASCII and is not implemented for other scripts.
func MnemonicSeed(mnemonic, passphrase string) ([]byte, error) {
	m := strings.Join(strings.Fields(mnemonic), " ")
	for _, s := range []string{m, passphrase} {
		for i := 0; i < len(s); i++ {
			if s[i] >= 0x80 {
				return nil, errors.New("chain: only ASCII mnemonics and passphrases are supported")
			}
		}
	}
	return pbkdf2.Key(sha512.New, m, []byte("mnemonic"+passphrase), 2048, 64)
}

// extKey is a BIP-32 extended private key.
type extKey struct {
	key       []byte // 32 bytes
	chainCode []byte // 32 bytes
}

const hardened = 1 << 31

func masterKey(seed []byte) extKey {
	mac := hmac.New(sha512.New, []byte("Bitcoin seed"))
	mac.Write(seed)
	sum := mac.Sum(nil)
	return extKey{key: sum[:32], chainCode: sum[32:]}
}

// child implements BIP-32 CKDpriv.
func (k extKey) child(index uint32) (extKey, error) {
	var data []byte
	if index >= hardened {
		data = append([]byte{0}, k.key...)
	} else {
		priv, err := crypto.ToECDSA(k.key)
		if err != nil {
			return extKey{}, err
		}
		data = crypto.CompressPubkey(&priv.PublicKey)
	}
	data = binary.BigEndian.AppendUint32(data, index)
	mac := hmac.New(sha512.New, k.chainCode)
	mac.Write(data)
	sum := mac.Sum(nil)

	n := crypto.S256().Params().N
	il := new(big.Int).SetBytes(sum[:32])
	if il.Cmp(n) >= 0 {
		return extKey{}, fmt.Errorf("chain: BIP-32 child %d is invalid (IL ≥ n)", index)
	}
	il.Add(il, new(big.Int).SetBytes(k.key))
	il.Mod(il, n)
	if il.Sign() == 0 {
		return extKey{}, fmt.Errorf("chain: BIP-32 child %d is invalid (zero key)", index)
	}
	return extKey{key: common.LeftPadBytes(il.Bytes(), 32), chainCode: sum[32:]}, nil
}

func derivePath(k extKey, path string) (extKey, error) {
	parts := strings.Split(path, "/")
	if len(parts) == 0 || parts[0] != "m" {
		return extKey{}, fmt.Errorf("%w: %q must start with m", ErrInvalidPath, path)
	}
	for _, p := range parts[1:] {
		var off uint32
		if n := len(p); n > 0 && (p[n-1] == '\'' || p[n-1] == 'h' || p[n-1] == 'H') {
			p, off = p[:n-1], hardened
		}
		i, err := strconv.ParseUint(p, 10, 31)
		if err != nil {
			return extKey{}, fmt.Errorf("%w: %q: bad index %q", ErrInvalidPath, path, p)
		}
		if k, err = k.child(uint32(i) + off); err != nil {
			return extKey{}, err
		}
	}
	return k, nil
}
