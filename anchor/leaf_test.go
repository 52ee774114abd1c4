package anchor

import (
	"crypto/sha256"
	"encoding/hex"
	"testing"
)

func TestLeafData(t *testing.T) {
	var l Leaf
	l.Type, l.ID, l.VID = "Patient", "123", 2
	for i := range l.Salt {
		l.Salt[i] = byte(i)
	}
	l.SHA256 = sha256.Sum256([]byte(`{"id":"123","resourceType":"Patient"}`))
	want := "fhirgate-leaf-v1\nPatient/123/_history/2\n000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n" + hex.EncodeToString(l.SHA256[:])
	if got := string(l.Data()); got != want {
		t.Fatalf("Data() =\n%q\nwant\n%q", got, want)
	}
	h := LeafHash(l.Data())
	w := sha256.Sum256(append([]byte{0}, want...))
	if h != w {
		t.Fatal("LeafHash is not SHA-256(0x00 || data)")
	}
	a, b := NewLeaf("Patient", "1", 1, nil), NewLeaf("Patient", "1", 1, nil)
	if a.Salt == b.Salt {
		t.Fatal("two leaves share a salt")
	}
	if a.SHA256 != sha256.Sum256(nil) {
		t.Fatal("a deleted version hashes the empty string")
	}
}
