package chain

import (
	"encoding/hex"
	"errors"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
)

// Known values of Hardhat's and Anvil's default accounts.
func TestDevAccounts(t *testing.T) {
	accs := DevAccounts()
	if len(accs) != DevAccountCount {
		t.Fatalf("got %d accounts, want %d", len(accs), DevAccountCount)
	}
	tests := []struct {
		index int
		addr  string
		key   string // "" = not checked
	}{
		{0, "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266", "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"},
		{1, "0x70997970C51812dc3A010C7d01b50e0d17dc79C8", "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"},
		{2, "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC", ""},
		{9, "0xa0Ee7A142d267C1f36714E4a8F75612F20a79720", "0x2a871d0798f97d79848a013d4936a73bf4cc922c825d33c1cf7073dff6d409c6"},
	}
	for _, tt := range tests {
		a := accs[tt.index]
		if a.Address != common.HexToAddress(tt.addr) || a.Address.Hex() != tt.addr {
			t.Errorf("account %d = %s, want %s", tt.index, a.Address.Hex(), tt.addr)
		}
		if tt.key != "" && a.PrivateKeyHex() != tt.key {
			t.Errorf("account %d key = %s, want %s", tt.index, a.PrivateKeyHex(), tt.key)
		}
		if crypto.PubkeyToAddress(a.Key.PublicKey) != a.Address {
			t.Errorf("account %d: key does not match address", tt.index)
		}
	}
}

// BIP-39 test vector (Trezor's vectors use the passphrase "TREZOR").
func TestMnemonicSeed(t *testing.T) {
	seed, err := MnemonicSeed("abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about", "TREZOR")
	if err != nil {
		t.Fatal(err)
	}
	want := "c55257c360c07c72029aebc1b53c05ed0362ada38ead3e3e9efa3708e53495531f09a6987599d18264c1e1c92f2cf141630c7a3c4ab7c81b2f001698e7463b04"
	if got := hex.EncodeToString(seed); got != want {
		t.Errorf("seed = %s, want %s", got, want)
	}
	if _, err := MnemonicSeed("tëst", ""); err == nil {
		t.Error("non-ASCII mnemonic accepted")
	}
}

// BIP-32 test vector 1 (private keys along m/0H/1/2H).
func TestBIP32Vector1(t *testing.T) {
	seed, _ := hex.DecodeString("000102030405060708090a0b0c0d0e0f")
	tests := []struct{ path, key string }{
		{"m", "e8f32e723decf4051aefac8e2c93c9c5b214313817cdb01a1494b917c8436b35"},
		{"m/0'", "edb2e14f9ee77d26dd93b4ecede8d16ed408ce149b6cd80b0715a2d911a0afea"},
		{"m/0H/1", "3c6cb8d0f6a264c91ea8b5030fadaa8e538b020f0a387421a12de9319dc93368"},
		{"m/0'/1/2'", "cbce0d719ecf7431d88e6a89fa1483e02e35092af60c042b1df2ff59fa424dca"},
	}
	for _, tt := range tests {
		k, err := derivePath(masterKey(seed), tt.path)
		if err != nil {
			t.Fatalf("%s: %v", tt.path, err)
		}
		if got := hex.EncodeToString(k.key); got != tt.key {
			t.Errorf("%s = %s, want %s", tt.path, got, tt.key)
		}
	}
}

func TestDeriveKey(t *testing.T) {
	k, err := DeriveKey(DevMnemonic, "", "m/44'/60'/0'/0/1")
	if err != nil {
		t.Fatal(err)
	}
	if got := crypto.PubkeyToAddress(k.PublicKey); got != DevAccounts()[1].Address {
		t.Errorf("DeriveKey(.../1) = %s", got.Hex())
	}
	for _, bad := range []string{"", "44'/60'", "m/x", "m/-1", "m/2147483648", "m//0"} {
		if _, err := DeriveKey(DevMnemonic, "", bad); !errors.Is(err, ErrInvalidPath) {
			t.Errorf("DeriveKey(%q) err = %v, want ErrInvalidPath", bad, err)
		}
	}
}
