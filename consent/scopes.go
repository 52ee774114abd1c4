package consent

import (
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/fhirgate/fhirgate/fhir"
)

// scopeTable maps keccak256("<Type>.<perms>") to the scope string, for
// every target (the R4 types and "*") and every non-empty SMART v2
// permission string in the order c r u d s: 147 × 31 = 4,557 scopes.
var scopeTable = sync.OnceValue(func() map[common.Hash]string {
	targets := append([]string{"*"}, fhir.ResourceTypes()...)
	m := make(map[common.Hash]string, len(targets)*31)
	for _, t := range targets {
		for bits := 1; bits < 32; bits++ {
			s := t + "." + permString(bits)
			m[crypto.Keccak256Hash([]byte(s))] = s
		}
	}
	return m
})

// permString renders a 5-bit permission set in the order cruds.
func permString(bits int) string {
	var b strings.Builder
	for i, c := range "cruds" {
		if bits&(1<<i) != 0 {
			b.WriteRune(c)
		}
	}
	return b.String()
}

// ScopeName returns the scope string whose hash is h ("DiagnosticReport.rs",
// "*.cruds", ...), or false when h is not the hash of a valid consent scope.
func ScopeName(h common.Hash) (string, bool) {
	s, ok := scopeTable()[h]
	return s, ok
}

// ScopeCount is the number of valid consent scopes (4,557).
func ScopeCount() int { return len(scopeTable()) }

// Grantee kinds a consent may name.
var granteeKinds = []string{"Practitioner", "Organization", "client"}

// ValidGrantee checks a grantee reference: "Practitioner/<id>",
// "Organization/<id>" (FHIR ids) or "client/<client_id>".
func ValidGrantee(ref string) error {
	kind, id, ok := strings.Cut(ref, "/")
	if !ok || id == "" {
		return fmt.Errorf("consent: grantee %q: want Practitioner/<id>, Organization/<id> or client/<id>", ref)
	}
	switch kind {
	case "Practitioner", "Organization":
		if !fhir.ValidID(id) {
			return fmt.Errorf("consent: grantee %q: not a FHIR id", ref)
		}
	case "client":
		if len(id) > 255 || strings.ContainsAny(id, " \t\r\n/") {
			return fmt.Errorf("consent: grantee %q: bad client id", ref)
		}
	default:
		return fmt.Errorf("consent: grantee %q: kind must be one of %s", ref, strings.Join(granteeKinds, ", "))
	}
	return nil
}

// CAIP10 returns the CAIP-10 account id of addr on chainID,
// "eip155:<chainId>:<checksummed address>", the identifier value a Patient
// carries for its wallet.
func CAIP10(chainID uint64, addr common.Address) string {
	return "eip155:" + strconv.FormatUint(chainID, 10) + ":" + addr.Hex()
}

// ParseCAIP10 parses "eip155:<chainId>:<address>" (address in any case).
func ParseCAIP10(s string) (uint64, common.Address, error) {
	ns, rest, ok := strings.Cut(s, ":")
	if !ok || ns != "eip155" {
		return 0, common.Address{}, fmt.Errorf("consent: wallet %q: want eip155:<chainId>:<address>", s)
	}
	idStr, addr, ok := strings.Cut(rest, ":")
	if !ok {
		return 0, common.Address{}, fmt.Errorf("consent: wallet %q: want eip155:<chainId>:<address>", s)
	}
	id, err := strconv.ParseUint(idStr, 10, 64)
	if err != nil || id == 0 || (len(idStr) > 1 && idStr[0] == '0') {
		return 0, common.Address{}, fmt.Errorf("consent: wallet %q: bad chain id", s)
	}
	if !strings.HasPrefix(addr, "0x") || len(addr) != 42 || !common.IsHexAddress(addr) {
		return 0, common.Address{}, fmt.Errorf("consent: wallet %q: bad address", s)
	}
	return id, common.HexToAddress(addr), nil
}
