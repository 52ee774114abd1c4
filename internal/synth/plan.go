package synth

import "math"

// PatientsPerPractitioner is the ratio of the data set mix.
const PatientsPerPractitioner = 50

// Plan is a data set of about N resources in a realistic mix: one
// Practitioner per 50 Patients, and per Patient 0-4 Appointments and 0-4
// DiagnosticReports (2 of each on average), each referencing the Patient
// and a Practitioner (the Patient's general practitioner 70 % of the
// time). Like the resources, the plan is a pure function of the seed.
type Plan struct {
	Gen           *Generator
	Patients      int
	Practitioners int
}

// NewPlan plans about n resources (at least one Patient and one
// Practitioner).
func NewPlan(seed int64, n int) *Plan {
	per := 1 + 2 + 2 + 1.0/PatientsPerPractitioner
	p := max(1, int(math.Round(float64(n)/per)))
	return &Plan{Gen: New(seed), Patients: p, Practitioners: (p + PatientsPerPractitioner - 1) / PatientsPerPractitioner}
}

// Appointments returns how many Appointments patient i has.
func (p *Plan) Appointments(i int) int { return p.Gen.rng(kCounts, i, 0).IntN(5) }

// Reports returns how many DiagnosticReports patient i has.
func (p *Plan) Reports(i int) int { return p.Gen.rng(kCounts, i, 1).IntN(5) }

// GP returns the index of patient i's general practitioner.
func (p *Plan) GP(i int) int { return i % p.Practitioners }

// AppointmentPractitioner returns the practitioner of appointment j of
// patient i.
func (p *Plan) AppointmentPractitioner(i, j int) int { return p.practitioner(i, 2+2*j) }

// ReportPractitioner returns the performer of report j of patient i.
func (p *Plan) ReportPractitioner(i, j int) int { return p.practitioner(i, 3+2*j) }

func (p *Plan) practitioner(i, sub int) int {
	r := p.Gen.rng(kCounts, i, sub)
	if r.IntN(10) < 7 {
		return p.GP(i)
	}
	return r.IntN(p.Practitioners)
}

// Total returns the number of resources in the plan.
func (p *Plan) Total() int {
	n := p.Practitioners + p.Patients
	for i := range p.Patients {
		n += p.Appointments(i) + p.Reports(i)
	}
	return n
}
