// Package registration keeps the requests of people who sign in with a
// wallet linked to no record (the applicant role) and ask to be registered
// as a practitioner or a patient, until an administrator (or, for
// patients, an EHR system registered for identity linking) verifies or
// rejects them, or the person withdraws them.
//
// Requests are not FHIR resources: they hold what a person asserts about
// themselves, which nobody has checked, and must not be found by a FHIR
// search or counted as a record. They live in the store's engine under
// their own key prefix (store.go), and every state change is a
// conditional commit, so that replicas racing on one request make exactly
// one transition. This package also builds the FHIR resources a
// verification creates (resource.go); fhir/rest writes them.
package registration

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Kind is what a request asks to be registered as.
type Kind string

// The kinds.
const (
	Practitioner Kind = "practitioner"
	Patient      Kind = "patient"
)

// Status is where a request is in its life.
type Status string

// The statuses. Only a pending request changes: the others are final.
const (
	Pending   Status = "pending"
	Verified  Status = "verified"
	Rejected  Status = "rejected"
	Withdrawn Status = "withdrawn"
)

// Actions in a request's history.
const (
	ActSubmitted     = "submitted"
	ActWithdrawn     = "withdrawn"
	ActVerified      = "verified"
	ActRejected      = "rejected"
	ActDeactivated   = "deactivated"
	ActReactivated   = "reactivated"
	ActWalletReplace = "wallet-replaced"
)

// Who acted, as the requester reads it.
const (
	ByYou     = "you"
	ByAdmin   = "an administrator"
	ByLinking = "an identity-linking system"
)

// Bounds of what a request may hold.
const (
	MaxField     = 200 // characters in any one string field
	MaxNameParts = 5   // words in name.prefix and in name.given
	MaxReason    = 500 // characters in a rejection or deactivation reason
	MaxPerWallet = 20  // requests one wallet may ever make
)

// Name is a person's name as they typed it.
type Name struct {
	Prefix string `json:"prefix,omitempty"`
	Given  string `json:"given,omitempty"`
	Family string `json:"family,omitempty"`
}

// Identifier is a licence number and the system that issued it.
type Identifier struct {
	System string `json:"system"`
	Value  string `json:"value"`
}

// Asserted is what the requester says about themselves: nothing in it is
// checked against anything but its form.
type Asserted struct {
	Name Name `json:"name"`
	// Practitioner.
	Qualification string      `json:"qualification,omitempty"`
	Specialty     string      `json:"specialty,omitempty"`
	Licence       *Identifier `json:"licence,omitempty"`
	// Patient.
	BirthDate string `json:"birthDate,omitempty"`
	Email     string `json:"email,omitempty"`
	Phone     string `json:"phone,omitempty"`
	// ClinicNumber is the record number the patient believes the clinic
	// holds: a hint for the administrator, never used to link by itself.
	ClinicNumber string `json:"clinicNumber,omitempty"`
}

// Entry is one event in a request's history.
type Entry struct {
	At         time.Time `json:"at"`
	Action     string    `json:"action"`
	By         string    `json:"by"`
	Reason     string    `json:"reason,omitempty"`
	AuditEvent string    `json:"auditEvent,omitempty"`
}

// Request is a registration request as its requester and the
// administrators see it.
type Request struct {
	ID        string    `json:"id"`
	Kind      Kind      `json:"kind"`
	Status    Status    `json:"status"`
	Wallet    string    `json:"wallet"`
	Submitted time.Time `json:"submitted"`
	Asserted  Asserted  `json:"asserted"`
	Record    string    `json:"record,omitempty"`
	Reason    string    `json:"reason,omitempty"`
	History   []Entry   `json:"history"`
}

// Link is how a verification links the request's wallet to a record,
// decided when the request turns verified and kept with it, so that a
// retry (or another replica) finishes the same work rather than its own.
type Link struct {
	// Record is "Patient/<id>" or "Practitioner/<id>".
	Record string `json:"record"`
	// Create: the verification creates Record (with the id chosen here);
	// otherwise it links an existing one.
	Create bool `json:"create,omitempty"`
	// ReplaceWallet: the wallets the record held are removed.
	ReplaceWallet bool `json:"replaceWallet,omitempty"`
}

// stored is a request as the store keeps it: the request and how its
// verification links it (not shown to the requester).
type stored struct {
	Request
	Link *Link `json:"link,omitempty"`
}

