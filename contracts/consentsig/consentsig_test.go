package consentsig

import (
	"encoding/json"
	"errors"
	"math"
	"math/big"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/signer/core/apitypes"
)

// The golden vectors below come from testdata/vectors.mjs, which computes
// them without go-ethereum (js-sha3 and a hand-written abi.encode).
func TestIdentifiers(t *testing.T) {
	for _, tc := range []struct {
		got  common.Hash
		want string
	}{
		{Grantee("Practitioner/123"), "0xf42b9f3201fdde81bdf99054a9c8901467f072d631c04091596590c4430a3287"},
		{Grantee("client/ehr-1"), "0xcd7a07e69ad9b69c08bd3c09f6edd41be8bea76fcbe0ad3c73cceaa5d35bad34"},
		{Scope("DiagnosticReport.rs"), "0x1a40d3ffdeb594164dc5cff9040ef6eb68b843c683a3dd40de68e05827c37d4b"},
		{Scope("*.rs"), "0xd92fa376a39b0e0cfd0f53658389fbc8ad31557b42c42f675752ac251aff063f"},
	} {
		if tc.got != common.HexToHash(tc.want) {
			t.Errorf("got %s, want %s", tc.got, tc.want)
		}
	}
}

var (
	goldenDomain  = Domain{ChainID: big.NewInt(1337), Registry: common.HexToAddress("0x5FbDB2315678afecb367f032d93F642f64180aa3")}
	goldenPatient = common.HexToAddress("0x1111111111111111111111111111111111111111")
)

func TestDigestGolden(t *testing.T) {
	ds, err := goldenDomain.DomainSeparator()
	if err != nil {
		t.Fatal(err)
	}
	if want := common.HexToHash("0x17c48d0727733022d8f0307e204acd42481c69ef5eeda136ab6b89b9282d0f29"); ds != want {
		t.Errorf("DomainSeparator = %s, want %s", ds, want)
	}

	g := Grant{
		Patient: goldenPatient, Grantee: Grantee("Practitioner/123"), Scope: Scope("DiagnosticReport.rs"),
		Expiry: 1767225600, Nonce: big.NewInt(7), Deadline: big.NewInt(1767229200),
	}
	gd, err := g.Digest(goldenDomain)
	if err != nil {
		t.Fatal(err)
	}
	if want := common.HexToHash("0xc1353db7bd6a4e6f33b59dafe77e8ad93b40c193aa54eb840fc1ede2d7e10f65"); gd != want {
		t.Errorf("Grant digest = %s, want %s", gd, want)
	}

	r := Revoke{
		Patient: goldenPatient, Grantee: Grantee("Practitioner/123"), Scope: Scope("DiagnosticReport.rs"),
		Nonce: big.NewInt(8), Deadline: big.NewInt(1767229200),
	}
	rd, err := r.Digest(goldenDomain)
	if err != nil {
		t.Fatal(err)
	}
	if want := common.HexToHash("0x371e7ba4e03d416ece3181bd4076a4def22e91efbccc02b3a01d5e7f81ffd7e7"); rd != want {
		t.Errorf("Revoke digest = %s, want %s", rd, want)
	}
}

// A wallet gets the typed data as JSON and the gateway may get it back the
// same way: the digest must survive the round trip.
func TestTypedDataJSON(t *testing.T) {
	g := Grant{
		Patient: goldenPatient, Grantee: Grantee("Practitioner/123"), Scope: Scope("DiagnosticReport.rs"),
		Expiry: math.MaxUint64, Nonce: big.NewInt(7), Deadline: new(big.Int).Lsh(big.NewInt(1), 255),
	}
	want, err := g.Digest(goldenDomain)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := json.Marshal(g.TypedData(goldenDomain))
	if err != nil {
		t.Fatal(err)
	}
	var td apitypes.TypedData
	if err := json.Unmarshal(raw, &td); err != nil {
		t.Fatal(err)
	}
	got, _, err := apitypes.TypedDataAndHash(td)
	if err != nil {
		t.Fatal(err)
	}
	if common.BytesToHash(got) != want {
		t.Fatalf("digest after JSON round trip %x, want %s\n%s", got, want, raw)
	}
	if !strings.Contains(string(raw), `"expiry":"18446744073709551615"`) {
		t.Errorf("uint64 not a decimal string in %s", raw)
	}
}

func TestDigestNeedsChainID(t *testing.T) {
	if _, err := (Grant{}).Digest(Domain{}); err == nil {
		t.Fatal("Digest without chain id: no error")
	}
}

func TestSignRecover(t *testing.T) {
	key, err := crypto.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	addr := crypto.PubkeyToAddress(key.PublicKey)
	digest := crypto.Keccak256Hash([]byte("message"))
	sig, err := Sign(digest, key)
	if err != nil {
		t.Fatal(err)
	}
	if v := sig[64]; v != 27 && v != 28 {
		t.Fatalf("v = %d, want 27 or 28", v)
	}
	if err := Verify(digest, sig, addr); err != nil {
		t.Fatalf("Verify: %v", err)
	}

	other := crypto.Keccak256Hash([]byte("other"))
	n := crypto.S256().Params().N
	highS := func() []byte {
		s := append([]byte(nil), sig...)
		new(big.Int).Sub(n, new(big.Int).SetBytes(sig[32:64])).FillBytes(s[32:64])
		s[64] ^= 1 // 27 <-> 28: the malleable twin of the same signature
		return s
	}()
	with := func(i int, b byte) []byte {
		s := append([]byte(nil), sig...)
		s[i] = b
		return s
	}
	zeroR := append(make([]byte, 32), sig[32:]...)

	for _, tc := range []struct {
		name   string
		digest common.Hash
		sig    []byte
		want   error
	}{
		{"short", digest, sig[:64], ErrSignatureLength},
		{"long", digest, append(append([]byte(nil), sig...), 0), ErrSignatureLength},
		{"high s", digest, highS, ErrSignatureHighS},
		{"raw v", digest, with(64, sig[64]-27), ErrSignatureV},
		{"v 29", digest, with(64, 29), ErrSignatureV},
		{"zero r", digest, zeroR, ErrSignature},
		{"other digest", other, sig, ErrWrongSigner},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := Verify(tc.digest, tc.sig, addr); !errors.Is(err, tc.want) {
				t.Fatalf("Verify = %v, want %v", err, tc.want)
			}
		})
	}
}

// Recover parses untrusted signatures from the relay endpoint: it must never
// panic, and accept only what the contract accepts.
func FuzzRecover(f *testing.F) {
	key, err := crypto.GenerateKey()
	if err != nil {
		f.Fatal(err)
	}
	digest := crypto.Keccak256Hash([]byte("seed"))
	sig, err := Sign(digest, key)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(digest[:], sig)
	f.Add(digest[:], sig[:64])
	f.Add(make([]byte, 32), make([]byte, 65))
	f.Fuzz(func(t *testing.T, d, sig []byte) {
		addr, err := Recover(common.BytesToHash(d), sig)
		if err != nil {
			return
		}
		if len(sig) != 65 || (sig[64] != 27 && sig[64] != 28) || new(big.Int).SetBytes(sig[32:64]).Cmp(halfOrder) > 0 {
			t.Fatalf("accepted %x", sig)
		}
		if addr == (common.Address{}) {
			t.Fatal("recovered the zero address")
		}
	})
}
