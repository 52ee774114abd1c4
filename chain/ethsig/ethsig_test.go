package ethsig_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"math/big"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/fhirgate/fhirgate/chain/ethsig"
	"github.com/fhirgate/fhirgate/chain/ethsig/ethsigtest"
)

// The test cases of EIP-55 itself: each is already in checksum form.
var eip55 = []string{
	"0x52908400098527886E0F7030069857D2E4169EE7",
	"0x8617E340B3D01FA5F11F306F4090FD50E238070D",
	"0xde709f2102306220921060314715629080e2fb77",
	"0x27b1fdb04752bbc536007a920d24acb045561c26",
	"0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
	"0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
	"0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB",
	"0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb",
}

func TestChecksumEIP55Vectors(t *testing.T) {
	for _, want := range eip55 {
		for _, in := range []string{want, "0x" + strings.ToLower(want[2:]), "0x" + strings.ToUpper(want[2:])} {
			got, err := ethsig.ChecksumAddress(in)
			if err != nil || got != want {
				t.Errorf("ChecksumAddress(%s) = %s, %v; want %s", in, got, err, want)
			}
		}
		if _, err := ethsig.ParseChecksumAddress(want); err != nil {
			t.Errorf("ParseChecksumAddress(%s): %v", want, err)
		}
	}
}

func TestParseAddress(t *testing.T) {
	tests := []struct {
		in         string
		ok, strict bool // ParseAddress, ParseChecksumAddress
	}{
		{"0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", true, true},
		{"0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed", true, false},
		{"0x5AAEB6053F3E94C9B9A09F33669435E7EF1BEAED", true, false},
		{"0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD", false, false}, // one letter's case flipped
		{"0x5AAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", false, false},
		{"5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", false, false},
		{"0X5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", false, false},
		{"0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAe", false, false},
		{"0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAedd", false, false},
		{"0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeg", false, false},
		{"", false, false},
	}
	for _, tt := range tests {
		_, err := ethsig.ParseAddress(tt.in)
		if (err == nil) != tt.ok || (err != nil && !errors.Is(err, ethsig.ErrInvalidAddress)) {
			t.Errorf("ParseAddress(%q) = %v, want ok=%v", tt.in, err, tt.ok)
		}
		_, err = ethsig.ParseChecksumAddress(tt.in)
		if (err == nil) != tt.strict {
			t.Errorf("ParseChecksumAddress(%q) = %v, want ok=%v", tt.in, err, tt.strict)
		}
	}
}

func TestPersonalHashMatchesGoEthereum(t *testing.T) {
	for _, msg := range []string{"", "Some data", strings.Repeat("é", 100)} {
		h := ethsig.PersonalHash([]byte(msg))
		// accounts.TextHash, written out: keccak256 of prefix, length, message.
		want := crypto.Keccak256([]byte("\x19Ethereum Signed Message:\n" + itoa(len(msg)) + msg))
		if !bytes.Equal(h[:], want) {
			t.Errorf("PersonalHash(%q) = %x, want %x", msg, h, want)
		}
	}
}

func itoa(n int) string { return big.NewInt(int64(n)).String() }

// A published vector: web3.js's documentation signs "Some data" with this
// key (RFC 6979 signatures are deterministic, so go-ethereum must produce
// the same bytes).
func TestKnownVector(t *testing.T) {
	key, err := ethsigtest.KeyFromHex("4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318")
	if err != nil {
		t.Fatal(err)
	}
	const wantAddr = "0x2c7536E3605D9C16a7a3D7b1898e529396a65c23"
	const wantHash = "1da44b586eb0729ff70a73c326926f6ed5a25f5b056e7f47fbc6e58d86871655"
	const wantSig = "0xb91467e570a6466aa9e9876cbcd013baba02900b8979d43fe208a4a4f339f5fd6007e74cd82e037b800186422fc2da167c747ef045e5d18a5f5d4300f8e1a0291c"
	if key.Address.Hex() != wantAddr {
		t.Fatalf("address %s, want %s", key.Address.Hex(), wantAddr)
	}
	if h := ethsig.PersonalHash([]byte("Some data")); hex.EncodeToString(h[:]) != wantHash {
		t.Fatalf("hash %x", h)
	}
	if got := key.SignPersonalHex([]byte("Some data")); got != wantSig {
		t.Fatalf("signature %s, want %s", got, wantSig)
	}
	sig, err := ethsig.ParseSignature(wantSig)
	if err != nil {
		t.Fatal(err)
	}
	a, err := ethsig.RecoverPersonal([]byte("Some data"), sig)
	if err != nil || a.Hex() != wantAddr {
		t.Fatalf("RecoverPersonal = %s, %v", a.Hex(), err)
	}
}