// FieldError is a refused field of a request body, named as the body
// names it.
type FieldError struct {
	Field string
	Msg   string
}

func (e *FieldError) Error() string {
	if e.Field == "" {
		return e.Msg
	}
	return e.Field + ": " + e.Msg
}

// ErrInvalid is wrapped by every FieldError (errors.Is).
var ErrInvalid = errors.New("invalid registration request")

// Is makes errors.Is(err, ErrInvalid) true.
func (e *FieldError) Is(target error) bool { return target == ErrInvalid }

func fieldErr(field, format string, args ...any) error {
	return &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

// body is a request body as sent: every field of both kinds, so that a
// field of the other kind is refused by name rather than ignored.
type body struct {
	Kind          *string     `json:"kind"`
	Name          *Name       `json:"name"`
	Qualification string      `json:"qualification"`
	Specialty     string      `json:"specialty"`
	Licence       *Identifier `json:"licence"`
	BirthDate     string      `json:"birthDate"`
	Email         string      `json:"email"`
	Phone         string      `json:"phone"`
	ClinicNumber  string      `json:"clinicNumber"`
}

// ParseRequest reads a request body: {"kind":"practitioner"|"patient",
// ...}. It refuses unknown fields, fields of the other kind, missing
// required ones and values out of bounds, naming the field in plain
// words. now bounds the birth date.
func ParseRequest(data []byte, now time.Time) (Kind, Asserted, error) {
	var b body
	if err := strictDecode(data, &b); err != nil {
		return "", Asserted{}, err
	}
	if b.Kind == nil {
		return "", Asserted{}, fieldErr("kind", `say what you register as: "practitioner" or "patient"`)
	}
	kind := Kind(*b.Kind)
	if kind != Practitioner && kind != Patient {
		return "", Asserted{}, fieldErr("kind", `must be "practitioner" or "patient"`)
	}
	a := Asserted{Qualification: b.Qualification, Specialty: b.Specialty, Licence: b.Licence,
		BirthDate: b.BirthDate, Email: b.Email, Phone: b.Phone, ClinicNumber: b.ClinicNumber}
	if b.Name != nil {
		a.Name = *b.Name
	}
	if err := a.check(kind, now); err != nil {
		return "", Asserted{}, err
	}
	return kind, a, nil
}

// strictDecode decodes one JSON object into v, refusing unknown fields
// and trailing data.
func strictDecode(data []byte, v any) error {
	if !utf8.Valid(data) {
		return fieldErr("", "the body is not valid UTF-8 text")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &te) && te.Field != "":
			return fieldErr(te.Field, "has the wrong type (expected %s)", te.Type)
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			f := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
			return fieldErr(truncate(f, 40), "is not a field of a registration request")
		}
		return fieldErr("", "the body must be one JSON object")
	}
	if _, err := dec.Token(); err != io.EOF {
		return fieldErr("", "the body must be one JSON object, with nothing after it")
	}
	return nil
}

func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n]) + "..."
}

