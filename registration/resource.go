package registration

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"

	"github.com/fhirgate/fhirgate/auth/siwe"
)

// System is the identifier system of the records a verification creates:
// the value is the request's id. A record is created under a claim on it
// (a conditional create), so a retry or another replica finds the record
// instead of making a second one.
const System = "urn:fhirgate:registration"

// Criteria is the conditional-create criteria of the records request id
// creates.
func Criteria(id string) string { return "identifier=" + System + "|" + id }

type jsonIdent struct {
	System string `json:"system"`
	Value  string `json:"value"`
}

type jsonName struct {
	Family string   `json:"family,omitempty"`
	Given  []string `json:"given,omitempty"`
	Prefix []string `json:"prefix,omitempty"`
}

type concept struct {
	Text string `json:"text"`
}

func (n Name) fhir() []jsonName {
	return []jsonName{{Family: n.Family, Given: strings.Fields(n.Given), Prefix: strings.Fields(n.Prefix)}}
}

// Text is the name as one line ("Dr. Maria Santos").
func (n Name) Text() string {
	return strings.Join(strings.Fields(n.Prefix+" "+n.Given+" "+n.Family), " ")
}

func (r *Request) idents() []jsonIdent {
	return []jsonIdent{{siwe.CAIP10System, r.Wallet}, {System, r.ID}}
}

// PractitionerResource is the Practitioner a verified practitioner's
// request creates: active, the wallet, the licence, the name and the
// qualification as asserted.
func (r *Request) PractitionerResource() []byte {
	ids := r.idents()
	if l := r.Asserted.Licence; l != nil {
		ids = append(ids, jsonIdent{l.System, l.Value})
	}
	type qual struct {
		Code       concept     `json:"code"`
		Identifier []jsonIdent `json:"identifier,omitempty"`
	}
	var q []qual
	if r.Asserted.Qualification != "" {
		q = []qual{{Code: concept{r.Asserted.Qualification}}}
		if l := r.Asserted.Licence; l != nil {
			q[0].Identifier = []jsonIdent{{l.System, l.Value}}
		}
	}
	return mustJSON(struct {
		ResourceType  string      `json:"resourceType"`
		Active        bool        `json:"active"`
		Identifier    []jsonIdent `json:"identifier"`
		Name          []jsonName  `json:"name"`
		Qualification []qual      `json:"qualification,omitempty"`
	}{"Practitioner", true, ids, r.Asserted.Name.fhir(), q})
}

// RoleResource is the PractitionerRole with the asserted specialty, or
// nil when none was given.
func (r *Request) RoleResource(practitioner string) []byte {
	if r.Asserted.Specialty == "" {
		return nil
	}
	return mustJSON(struct {
		ResourceType string      `json:"resourceType"`
		Active       bool        `json:"active"`
		Identifier   []jsonIdent `json:"identifier"`
		Practitioner struct {
			Reference string `json:"reference"`
		} `json:"practitioner"`
		Specialty []concept `json:"specialty"`
	}{ResourceType: "PractitionerRole", Active: true, Identifier: []jsonIdent{{System, r.ID}},
		Practitioner: struct {
			Reference string `json:"reference"`
		}{practitioner}, Specialty: []concept{{r.Asserted.Specialty}}})
}

// PatientResource is the Patient a verified patient's request creates.
func (r *Request) PatientResource() []byte {
	type telecom struct {
		System string `json:"system"`
		Value  string `json:"value"`
	}
	var tel []telecom
	if r.Asserted.Email != "" {
		tel = append(tel, telecom{"email", r.Asserted.Email})
	}
	if r.Asserted.Phone != "" {
		tel = append(tel, telecom{"phone", r.Asserted.Phone})
	}
	return mustJSON(struct {
		ResourceType string      `json:"resourceType"`
		Identifier   []jsonIdent `json:"identifier"`
		Name         []jsonName  `json:"name"`
		BirthDate    string      `json:"birthDate"`
		Telecom      []telecom   `json:"telecom,omitempty"`
	}{"Patient", r.idents(), r.Asserted.Name.fhir(), r.Asserted.BirthDate, tel})
}

// ErrOtherWallet: the record is linked to another wallet, and the
// verification does not replace it.
var ErrOtherWallet = errors.New("this record is already linked to another wallet; verify with replaceWallet to replace a lost wallet")

// LinkWallet returns body (a stored Patient or Practitioner) with wallet
// as its wallet identifier: the wallets it held are removed when replace
// is set (ErrOtherWallet otherwise); a Practitioner is made active. It
// returns whether another wallet was removed, and a nil body when the
// record is already linked to wallet alone (and active): nothing to write.
func LinkWallet(body []byte, wallet string, replace bool) (out []byte, replaced bool, err error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber() // numbers keep their text
	var res map[string]any
	if err := dec.Decode(&res); err != nil {
		return nil, false, err
	}
	want := WalletKey(wallet)
	ids, _ := res["identifier"].([]any)
	kept := make([]any, 0, len(ids)+1)
	has := false
	for _, it := range ids {
		m, _ := it.(map[string]any)
		if m != nil && m["system"] == siwe.CAIP10System {
			v, _ := m["value"].(string)
			if WalletKey(v) == want {
				if !has {
					kept = append(kept, it)
				}
				has = true
				continue
			}
			if !replace {
				return nil, false, ErrOtherWallet
			}
			replaced = true
			continue
		}
		kept = append(kept, it)
	}
	if !has {
		kept = append(kept, map[string]any{"system": siwe.CAIP10System, "value": wallet})
	}
	changed := !has || replaced
	if res["resourceType"] == "Practitioner" && res["active"] != true {
		res["active"] = true
		changed = true
	}
	if !changed {
		return nil, false, nil
	}
	res["identifier"] = kept
	delete(res, "meta")
	return mustJSON(res), replaced, nil
}

// SetActive returns a stored Practitioner body with active set, or nil
// when it already is.
func SetActive(body []byte, active bool) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var res map[string]any
	if err := dec.Decode(&res); err != nil {
		return nil, err
	}
	if res["active"] == active {
		return nil, nil
	}
	res["active"] = active
	delete(res, "meta")
	return mustJSON(res), nil
}
