// Package anchor keeps the gateway's tamper-evident log: one RFC 6962
// Merkle log of leaves (every stored resource version, and every access
// once auditing lands), checkpoints anchored on Ethereum, and the proofs a
// regulator verifies offline. This file: the leaf format (docs/audit.md).
package anchor

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
)

// LeafPrefix starts every leaf's data; the version names the format.
const LeafPrefix = "fhirgate-leaf-v1\n"

// Leaf is what one log entry commits to.
type Leaf struct {
	Type, ID string
	VID      uint64
	// Salt is 32 random bytes kept off chain, so that a leaf hash reveals
	// nothing about the record to someone who can guess its content.
	Salt [32]byte
	// SHA256 is the hash of the exact bytes a plain GET of the version
	// returns (for a deleted version, which has none, of the empty string).
	SHA256 [32]byte
}

// NewLeaf returns the leaf of a version with a fresh salt.
func NewLeaf(typ, id string, vid uint64, body []byte) Leaf {
	l := Leaf{Type: typ, ID: id, VID: vid, SHA256: sha256.Sum256(body)}
	rand.Read(l.Salt[:])
	return l
}

// Data is the leaf's entry in the log: the UTF-8 text
//
//	fhirgate-leaf-v1\n<Type>/<id>/_history/<versionId>\n<salt hex>\n<sha256 hex>
func (l Leaf) Data() []byte {
	b := make([]byte, 0, len(LeafPrefix)+len(l.Type)+len(l.ID)+20+1+64+1+64)
	b = append(b, LeafPrefix...)
	b = append(b, l.Type...)
	b = append(b, '/')
	b = append(b, l.ID...)
	b = append(b, "/_history/"...)
	b = strconv.AppendUint(b, l.VID, 10)
	b = append(b, '\n')
	b = hex.AppendEncode(b, l.Salt[:])
	b = append(b, '\n')
	return hex.AppendEncode(b, l.SHA256[:])
}

// LeafHash is the RFC 6962 leaf hash SHA-256(0x00 || data).
func LeafHash(data []byte) [32]byte {
	h := sha256.New()
	h.Write([]byte{0})
	h.Write(data)
	var out [32]byte
	h.Sum(out[:0])
	return out
}