// check applies the bounds and the rules of kind.
func (a *Asserted) check(kind Kind, now time.Time) error {
	fields := []struct {
		name, v string
	}{
		{"name.prefix", a.Name.Prefix}, {"name.given", a.Name.Given}, {"name.family", a.Name.Family},
		{"qualification", a.Qualification}, {"specialty", a.Specialty},
		{"birthDate", a.BirthDate}, {"email", a.Email}, {"phone", a.Phone}, {"clinicNumber", a.ClinicNumber},
	}
	if a.Licence != nil {
		fields = append(fields, struct{ name, v string }{"licence.system", a.Licence.System},
			struct{ name, v string }{"licence.value", a.Licence.Value})
	}
	for i := range fields {
		f := &fields[i]
		if err := checkText(f.name, f.v, MaxField); err != nil {
			return err
		}
	}
	// Stored as sent, without the spaces around.
	trim := func(s *string) { *s = strings.TrimSpace(*s) }
	for _, s := range []*string{&a.Name.Prefix, &a.Name.Given, &a.Name.Family, &a.Qualification, &a.Specialty,
		&a.BirthDate, &a.Email, &a.Phone, &a.ClinicNumber} {
		trim(s)
	}
	if a.Licence != nil {
		trim(&a.Licence.System)
		trim(&a.Licence.Value)
	}
	if a.Name.Family == "" {
		return fieldErr("name.family", "your family name is required")
	}
	if n := len(strings.Fields(a.Name.Given)); n > MaxNameParts {
		return fieldErr("name.given", "at most %d given names", MaxNameParts)
	}
	if n := len(strings.Fields(a.Name.Prefix)); n > MaxNameParts {
		return fieldErr("name.prefix", "at most %d words", MaxNameParts)
	}
	other := func(field, v string) error {
		if v != "" {
			return fieldErr(field, "is not asked of a %s", kind)
		}
		return nil
	}
	switch kind {
	case Practitioner:
		for _, f := range [][2]string{{"birthDate", a.BirthDate}, {"email", a.Email}, {"phone", a.Phone}, {"clinicNumber", a.ClinicNumber}} {
			if err := other(f[0], f[1]); err != nil {
				return err
			}
		}
		if a.Qualification == "" {
			return fieldErr("qualification", "your qualification is required (for example MD)")
		}
		if a.Licence == nil || a.Licence.Value == "" {
			return fieldErr("licence.value", "your licence number is required")
		}
		if !plausibleURI(a.Licence.System) {
			return fieldErr("licence.system", "must be the URI of the register that issued the licence (for example http://hl7.org/fhir/sid/us-npi)")
		}
	case Patient:
		if a.Licence != nil {
			return fieldErr("licence", "is not asked of a patient")
		}
		for _, f := range [][2]string{{"qualification", a.Qualification}, {"specialty", a.Specialty}} {
			if err := other(f[0], f[1]); err != nil {
				return err
			}
		}
		if a.BirthDate == "" {
			return fieldErr("birthDate", "your birth date is required (YYYY-MM-DD)")
		}
		if err := checkBirthDate(a.BirthDate, now); err != nil {
			return err
		}
		if a.Email == "" && a.Phone == "" {
			return fieldErr("email", "give an email address or a phone number, so that the clinic can reach you")
		}
		if a.Email != "" && !plausibleEmail(a.Email) {
			return fieldErr("email", "is not an email address (name@example.org)")
		}
		if a.Phone != "" && !plausiblePhone(a.Phone) {
			return fieldErr("phone", "is not a phone number (digits, spaces, + - ( ) only, 6 to 20 digits)")
		}
	}
	return nil
}

// checkText bounds a string field and refuses control characters.
func checkText(field, v string, max int) error {
	if n := utf8.RuneCountInString(v); n > max {
		return fieldErr(field, "is %d characters long; at most %d are allowed", n, max)
	}
	for _, r := range v {
		if unicode.IsControl(r) || r == utf8.RuneError {
			return fieldErr(field, "contains a control character")
		}
	}
	return nil
}

// CheckReason bounds a reason an administrator gives (required says it
// may not be empty).
func CheckReason(reason string, required bool) (string, error) {
	if err := checkText("reason", strings.ReplaceAll(reason, "\n", " "), MaxReason); err != nil {
		return "", err
	}
	reason = strings.TrimSpace(reason)
	if required && reason == "" {
		return "", fieldErr("reason", "a reason is required: the person reads it")
	}
	return reason, nil
}

// checkBirthDate accepts a FHIR date (YYYY, YYYY-MM or YYYY-MM-DD) that
// is not in the future.
func checkBirthDate(v string, now time.Time) error {
	var t time.Time
	var err error
	switch len(v) {
	case 4:
		t, err = time.Parse("2006", v)
	case 7:
		t, err = time.Parse("2006-01", v)
	case 10:
		t, err = time.Parse("2006-01-02", v)
	default:
		err = errors.New("length")
	}
	if err != nil || t.Year() < 1800 {
		return fieldErr("birthDate", "is not a date (YYYY-MM-DD)")
	}
	// A date is in the future only if it starts after today ends,
	// wherever the requester is.
	if t.After(now.UTC().Add(14 * time.Hour)) {
		return fieldErr("birthDate", "is in the future")
	}
	return nil
}

func plausibleEmail(v string) bool {
	local, domain, ok := strings.Cut(v, "@")
	if !ok || local == "" || strings.Contains(domain, "@") || strings.ContainsAny(v, " \t<>(),;:\"[]\\") {
		return false
	}
	dot := strings.LastIndexByte(domain, '.')
	return dot > 0 && dot < len(domain)-2 && !strings.Contains(domain, "..")
}

