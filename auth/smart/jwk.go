package smart

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"slices"
)

// The client assertion algorithms: the two SMART requires servers to be
// able to validate. Keys for anything else (ES256, RS256, PS*, EdDSA) are
// ignored when a JWKS is loaded.
const (
	AlgRS384 = "RS384"
	AlgES384 = "ES384"
)

// SigningAlgs lists the supported client assertion algorithms.
var SigningAlgs = []string{AlgRS384, AlgES384}

// RSA modulus bounds for client keys.
const (
	minRSABits = 2048
	maxRSABits = 8192
)

// verifyKey is one usable public key of a client.
type verifyKey struct {
	kid string
	alg string // AlgRS384 or AlgES384
	pub any    // *rsa.PublicKey or *ecdsa.PublicKey (P-384)
}

// jwk is a JSON Web Key (RFC 7517) as registered: public members, plus the
// private ones only so that their presence can be refused.
type jwk struct {
	Kty    string   `json:"kty"`
	Kid    string   `json:"kid"`
	Use    string   `json:"use"`
	KeyOps []string `json:"key_ops"`
	Alg    string   `json:"alg"`
	Crv    string   `json:"crv"`
	X      string   `json:"x"`
	Y      string   `json:"y"`
	N      string   `json:"n"`
	E      string   `json:"e"`

	D   string          `json:"d"`
	P   string          `json:"p"`
	Q   string          `json:"q"`
	DP  string          `json:"dp"`
	DQ  string          `json:"dq"`
	QI  string          `json:"qi"`
	Oth json.RawMessage `json:"oth"`
	K   string          `json:"k"`
}

// parseJWKS returns the usable keys of a JWK Set (RFC 7517 section 5).
// Private or symmetric key material, malformed keys, keys without a kid
// and two usable keys with one kid and algorithm are errors; keys for
// other algorithms, curves or uses are skipped.
func parseJWKS(data []byte) ([]verifyKey, error) {
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(data, &set); err != nil {
		return nil, fmt.Errorf("JWKS: %w", err)
	}
	if set.Keys == nil {
		return nil, errors.New(`JWKS: want {"keys": [...]}`)
	}
	var keys []verifyKey
	for i, raw := range set.Keys {
		var k jwk
		if err := json.Unmarshal(raw, &k); err != nil {
			return nil, fmt.Errorf("JWKS key %d: %w", i, err)
		}
		vk, ok, err := k.verifyKey()
		if err != nil {
			return nil, fmt.Errorf("JWKS key %d (kid %q): %w", i, k.Kid, err)
		}
		if !ok {
			continue
		}
		if slices.ContainsFunc(keys, func(o verifyKey) bool { return o.kid == vk.kid && o.alg == vk.alg }) {
			return nil, fmt.Errorf("JWKS key %d: kid %q is not unique", i, vk.kid)
		}
		keys = append(keys, vk)
	}
	return keys, nil
}

// verifyKey converts a JWK; ok is false for a key of a kind not used for
// client assertions here.
func (k *jwk) verifyKey() (verifyKey, bool, error) {
	if k.D != "" || k.P != "" || k.Q != "" || k.DP != "" || k.DQ != "" || k.QI != "" || len(k.Oth) > 0 || k.K != "" {
		return verifyKey{}, false, errors.New("contains private or symmetric key material: register public keys only")
	}
	if k.Use != "" && k.Use != "sig" {
		return verifyKey{}, false, nil
	}
	if k.KeyOps != nil && !slices.Contains(k.KeyOps, "verify") {
		return verifyKey{}, false, nil
	}
	var vk verifyKey
	switch {
	case k.Kty == "RSA":
		vk.alg = AlgRS384
	case k.Kty == "EC" && k.Crv == "P-384":
		vk.alg = AlgES384
	default:
		return verifyKey{}, false, nil
	}
	if k.Alg != "" && k.Alg != vk.alg {
		return verifyKey{}, false, nil
	}
	if k.Kid == "" {
		return verifyKey{}, false, errors.New("kid is required")
	}
	vk.kid = k.Kid
	switch vk.alg {
	case AlgRS384:
		n, err := b64(k.N)
		if err != nil || len(n) == 0 {
			return verifyKey{}, false, errors.New("n is not a base64url big-endian integer")
		}
		e, err := b64(k.E)
		eInt := new(big.Int).SetBytes(e)
		if err != nil || len(e) == 0 || eInt.BitLen() > 31 {
			return verifyKey{}, false, errors.New("e is not a base64url big-endian integer below 2^31")
		}
		pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(eInt.Int64())}
		if bits := pub.N.BitLen(); bits < minRSABits || bits > maxRSABits {
			return verifyKey{}, false, fmt.Errorf("RSA modulus of %d bits (want %d to %d)", bits, minRSABits, maxRSABits)
		}
		if pub.E < 3 || pub.E%2 == 0 {
			return verifyKey{}, false, errors.New("RSA exponent must be odd and at least 3")
		}
		vk.pub = pub
	case AlgES384:
		x, errX := b64(k.X)
		y, errY := b64(k.Y)
		if errX != nil || errY != nil || len(x) != 48 || len(y) != 48 {
			return verifyKey{}, false, errors.New("x and y must be 48-byte base64url coordinates")
		}
		pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P384(), append(append([]byte{4}, x...), y...))
		if err != nil {
			return verifyKey{}, false, errors.New("point is not on P-384")
		}
		vk.pub = pub
	}
	return vk, true, nil
}

// b64 decodes unpadded base64url, as JWKs use (RFC 7515 section 2).
func b64(s string) ([]byte, error) {
	return base64.RawURLEncoding.Strict().DecodeString(s)
}
