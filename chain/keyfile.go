package chain

import (
	"crypto/ecdsa"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/ethereum/go-ethereum/accounts/keystore"
)

// ErrBadPassphrase means a keystore file could not be decrypted with the
// passphrase given.
var ErrBadPassphrase = errors.New("chain: keystore passphrase does not decrypt the key")

// LoadKeyFile decrypts an Ethereum keystore (Web3 Secret Storage v3) JSON
// file, as written by geth account new, Foundry's cast wallet or MetaMask
// exports.
func LoadKeyFile(path, passphrase string) (*ecdsa.PrivateKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("chain: key file: %w", err)
	}
	key, err := keystore.DecryptKey(data, passphrase)
	if err != nil {
		if errors.Is(err, keystore.ErrDecrypt) {
			return nil, fmt.Errorf("%w (%s)", ErrBadPassphrase, path)
		}
		return nil, fmt.Errorf("chain: key file %s: %w", path, err)
	}
	return key.PrivateKey, nil
}

// Passphrase returns the keystore passphrase from the environment variable
// env if it is set, else from the first line of file (if file is not
// empty), as geth's --password does. Neither: the empty passphrase.
func Passphrase(env, file string) (string, error) {
	if env != "" {
		if v, ok := os.LookupEnv(env); ok {
			return v, nil
		}
	}
	if file == "" {
		return "", nil
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("chain: passphrase file: %w", err)
	}
	line, _, _ := strings.Cut(string(data), "\n")
	return strings.TrimRight(line, "\r"), nil
}