func TestRecoverPersonal(t *testing.T) {
	key, err := ethsigtest.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	msg := []byte("fhirgate wants you to sign in")
	sig := key.SignPersonal(msg) // v = 27/28
	withV := func(v byte) []byte {
		s := bytes.Clone(sig)
		s[64] = v
		return s
	}
	high := highS(sig)
	n := crypto.S256().Params().N
	rN := bytes.Clone(sig)
	n.FillBytes(rN[:32])
	tests := []struct {
		name string
		msg  []byte
		sig  []byte
		err  string // "" = recovers key.Address
	}{
		{"v 27/28", msg, sig, ""},
		{"v 0/1", msg, withV(sig[64] - 27), ""},
		{"v 2", msg, withV(2), "recovery id"},
		{"v 29", msg, withV(29), "recovery id"},
		{"v 35 (EIP-155 style)", msg, withV(35), "recovery id"},
		{"short", msg, sig[:64], "65 bytes"},
		{"long", msg, append(bytes.Clone(sig), 0), "65 bytes"},
		{"high s", msg, high, "malleable"},
		{"r zero", msg, append(make([]byte, 32), sig[32:]...), "out of range"},
		{"s zero", msg, append(append(bytes.Clone(sig[:32]), make([]byte, 32)...), sig[64]), "out of range"},
		{"r = N", msg, rN, "out of range"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := ethsig.RecoverPersonal(tt.msg, tt.sig)
			if tt.err == "" {
				if err != nil || a != key.Address {
					t.Fatalf("RecoverPersonal = %s, %v; want %s", a, err, key.Address)
				}
				return
			}
			if !errors.Is(err, ethsig.ErrInvalidSignature) || !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("RecoverPersonal = %s, %v; want error %q", a, err, tt.err)
			}
		})
	}
	// Another message or a flipped bit recovers some other account, never this one.
	if a, err := ethsig.RecoverPersonal([]byte("fhirgate wants you to sign in!"), sig); err == nil && a == key.Address {
		t.Fatal("signature verified for another message")
	}
	flipped := bytes.Clone(sig)
	flipped[10] ^= 1
	if a, err := ethsig.RecoverPersonal(msg, flipped); err == nil && a == key.Address {
		t.Fatal("tampered signature verified")
	}
	// The high-s twin really is a valid signature for go-ethereum's
	// recovery: refusing it is our choice, not an accident.
	twin := bytes.Clone(high)
	twin[64] -= 27
	if pub, err := crypto.SigToPub(ethsigHash(msg), twin); err != nil || crypto.PubkeyToAddress(*pub) != [20]byte(key.Address) {
		t.Fatalf("high-s twin does not recover the signer (%v): test is not testing malleability", err)
	}
}

func ethsigHash(msg []byte) []byte { h := ethsig.PersonalHash(msg); return h[:] }

// highS returns the malleable twin of a low-s signature: s' = N - s, with
// the recovery id flipped.
func highS(sig []byte) []byte {
	n := crypto.S256().Params().N
	s := new(big.Int).SetBytes(sig[32:64])
	out := bytes.Clone(sig)
	new(big.Int).Sub(n, s).FillBytes(out[32:64])
	if out[64] == 27 || out[64] == 0 {
		out[64]++
	} else {
		out[64]--
	}
	return out
}

func TestParseSignature(t *testing.T) {
	good := "0x" + strings.Repeat("aB", 65)
	if b, err := ethsig.ParseSignature(good); err != nil || len(b) != 65 || b[0] != 0xab {
		t.Fatalf("ParseSignature = %x, %v", b, err)
	}
	for _, bad := range []string{"", "0x", good[2:], good[:len(good)-2], good + "00", "0x" + strings.Repeat("zz", 65), "0X" + good[2:]} {
		if _, err := ethsig.ParseSignature(bad); !errors.Is(err, ethsig.ErrInvalidSignature) {
			t.Errorf("ParseSignature(%q) = %v", bad, err)
		}
	}
}

func BenchmarkRecoverPersonal(b *testing.B) {
	key, _ := ethsigtest.NewKey()
	msg := []byte(strings.Repeat("x", 400))
	sig := key.SignPersonal(msg)
	for b.Loop() {
		if _, err := ethsig.RecoverPersonal(msg, sig); err != nil {
			b.Fatal(err)
		}
	}
}
