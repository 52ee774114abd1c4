// Package synth generates realistic, deterministic FHIR R4 resources for
// load tests: Patients, Practitioners, Appointments and DiagnosticReports
// that reference each other.
//
// Every resource is a pure function of (seed, kind, index): the same seed
// gives the same bytes on every machine, any resource can be generated
// without generating the ones before it (so loaders can split the work),
// and the values a search needs (an MRN, a name, a date) can be recomputed
// later without storing anything.
package synth

import (
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Identifier systems the generator uses. The OIDs are under
// 2.16.840.1.113883.19, the arc HL7 reserves for examples.
const (
	MRNSystem       = "urn:oid:2.16.840.1.113883.19.5.1"
	AccessionSystem = "urn:oid:2.16.840.1.113883.19.5.2"
	NPISystem       = "http://hl7.org/fhir/sid/us-npi"
)

// Ref is a reference to another resource: "Patient/123" or
// "urn:uuid:..." inside a transaction Bundle.
type Ref struct {
	Reference string
	Display   string
}

// Generator makes resources for one seed. It is safe for concurrent use.
type Generator struct {
	seed uint64
}

// New returns the generator for seed.
func New(seed int64) *Generator { return &Generator{seed: uint64(seed)} }

// Streams: each (kind, index, sub-index) has its own random stream.
const (
	kPatient = iota + 1
	kPatientName
	kPractitioner
	kPractitionerName
	kAppointment
	kReport
	kCounts
	kUUID
	kBirth
	kApptStart
	kReportTime
)

func (g *Generator) rng(kind, i, j int) *rand.Rand {
	return rand.New(rand.NewPCG(g.seed^0x9e3779b97f4a7c15, uint64(kind)<<56|uint64(j)<<40|uint64(i)))
}

func pick[T any](r *rand.Rand, xs []T) T { return xs[r.IntN(len(xs))] }

// epoch is the fixed "now" of the data set: appointments before it are in
// the past (fulfilled, cancelled, no-show), after it in the future.
var epoch = time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)

// mrnMod bounds the MRN space: 8 digits, unique for the first 10^8
// patients of a seed.
const mrnMod = 100_000_000

// MRN returns patient i's medical record number (unique per seed for
// i < 10^8).
func (g *Generator) MRN(i int) string {
	// An affine map with a multiplier coprime to 10^8 is a bijection, so
	// numbers are unique but do not look sequential.
	x := (uint64(i)*48_271_057 + g.seed*7_919 + 12_345_678) % mrnMod
	s := strconv.FormatUint(x, 10)
	return strings.Repeat("0", 8-len(s)) + s
}

// NPI returns practitioner i's National Provider Identifier: 10 digits
// starting with 1 or 2, with the Luhn check digit NPIs carry (unique per
// seed for i < 2*10^8).
func (g *Generator) NPI(i int) string {
	x := (uint64(i)*1_000_003 + g.seed*31 + 7_654_321) % 200_000_000
	base := strconv.FormatUint(100_000_000+x, 10) // 9 digits
	return base + strconv.Itoa(npiCheckDigit(base))
}