func plausiblePhone(v string) bool {
	digits := 0
	for i, r := range v {
		switch {
		case r >= '0' && r <= '9':
			digits++
		case r == '+' && i == 0, r == ' ', r == '-', r == '(', r == ')', r == '.':
		default:
			return false
		}
	}
	return digits >= 6 && digits <= 20
}

func plausibleURI(v string) bool {
	scheme, rest, ok := strings.Cut(v, ":")
	if !ok || scheme == "" || rest == "" || strings.ContainsAny(v, " \t") {
		return false
	}
	for i, r := range scheme {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || i > 0 && (r >= '0' && r <= '9' || r == '+' || r == '-' || r == '.')) {
			return false
		}
	}
	return true
}

// VerifyBody is what an administrator sends to verify a request: empty to
// create a record; Record (practitioner) or ClinicNumber (patient) to
// link an existing one.
type VerifyBody struct {
	Record        string `json:"record,omitempty"`
	ClinicNumber  string `json:"clinicNumber,omitempty"`
	ClinicSystem  string `json:"clinicSystem,omitempty"`
	ReplaceWallet bool   `json:"replaceWallet,omitempty"`
}

// ParseVerify reads a verify body for a request of kind (an empty body is
// {}).
func ParseVerify(data []byte, kind Kind) (VerifyBody, error) {
	var v VerifyBody
	if len(bytes.TrimSpace(data)) == 0 {
		return v, nil
	}
	if err := strictDecode(data, &v); err != nil {
		return v, err
	}
	for _, f := range [][2]string{{"record", v.Record}, {"clinicNumber", v.ClinicNumber}, {"clinicSystem", v.ClinicSystem}} {
		if err := checkText(f[0], f[1], MaxField); err != nil {
			return v, err
		}
	}
	v.Record, v.ClinicNumber, v.ClinicSystem = strings.TrimSpace(v.Record), strings.TrimSpace(v.ClinicNumber), strings.TrimSpace(v.ClinicSystem)
	switch kind {
	case Practitioner:
		if v.ClinicNumber != "" || v.ClinicSystem != "" {
			return v, fieldErr("clinicNumber", "a practitioner's request links an existing record by record, not by clinic number")
		}
		if v.Record != "" && !validRef(v.Record, "Practitioner") {
			return v, fieldErr("record", "must be Practitioner/<id>")
		}
	case Patient:
		if v.Record != "" {
			return v, fieldErr("record", "a patient's record is found by the clinic's number and the birth date: send clinicNumber")
		}
		if v.ClinicSystem != "" && v.ClinicNumber == "" {
			return v, fieldErr("clinicNumber", "is required with clinicSystem")
		}
	}
	if v.ReplaceWallet && v.Record == "" && v.ClinicNumber == "" {
		return v, fieldErr("replaceWallet", "replaces the wallet of an existing record: name the record")
	}
	return v, nil
}

// RecordBody is what deactivate and reactivate take.
type RecordBody struct {
	Record string `json:"record"`
	Reason string `json:"reason,omitempty"`
}

// ParseRecordBody reads {"record":"Practitioner/<id>","reason":"..."}.
func ParseRecordBody(data []byte, reasonRequired bool) (RecordBody, error) {
	var v RecordBody
	if len(bytes.TrimSpace(data)) == 0 {
		return v, fieldErr("record", `name the practitioner: {"record":"Practitioner/<id>","reason":"..."}`)
	}
	if err := strictDecode(data, &v); err != nil {
		return v, err
	}
	if !validRef(v.Record, "Practitioner") {
		return v, fieldErr("record", "must be Practitioner/<id>")
	}
	r, err := CheckReason(v.Reason, reasonRequired)
	v.Reason = r
	return v, err
}

// ParseReject reads {"reason":"..."} (required).
func ParseReject(data []byte) (string, error) {
	var v struct {
		Reason string `json:"reason"`
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return "", fieldErr("reason", "a reason is required: the person reads it")
	}
	if err := strictDecode(data, &v); err != nil {
		return "", err
	}
	return CheckReason(v.Reason, true)
}

// validRef reports whether ref is typ/<id> with a FHIR id.
func validRef(ref, typ string) bool {
	id, ok := strings.CutPrefix(ref, typ+"/")
	if !ok || id == "" || len(id) > 64 {
		return false
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.') {
			return false
		}
	}
	return true
}
