package auth

import (
	"errors"
	"strings"

	"github.com/fhirgate/fhirgate/policy"
)

// bindIdentity checks that a person's resource binding fits their role and
// derives the SMART patient context:
//
//   - patient: fhirUser "Patient/<id>" (or none: a token with no clinical
//     binding); patient context = <id>
//   - practitioner: "Practitioner/<id>" or none
//   - admin, regulator: "Practitioner/<id>" or none (an operator may be a
//     clinician too; their tokens still carry no patient context)
//   - system: none (backend clients are not people)
//   - applicant: none, and a wallet (a wallet asking to be registered)
//
// wallet, when set, must be a CAIP-10 eip155 account id.
func bindIdentity(role policy.Role, fhirUser, wallet string) (Identity, error) {
	id := Identity{FHIRUser: fhirUser, Wallet: wallet}
	if wallet != "" && !validCAIP10(wallet) {
		return Identity{}, errors.New("wallet must be a CAIP-10 id eip155:<chainId>:<address>")
	}
	if role == policy.RoleApplicant && (fhirUser != "" || wallet == "") {
		return Identity{}, errors.New("an applicant's token names a wallet and no record")
	}
	if fhirUser == "" {
		return id, nil
	}
	typ, rid, ok := strings.Cut(fhirUser, "/")
	if !ok || !validFHIRID(rid) {
		return Identity{}, errors.New("fhirUser must be Patient/<id> or Practitioner/<id>")
	}
	switch {
	case role == policy.RolePatient && typ == "Patient":
		id.Patient = rid
	case role == policy.RolePractitioner && typ == "Practitioner":
	case (role == policy.RoleAdmin || role == policy.RoleRegulator) && typ == "Practitioner":
	default:
		return Identity{}, errors.New("fhirUser does not fit the role")
	}
	return id, nil
}

// validFHIRID: FHIR R4 id, [A-Za-z0-9\-\.]{1,64}.
func validFHIRID(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// validCAIP10: "eip155:" chain id (decimal, no leading zero) ":0x" 40 hex.
func validCAIP10(s string) bool {
	rest, ok := strings.CutPrefix(s, "eip155:")
	if !ok {
		return false
	}
	chain, addr, ok := strings.Cut(rest, ":")
	if !ok || chain == "" || len(chain) > 20 || (chain[0] == '0') || len(addr) != 42 || addr[:2] != "0x" {
		return false
	}
	for i := 0; i < len(chain); i++ {
		if chain[i] < '0' || chain[i] > '9' {
			return false
		}
	}
	for i := 2; i < len(addr); i++ {
		c := addr[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}
