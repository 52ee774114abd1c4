package chain

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/ethereum/go-ethereum/accounts/keystore"
	"github.com/google/uuid"
)

func TestLoadKeyFile(t *testing.T) {
	acc := DevAccounts()[3]
	js, err := keystore.EncryptKey(&keystore.Key{Id: uuid.New(), Address: acc.Address, PrivateKey: acc.Key}, "s3cret", keystore.LightScryptN, keystore.LightScryptP)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "key.json")
	if err := os.WriteFile(path, js, 0o600); err != nil {
		t.Fatal(err)
	}
	k, err := LoadKeyFile(path, "s3cret")
	if err != nil {
		t.Fatal(err)
	}
	if !k.Equal(acc.Key) {
		t.Error("wrong key")
	}
	if _, err := LoadKeyFile(path, "wrong"); !errors.Is(err, ErrBadPassphrase) {
		t.Errorf("wrong passphrase: %v", err)
	}
	if _, err := LoadKeyFile(filepath.Join(dir, "missing.json"), ""); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

func TestPassphrase(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "pass")
	os.WriteFile(file, []byte("from-file\r\nsecond line\n"), 0o600)
	t.Setenv("FHIRGATE_TEST_PASS", "from-env")
	tests := []struct {
		name, env, file, want string
	}{
		{"env wins", "FHIRGATE_TEST_PASS", file, "from-env"},
		{"unset env falls back to file", "FHIRGATE_TEST_UNSET", file, "from-file"},
		{"no env name", "", file, "from-file"},
		{"neither", "FHIRGATE_TEST_UNSET", "", ""},
	}
	for _, tt := range tests {
		got, err := Passphrase(tt.env, tt.file)
		if err != nil || got != tt.want {
			t.Errorf("%s: %q, %v; want %q", tt.name, got, err, tt.want)
		}
	}
	if _, err := Passphrase("", filepath.Join(dir, "nope")); err == nil {
		t.Error("missing passphrase file accepted")
	}
}

// The gateway's own chain key: made once, private to its user, readable
// as a keystore file with the empty passphrase.
func TestLoadOrCreateKeyFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	path := filepath.Join(dir, "eth-gateway-key.json")
	k1, created, err := LoadOrCreateKeyFile(path)
	if err != nil || !created {
		t.Fatalf("first: created %v, %v", created, err)
	}
	k2, created, err := LoadOrCreateKeyFile(path)
	if err != nil || created || !k1.Equal(k2) {
		t.Fatalf("second: created %v, same %v, %v", created, k1.Equal(k2), err)
	}
	if k3, err := LoadKeyFile(path, ""); err != nil || !k1.Equal(k3) {
		t.Fatalf("LoadKeyFile: %v", err)
	}
	for p, want := range map[string]os.FileMode{path: 0o600, dir: 0o700} {
		fi, err := os.Stat(p)
		if err != nil || fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v, want %o (%v)", p, fi.Mode().Perm(), want, err)
		}
	}
	for _, a := range DevAccounts() {
		if a.Key.Equal(k1) {
			t.Fatal("generated a development key")
		}
	}
}