// npiCheckDigit is the Luhn check digit of the 9-digit NPI base, computed
// with the prefix 80840 as the NPI standard says.
func npiCheckDigit(base string) int {
	digits := "80840" + base
	sum := 0
	for k := len(digits) - 1; k >= 0; k-- {
		d := int(digits[k] - '0')
		if (len(digits)-1-k)%2 == 0 { // the rightmost payload digit is doubled
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
	}
	return (10 - sum%10) % 10
}

// UUID returns a deterministic version-4 UUID for a fullUrl
// ("urn:uuid:" + UUID) in transaction Bundles.
func (g *Generator) UUID(kind, i, j int) string {
	r := g.rng(kUUID, i, j*16+kind)
	var b [16]byte
	for k := 0; k < 16; k += 8 {
		v := r.Uint64()
		for m := 0; m < 8; m++ {
			b[k+m] = byte(v >> (8 * m))
		}
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// Name is a person's name as generated.
type Name struct {
	Given  []string
	Family string
	Female bool
}

// Text is the name as displayed: "Given Family".
func (n Name) Text() string { return n.Given[0] + " " + n.Family }

func genName(r *rand.Rand) Name {
	n := Name{Female: r.IntN(2) == 0, Family: pick(r, family)}
	list := givenMale
	if n.Female {
		list = givenFemale
	}
	n.Given = []string{pick(r, list)}
	if r.IntN(3) == 0 {
		if m := pick(r, list); m != n.Given[0] {
			n.Given = append(n.Given, m)
		}
	}
	return n
}

// PatientName returns patient i's name.
func (g *Generator) PatientName(i int) Name { return genName(g.rng(kPatientName, i, 0)) }

// PractitionerName returns practitioner i's name.
func (g *Generator) PractitionerName(i int) Name {
	return genName(g.rng(kPractitionerName, i, 0))
}

// PatientBirthDate returns patient i's birth date, between 1930 and 2020.
func (g *Generator) PatientBirthDate(i int) time.Time {
	r := g.rng(kBirth, i, 0)
	lo := time.Date(1930, 1, 1, 0, 0, 0, 0, time.UTC)
	days := int(time.Date(2020, 12, 31, 0, 0, 0, 0, time.UTC).Sub(lo).Hours() / 24)
	return lo.AddDate(0, 0, r.IntN(days+1))
}

// PatientRef is a reference to patient i at reference (its display is
// the patient's name).
func (g *Generator) PatientRef(i int, reference string) Ref {
	return Ref{Reference: reference, Display: g.PatientName(i).Text()}
}

// PractitionerRef is a reference to practitioner i at reference.
func (g *Generator) PractitionerRef(i int, reference string) Ref {
	n := g.PractitionerName(i)
	return Ref{Reference: reference, Display: "Dr. " + n.Text()}
}

// Patient returns patient i. gp, if its Reference is set, becomes the
// general practitioner.
func (g *Generator) Patient(i int, gp Ref) []byte {
	r := g.rng(kPatient, i, 0)
	birth := g.PatientBirthDate(i)
	name := g.PatientName(i)
	mrn := g.MRN(i)
	pl := pick(r, places)

	var w jw
	w.raw(`{"resourceType":"Patient","text":{"status":"generated","div":`)
	w.str(`<div xmlns="http://www.w3.org/1999/xhtml"><p><b>` + xmlEscape(name.Text()) + `</b>, born ` +
		birth.Format("2006-01-02") + `, MRN ` + mrn + `</p></div>`)
	w.raw(`},"identifier":[{"use":"usual","type":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v2-0203","code":"MR","display":"Medical record number"}],"text":"MRN"},"system":`)
	w.str(MRNSystem)
	w.raw(`,"value":`)
	w.str(mrn)
	w.raw(`}],"active":true,"name":[{"use":"official","family":`)
	w.str(name.Family)
	w.raw(`,"given":[`)
	for k, gv := range name.Given {
		if k > 0 {
			w.raw(",")
		}
		w.str(gv)
	}
	w.raw(`]`)
	age := epoch.Year() - birth.Year()
	if age >= 18 {
		w.raw(`,"prefix":[`)
		switch {
		case !name.Female:
			w.str("Mr.")
		case r.IntN(2) == 0:
			w.str("Ms.")
		default:
			w.str("Mrs.")
		}
		w.raw(`]`)
	}
	w.raw(`}],"telecom":[{"system":"phone","value":`)
	w.str(phone(r, pl.phone))
	w.raw(`,"use":"home"}`)
	if age >= 12 {
		w.raw(`,{"system":"phone","value":`)
		w.str(phone(r, pl.phone))
		w.raw(`,"use":"mobile","rank":1},{"system":"email","value":`)
		w.str(email(name, r, "example.org"))
		w.raw(`,"use":"home"}`)
	}
	w.raw(`],"gender":`)
	switch {
	case r.IntN(200) == 0:
		w.str("other")
	case name.Female:
		w.str("female")
	default:
		w.str("male")
	}
	w.raw(`,"birthDate":`)
	w.str(birth.Format("2006-01-02"))
	if age > 80 && r.IntN(4) == 0 {
		d := birth.AddDate(80+r.IntN(age-79), r.IntN(12), r.IntN(28))
		if d.After(epoch) {
			d = epoch.AddDate(0, -1, 0)
		}
		w.raw(`,"deceasedDateTime":`)
		w.str(d.Format("2006-01-02"))
	}
	w.raw(`,"address":[{"use":"home","type":"both","line":[`)
	w.str(strconv.Itoa(1+r.IntN(9899)) + " " + pick(r, streets))
	if r.IntN(4) == 0 {
		w.raw(",")
		w.str("Apt " + strconv.Itoa(1+r.IntN(40)))
	}
	w.raw(`],"city":`)
	w.str(pl.city)
	w.raw(`,"state":`)
	w.str(pl.state)
	w.raw(`,"postalCode":`)
	w.str(pl.zip)
	w.raw(`,"country":"US"}]`)
	if age >= 18 {
		w.raw(`,"maritalStatus":`)
		w.codeable(pick(r, maritalStatus), "")
	}
	lang := languages[0]
	if r.IntN(4) == 0 {
		lang = pick(r, languages)
	}
	w.raw(`,"communication":[{"language":`)
	w.codeable(lang, "")
	w.raw(`,"preferred":true}]`)
	if gp.Reference != "" {
		w.raw(`,"generalPractitioner":[`)
		w.ref(gp)
		w.raw(`]`)
	}
	w.raw(`}`)
	return w.b
}

// Practitioner returns practitioner i.
func (g *Generator) Practitioner(i int) []byte {
	r := g.rng(kPractitioner, i, 0)
	name := g.PractitionerName(i)
	deg := pick(r, degrees)
	spec := pick(r, specialties)
	pl := pick(r, places)

	var w jw
	w.raw(`{"resourceType":"Practitioner","identifier":[{"use":"official","system":`)
	w.str(NPISystem)
	w.raw(`,"value":`)
	w.str(g.NPI(i))
	w.raw(`}],"active":true,"name":[{"use":"official","family":`)
	w.str(name.Family)
	w.raw(`,"given":[`)
	for k, gv := range name.Given {
		if k > 0 {
			w.raw(",")
		}
		w.str(gv)
	}
	w.raw(`],"prefix":["Dr."],"suffix":[`)
	w.str(deg.code)
	w.raw(`]}],"telecom":[{"system":"phone","value":`)
	w.str(phone(r, pl.phone))
	w.raw(`,"use":"work"},{"system":"email","value":`)
	w.str(email(name, r, "clinic.example.org"))
	w.raw(`,"use":"work"}],"address":[{"use":"work","line":[`)
	w.str(strconv.Itoa(1+r.IntN(9899)) + " " + pick(r, streets))
	w.raw(`],"city":`)
	w.str(pl.city)
	w.raw(`,"state":`)
	w.str(pl.state)
	w.raw(`,"postalCode":`)
	w.str(pl.zip)
	w.raw(`,"country":"US"}],"gender":`)
	if name.Female {
		w.str("female")
	} else {
		w.str("male")
	}
	w.raw(`,"birthDate":`)
	w.str(time.Date(1950+r.IntN(45), time.Month(1+r.IntN(12)), 1+r.IntN(28), 0, 0, 0, 0, time.UTC).Format("2006-01-02"))
	since := 1980 + r.IntN(40)
	w.raw(`,"qualification":[{"code":`)
	w.codeable(deg, "")
	w.raw(`,"period":{"start":`)
	w.str(strconv.Itoa(since))
	w.raw(`},"issuer":{"display":"State Medical Board"}},{"code":`)
	w.codeable(spec, "")
	w.raw(`,"period":{"start":`)
	w.str(strconv.Itoa(since + 3 + r.IntN(5)))
	w.raw(`}}]}`)
	return w.b
}

// AppointmentStart returns the start of appointment j of patient i: a
// quarter hour between 08:00 and 17:45 UTC on a day in 2016-2025.
func (g *Generator) AppointmentStart(i, j int) time.Time {
	r := g.rng(kApptStart, i, j)
	return time.Date(2016, 1, 1, 8, 0, 0, 0, time.UTC).
		AddDate(0, 0, r.IntN(3653)).
		Add(time.Duration(r.IntN(40)) * 15 * time.Minute)
}

// Appointment returns appointment j of patient i between patient and
// practitioner.
func (g *Generator) Appointment(i, j int, patient, practitioner Ref) []byte {
	start := g.AppointmentStart(i, j)
	r := g.rng(kAppointment, i, j)
	mins := []int{15, 20, 30, 30, 45, 60}[r.IntN(6)]
	end := start.Add(time.Duration(mins) * time.Minute)
	status := "booked"
	if start.Before(epoch) {
		switch n := r.IntN(20); {
		case n < 16:
			status = "fulfilled"
		case n < 18:
			status = "cancelled"
		default:
			status = "noshow"
		}
	} else if r.IntN(10) == 0 {
		status = "cancelled"
	}
	created := start.AddDate(0, 0, -1-r.IntN(60)).Add(-time.Duration(r.IntN(600)) * time.Minute)

	var w jw
	w.raw(`{"resourceType":"Appointment","status":`)
	w.str(status)
	if status == "cancelled" {
		w.raw(`,"cancelationReason":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/appointment-cancellation-reason","code":"pat","display":"Patient"}]}`)
	}
	w.raw(`,"serviceType":[`)
	w.codeable(pick(r, serviceTypes), "")
	w.raw(`],"appointmentType":`)
	w.codeable(pick(r, appointmentTypes), "")
	w.raw(`,"description":`)
	w.str(pick(r, appointmentDescriptions))
	w.raw(`,"start":`)
	w.str(start.Format(time.RFC3339))
	w.raw(`,"end":`)
	w.str(end.Format(time.RFC3339))
	w.raw(`,"minutesDuration":`)
	w.raw(strconv.Itoa(mins))
	w.raw(`,"created":`)
	w.str(created.Format(time.RFC3339))
	w.raw(`,"participant":[{"actor":`)
	w.ref(patient)
	w.raw(`,"required":"required","status":"accepted"},{"type":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v3-ParticipationType","code":"ATND","display":"attender"}]}],"actor":`)
	w.ref(practitioner)
	w.raw(`,"required":"required","status":"accepted"}]}`)
	return w.b
}

// ReportEffective returns when report j of patient i was taken.
func (g *Generator) ReportEffective(i, j int) time.Time {
	r := g.rng(kReportTime, i, j)
	return time.Date(2016, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(r.Int64N(3653*24*3600)) * time.Second)
}

// DiagnosticReport returns report j of patient i about patient, performed
// by practitioner.
func (g *Generator) DiagnosticReport(i, j int, patient, practitioner Ref) []byte {
	eff := g.ReportEffective(i, j)
	r := g.rng(kReport, i, j)
	k := pick(r, reportKinds)
	issued := eff.Add(time.Duration(1+r.IntN(72*60)) * time.Minute)
	status := "final"
	switch n := r.IntN(20); {
	case n == 0:
		status = "amended"
	case n < 3:
		status = "preliminary"
	}
	conclusion := pick(r, k.conclusions)
	text := "DIAGNOSTIC REPORT\n" + k.code.display + " (LOINC " + k.code.code + ")\n" +
		"Patient: " + patient.Display + "\n" +
		"Collected: " + eff.Format(time.RFC3339) + "\n" +
		"Status: " + status + "\n" +
		"Conclusion: " + conclusion + "\n" +
		"Signed: " + practitioner.Display + "\n"

	var w jw
	w.raw(`{"resourceType":"DiagnosticReport","identifier":[{"use":"official","system":`)
	w.str(AccessionSystem)
	w.raw(`,"value":`)
	w.str(fmt.Sprintf("ACC%02d%010d", j, (uint64(i)*2_654_435_761+g.seed)%10_000_000_000))
	w.raw(`}],"status":`)
	w.str(status)
	w.raw(`,"category":[`)
	w.codeable(k.category, "")
	w.raw(`],"code":`)
	w.codeable(k.code, k.code.display)
	w.raw(`,"subject":`)
	w.ref(patient)
	w.raw(`,"effectiveDateTime":`)
	w.str(eff.Format(time.RFC3339))
	w.raw(`,"issued":`)
	w.str(issued.Format(time.RFC3339))
	w.raw(`,"performer":[`)
	w.ref(practitioner)
	w.raw(`],"conclusion":`)
	w.str(conclusion)
	w.raw(`,"presentedForm":[{"contentType":"text/plain; charset=utf-8","language":"en-US","data":`)
	w.str(base64.StdEncoding.EncodeToString([]byte(text)))
	w.raw(`,"title":`)
	w.str(k.code.display)
	w.raw(`,"creation":`)
	w.str(issued.Format(time.RFC3339))
	w.raw(`}]}`)
	return w.b
}

// Entry is one entry of a transaction Bundle: a resource created at
// FullURL ("urn:uuid:...").
type Entry struct {
	FullURL  string
	Type     string
	Resource []byte
}

// TransactionBundle returns a Bundle of type transaction that creates
// every entry with POST.
func TransactionBundle(entries []Entry) []byte {
	n := 64
	for _, e := range entries {
		n += len(e.Resource) + len(e.FullURL) + 80
	}
	w := jw{b: make([]byte, 0, n)}
	w.raw(`{"resourceType":"Bundle","type":"transaction","entry":[`)
	for k, e := range entries {
		if k > 0 {
			w.raw(",")
		}
		w.raw(`{"fullUrl":`)
		w.str(e.FullURL)
		w.raw(`,"resource":`)
		w.b = append(w.b, e.Resource...)
		w.raw(`,"request":{"method":"POST","url":`)
		w.str(e.Type)
		w.raw(`}}`)
	}
	w.raw(`]}`)
	return w.b
}

func phone(r *rand.Rand, area string) string {
	return "+1 " + area + "-555-" + strconv.Itoa(1000+r.IntN(9000))
}

func email(n Name, r *rand.Rand, domain string) string {
	return ascii(n.Given[0]) + "." + ascii(n.Family) + strconv.Itoa(r.IntN(1000)) + "@" + domain
}

// fold maps the accented letters of the name lists to ASCII for e-mail
// addresses.
var fold = strings.NewReplacer(
	"á", "a", "à", "a", "â", "a", "ä", "a", "ã", "a", "å", "a", "Á", "A", "Å", "A", "Ä", "A",
	"é", "e", "è", "e", "ê", "e", "ë", "e", "É", "E",
	"í", "i", "ï", "i", "î", "i", "Í", "I",
	"ó", "o", "ô", "o", "ö", "o", "õ", "o", "ø", "o", "Ó", "O", "Ö", "O", "Ø", "O", "Ó", "O",
	"ú", "u", "ü", "u", "û", "u", "Ú", "U",
	"ñ", "n", "ç", "c", "Ç", "C", "ß", "ss", "ł", "l", "Ł", "L", "ś", "s", "Ś", "S", "ş", "s", "Ş", "S",
	"ș", "s", "Ș", "S", "ț", "t", "Ț", "T", "ğ", "g", "ı", "i", "ý", "y", "ž", "z", "č", "c", "Č", "C",
	"ř", "r", "ě", "e", "š", "s", "Š", "S", "ð", "d", "þ", "th", "Þ", "Th", "æ", "ae", "ą", "a", "ę", "e", "ń", "n", "ź", "z", "ż", "z",
)

func ascii(s string) string {
	s = fold.Replace(s)
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
			b = append(b, c)
		case c >= 'A' && c <= 'Z':
			b = append(b, c+'a'-'A')
		}
	}
	if len(b) == 0 {
		return "x"
	}
	return string(b)
}

func xmlEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// jw appends JSON.
type jw struct{ b []byte }

func (w *jw) raw(s string) { w.b = append(w.b, s...) }

// str appends s as a JSON string.
func (w *jw) str(s string) {
	const hex = "0123456789abcdef"
	w.b = append(w.b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				w.b = append(w.b, '\\', c)
			case c == '\n':
				w.b = append(w.b, '\\', 'n')
			case c < 0x20:
				w.b = append(w.b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				w.b = append(w.b, c)
			}
			i++
			continue
		}
		_, n := utf8.DecodeRuneInString(s[i:])
		w.b = append(w.b, s[i:i+n]...)
		i += n
	}
	w.b = append(w.b, '"')
}

func (w *jw) codeable(c coding, text string) {
	w.raw(`{"coding":[{"system":`)
	w.str(c.system)
	w.raw(`,"code":`)
	w.str(c.code)
	w.raw(`,"display":`)
	w.str(c.display)
	w.raw(`}]`)
	if text != "" {
		w.raw(`,"text":`)
		w.str(text)
	}
	w.raw(`}`)
}

func (w *jw) ref(r Ref) {
	w.raw(`{"reference":`)
	w.str(r.Reference)
	if r.Display != "" {
		w.raw(`,"display":`)
		w.str(r.Display)
	}
	w.raw(`}`)
}
