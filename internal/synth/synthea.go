package synth

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"time"
)

// Synthea-shaped bundles: what Synthea's FHIR R4 exporter writes with
// exporter.fhir.transaction_bundle=true (its jar cannot be fetched here).
// A hospital bundle and a practitioner bundle create the care directory
// with POST + ifNoneExist on the resource's identifier; each patient
// bundle is one transaction whose entries have urn:uuid fullUrls and
// refer to the directory by conditional references only:
//
//	Encounter.participant[].individual  Practitioner?identifier=http://hl7.org/fhir/sid/us-npi|<npi>
//	Encounter.serviceProvider           Organization?identifier=https://github.com/synthetichealth/synthea|<uuid>
//	Encounter.location[].location       Location?identifier=https://github.com/synthetichealth/synthea|<uuid>
//	Claim.provider, Claim.facility, ExplanationOfBenefit.provider and careTeam, MedicationRequest.requester,
//	DocumentReference.author and custodian, Provenance.agent: the same forms.
//
// The composition of a patient's record follows Synthea's exporter: per
// encounter an Encounter, its Conditions, Observations, Procedures,
// MedicationRequests (each with its own Claim), Immunizations,
// DiagnosticReports, a clinical note (DiagnosticReport + DocumentReference,
// US Core on), one Claim and one ExplanationOfBenefit; a Provenance
// targeting every resource closes the bundle.

// SyntheaSystem is the identifier system Synthea gives its organizations
// and locations (and patients).
const SyntheaSystem = "https://github.com/synthetichealth/synthea"

// Synthea generates a directory of hospitals, each with its practitioners,
// and patient records that use it.
type Synthea struct {
	g             *Generator
	Hospitals     int
	PerHospital   int // practitioners per hospital
	practitionerK int // offset of the NPIs, apart from the Generator's own
}

// NewSynthea returns the Synthea-shaped data set of seed.
func NewSynthea(seed int64, hospitals, perHospital int) *Synthea {
	return &Synthea{g: New(seed), Hospitals: hospitals, PerHospital: perHospital, practitionerK: 1_000_000}
}

// Stream kinds of the Synthea generator (apart from the Generator's).
const (
	kSynOrg = iota + 100
	kSynLoc
	kSynPatient
	kSynEncounter
	kSynResource
)

// OrganizationID, LocationID and NPI are hospital h's, its location's and
// practitioner k's identifier values.
func (s *Synthea) OrganizationID(h int) string { return s.g.UUID(kSynOrg, h, 0) }
func (s *Synthea) LocationID(h int) string     { return s.g.UUID(kSynLoc, h, 0) }
func (s *Synthea) NPI(k int) string            { return s.g.NPI(s.practitionerK + k) }

// Conditional references to the directory, as Synthea writes them.
func (s *Synthea) PractitionerRef(k int) string {
	return "Practitioner?identifier=" + NPISystem + "|" + s.NPI(k)
}
func (s *Synthea) OrganizationRef(h int) string {
	return "Organization?identifier=" + SyntheaSystem + "|" + s.OrganizationID(h)
}
func (s *Synthea) LocationRef(h int) string {
	return "Location?identifier=" + SyntheaSystem + "|" + s.LocationID(h)
}

type obj = map[string]any

// syntheaEntry is one entry of a Synthea transaction Bundle.
type syntheaEntry struct {
	FullURL  string `json:"fullUrl"`
	Resource obj    `json:"resource"`
	Request  obj    `json:"request"`
}

func bundleOf(entries []syntheaEntry) []byte {
	b, err := json.Marshal(obj{"resourceType": "Bundle", "type": "transaction", "entry": entries})
	if err != nil {
		panic(err)
	}
	return b
}

// post is Synthea's entry: POST, with ifNoneExist on the first identifier
// for the directory types it does not duplicate.
func post(uuid string, res obj, ifNoneExist bool) syntheaEntry {
	res["id"] = uuid
	typ := res["resourceType"].(string)
	req := obj{"method": "POST", "url": typ}
	if ifNoneExist {
		id := res["identifier"].([]obj)[0]
		req["ifNoneExist"] = "identifier=" + id["system"].(string) + "|" + id["value"].(string)
	}
	return syntheaEntry{FullURL: "urn:uuid:" + uuid, Resource: res, Request: req}
}

func ident(system, value string) []obj { return []obj{{"system": system, "value": value}} }
func ref(r string) obj                 { return obj{"reference": r} }
func cc(system, code, display string) obj {
	return obj{"coding": []obj{{"system": system, "code": code, "display": display}}, "text": display}
}

func (s *Synthea) hospitalName(h int) string {
	return fmt.Sprintf("%s HOSPITAL", []string{"MERCY", "GENERAL", "ST. JUDE", "VALLEY", "LAKESIDE", "RIVERSIDE"}[h%6]+" "+strconv.Itoa(h))
}

// HospitalBundle is the transaction creating every hospital's Organization
// and Location (hospitalInformation*.json).
func (s *Synthea) HospitalBundle() []byte {
	var es []syntheaEntry
	for h := range s.Hospitals {
		es = append(es, post(s.OrganizationID(h), obj{"resourceType": "Organization",
			"identifier": ident(SyntheaSystem, s.OrganizationID(h)), "active": true,
			"type":    []obj{cc("http://terminology.hl7.org/CodeSystem/organization-type", "prov", "Healthcare Provider")},
			"name":    s.hospitalName(h),
			"telecom": []obj{{"system": "phone", "value": "413-555-" + strconv.Itoa(1000+h)}},
			"address": []obj{{"line": []string{strconv.Itoa(100+h) + " MAIN ST"}, "city": "SPRINGFIELD", "state": "MA", "postalCode": "01101", "country": "US"}},
		}, true))
		es = append(es, post(s.LocationID(h), obj{"resourceType": "Location",
			"identifier": ident(SyntheaSystem, s.LocationID(h)), "status": "active", "name": s.hospitalName(h),
			"position":             obj{"longitude": json.Number("-72.5" + strconv.Itoa(h)), "latitude": json.Number("42.1" + strconv.Itoa(h))},
			"managingOrganization": obj{"reference": s.OrganizationRef(h), "display": s.hospitalName(h)},
		}, true))
	}
	return bundleOf(es)
}

// PractitionerBundle is the transaction creating every practitioner and
// their PractitionerRole (practitionerInformation*.json). Synthea's roles
// name their practitioner, organization and location by a logical
// reference (Reference.identifier); these use conditional references, to
// practitioners the same transaction creates.
func (s *Synthea) PractitionerBundle() []byte {
	var es []syntheaEntry
	for h := range s.Hospitals {
		for j := range s.PerHospital {
			k := h*s.PerHospital + j
			n := s.g.PractitionerName(s.practitionerK + k)
			es = append(es, post(s.g.UUID(kSynOrg, h, 1+2*j), obj{"resourceType": "Practitioner",
				"identifier": ident(NPISystem, s.NPI(k)), "active": true,
				"name":    []obj{{"family": n.Family, "given": n.Given, "prefix": []string{"Dr."}}},
				"telecom": []obj{{"system": "email", "use": "work", "value": ascii(n.Given[0]) + "." + ascii(n.Family) + "@example.com"}},
				"gender":  map[bool]string{true: "female", false: "male"}[n.Female],
			}, true))
			es = append(es, post(s.g.UUID(kSynOrg, h, 2+2*j), obj{"resourceType": "PractitionerRole",
				"identifier":   ident(NPISystem, s.NPI(k)),
				"practitioner": obj{"reference": s.PractitionerRef(k), "display": "Dr. " + n.Text()},
				"organization": obj{"reference": s.OrganizationRef(h), "display": s.hospitalName(h)},
				"code":         []obj{cc("http://nucc.org/provider-taxonomy", "208D00000X", "General Practice")},
				"specialty":    []obj{cc("http://nucc.org/provider-taxonomy", "208D00000X", "General Practice")},
				"location":     []obj{{"reference": s.LocationRef(h), "display": s.hospitalName(h)}},
			}, true))
		}
	}
	return bundleOf(es)
}

// Encounters returns how many encounters patient i's record holds: ten
// years of history, from a yearly check-up to a chronic patient's monthly
// visits and more (median about 70).
func (s *Synthea) Encounters(i int) int {
	r := s.g.rng(kSynPatient, i, 1)
	return 10 + int(60*r.ExpFloat64()) + r.IntN(20)
}

// PatientBundle is patient i's record with n encounters, as one
// transaction.
func (s *Synthea) PatientBundle(i, n int) []byte {
	r := s.g.rng(kSynPatient, i, 0)
	seq := 0
	uuid := func() string { seq++; return s.g.UUID(kSynResource, i, seq) }
	pid := uuid()
	patient := "urn:uuid:" + pid
	name := s.g.PatientName(i)
	birth := s.g.PatientBirthDate(i)
	gender := map[bool]string{true: "female", false: "male"}[name.Female]
	div := `<div xmlns="http://www.w3.org/1999/xhtml">Generated by <a href="https://github.com/synthetichealth/synthea">Synthea</a>.Version identifier: v3.3.0` +
		"\n .   Person seed: " + strconv.FormatUint(r.Uint64(), 10) + "  Population seed: 1700000000000</div>"
	es := []syntheaEntry{post(pid, obj{"resourceType": "Patient",
		"meta": obj{"profile": []string{"http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient"}},
		"text": obj{"status": "generated", "div": div},
		"extension": []obj{
			{"url": "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race", "extension": []obj{
				{"url": "ombCategory", "valueCoding": obj{"system": "urn:oid:2.16.840.1.113883.6.238", "code": "2106-3", "display": "White"}},
				{"url": "text", "valueString": "White"}}},
			{"url": "http://hl7.org/fhir/StructureDefinition/patient-mothersMaidenName", "valueString": "Maria" + strconv.Itoa(i)},
			{"url": "http://hl7.org/fhir/us/core/StructureDefinition/us-core-birthsex", "valueCode": map[bool]string{true: "F", false: "M"}[name.Female]},
			{"url": "http://synthetichealth.github.io/synthea/disability-adjusted-life-years", "valueDecimal": json.Number("1.0" + strconv.Itoa(r.IntN(1000)))},
		},
		"identifier": []obj{
			{"system": SyntheaSystem, "value": pid},
			{"type": cc("http://terminology.hl7.org/CodeSystem/v2-0203", "MR", "Medical Record Number"), "system": "http://hospital.smarthealthit.org", "value": pid},
			{"type": cc("http://terminology.hl7.org/CodeSystem/v2-0203", "SS", "Social Security Number"), "system": "http://hl7.org/fhir/sid/us-ssn", "value": fmt.Sprintf("999-%02d-%04d", r.IntN(100), r.IntN(10000))},
		},
		"name":          []obj{{"use": "official", "family": name.Family, "given": name.Given, "prefix": []string{"Mx."}}},
		"telecom":       []obj{{"system": "phone", "value": phone(r, "413"), "use": "home"}},
		"gender":        gender,
		"birthDate":     birth.Format("2006-01-02"),
		"address":       []obj{{"line": []string{strconv.Itoa(r.IntN(999)) + " Oak Rd"}, "city": "Springfield", "state": "MA", "postalCode": "01101", "country": "US"}},
		"maritalStatus": cc("http://terminology.hl7.org/CodeSystem/v3-MaritalStatus", "M", "Married"),
		"communication": []obj{{"language": cc("urn:ietf:bcp:47", "en-US", "English (United States)")}},
	}, false)}
	var all []string
	start := epoch.AddDate(-10, 0, 0)
	h := r.IntN(s.Hospitals)
	for e := range n {
		er := s.g.rng(kSynEncounter, i, e)
		at := start.Add(time.Duration(int64(e) * int64(10*365*24*time.Hour) / int64(n+1))).Add(time.Duration(er.IntN(8)) * time.Hour)
		end := at.Add(time.Duration(15+er.IntN(45)) * time.Minute)
		period := obj{"start": at.Format(time.RFC3339), "end": end.Format(time.RFC3339)}
		if er.IntN(5) == 0 {
			h = er.IntN(s.Hospitals) // now and then, another hospital
		}
		k := h*s.PerHospital + er.IntN(s.PerHospital)
		prac, org, loc := s.PractitionerRef(k), s.OrganizationRef(h), s.LocationRef(h)
		pracDisplay := "Dr. " + s.g.PractitionerName(s.practitionerK+k).Text()
		eid := uuid()
		encounter := "urn:uuid:" + eid
		kind := pick(er, []obj{
			cc("http://snomed.info/sct", "185349003", "Encounter for check up (procedure)"),
			cc("http://snomed.info/sct", "185345009", "Encounter for symptom (procedure)"),
			cc("http://snomed.info/sct", "390906007", "Follow-up encounter (procedure)"),
		})
		es = append(es, post(eid, obj{"resourceType": "Encounter",
			"meta":            obj{"profile": []string{"http://hl7.org/fhir/us/core/StructureDefinition/us-core-encounter"}},
			"identifier":      []obj{{"use": "official", "system": SyntheaSystem, "value": eid}},
			"status":          "finished",
			"class":           obj{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
			"type":            []obj{kind},
			"subject":         obj{"reference": patient, "display": name.Text()},
			"participant":     []obj{{"type": []obj{cc("http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "PPRF", "primary performer")}, "period": period, "individual": obj{"reference": prac, "display": pracDisplay}}},
			"period":          period,
			"location":        []obj{{"location": obj{"reference": loc, "display": s.hospitalName(h)}}},
			"serviceProvider": obj{"reference": org, "display": s.hospitalName(h)},
		}, false))
		items := []string{encounter}
		add := func(res obj) string {
			id := uuid()
			es = append(es, post(id, res, false))
			return "urn:uuid:" + id
		}
		if er.IntN(3) == 0 {
			items = append(items, add(obj{"resourceType": "Condition",
				"clinicalStatus":     cc("http://terminology.hl7.org/CodeSystem/condition-clinical", "active", "Active"),
				"verificationStatus": cc("http://terminology.hl7.org/CodeSystem/condition-ver-status", "confirmed", "Confirmed"),
				"category":           []obj{cc("http://terminology.hl7.org/CodeSystem/condition-category", "encounter-diagnosis", "Encounter Diagnosis")},
				"code":               cc("http://snomed.info/sct", "444814009", "Viral sinusitis (disorder)"),
				"subject":            ref(patient), "encounter": ref(encounter),
				"onsetDateTime": at.Format(time.RFC3339), "recordedDate": at.Format(time.RFC3339),
			}))
		}
		var results []obj
		for o := range 2 + er.IntN(8) {
			code := pick(er, []struct{ code, display, unit string }{
				{"8302-2", "Body Height", "cm"}, {"29463-7", "Body Weight", "kg"}, {"39156-5", "Body mass index (BMI) [Ratio]", "kg/m2"},
				{"8867-4", "Heart rate", "/min"}, {"9279-1", "Respiratory rate", "/min"}, {"72514-3", "Pain severity - 0-10 verbal numeric rating [Score] - Reported", "{score}"},
				{"2339-0", "Glucose [Mass/volume] in Blood", "mg/dL"}, {"2093-3", "Cholesterol [Mass/volume] in Serum or Plasma", "mg/dL"},
			})
			ob := add(obj{"resourceType": "Observation",
				"meta":     obj{"profile": []string{"http://hl7.org/fhir/us/core/StructureDefinition/us-core-vital-signs"}},
				"status":   "final",
				"category": []obj{cc("http://terminology.hl7.org/CodeSystem/observation-category", "vital-signs", "Vital signs")},
				"code":     cc("http://loinc.org", code.code, code.display),
				"subject":  ref(patient), "encounter": ref(encounter),
				"effectiveDateTime": at.Add(time.Duration(o) * time.Minute).Format(time.RFC3339), "issued": at.Format("2006-01-02T15:04:05.000-07:00"),
				"valueQuantity": obj{"value": json.Number(strconv.Itoa(40+er.IntN(120)) + "." + strconv.Itoa(er.IntN(10))), "unit": code.unit, "system": "http://unitsofmeasure.org", "code": code.unit},
			})
			results = append(results, ref(ob))
			items = append(items, ob)
		}
		if er.IntN(3) != 0 {
			items = append(items, add(obj{"resourceType": "Procedure", "status": "completed",
				"code":    cc("http://snomed.info/sct", "430193006", "Medication Reconciliation (procedure)"),
				"subject": ref(patient), "encounter": ref(encounter),
				"performedPeriod": period, "location": obj{"reference": loc, "display": s.hospitalName(h)},
			}))
		}
		if er.IntN(2) == 0 {
			med := add(obj{"resourceType": "MedicationRequest", "status": "active", "intent": "order",
				"category":                  []obj{cc("http://terminology.hl7.org/CodeSystem/medicationrequest-category", "community", "Community")},
				"medicationCodeableConcept": cc("http://www.nlm.nih.gov/research/umls/rxnorm", "313782", "Acetaminophen 325 MG Oral Tablet"),
				"subject":                   ref(patient), "encounter": ref(encounter), "authoredOn": at.Format(time.RFC3339),
				"requester":         obj{"reference": prac, "display": pracDisplay},
				"dosageInstruction": []obj{{"sequence": 1, "asNeededBoolean": true}},
			})
			items = append(items, med)
			items = append(items, add(obj{"resourceType": "Claim", "status": "active",
				"type": cc("http://terminology.hl7.org/CodeSystem/claim-type", "pharmacy", "pharmacy"),
				"use":  "claim", "patient": ref(patient), "billablePeriod": period, "created": end.Format(time.RFC3339),
				"provider":     obj{"reference": org, "display": s.hospitalName(h)},
				"priority":     cc("http://terminology.hl7.org/CodeSystem/processpriority", "normal", "normal"),
				"prescription": ref(med),
				"insurance":    []obj{{"sequence": 1, "focal": true, "coverage": obj{"display": "Medicaid"}}},
				"item":         []obj{{"sequence": 1, "productOrService": cc("http://www.nlm.nih.gov/research/umls/rxnorm", "313782", "Acetaminophen 325 MG Oral Tablet"), "encounter": []obj{ref(encounter)}}},
				"total":        obj{"value": json.Number("12.34"), "currency": "USD"},
			}))
		}
		if er.IntN(5) == 0 {
			items = append(items, add(obj{"resourceType": "Immunization", "status": "completed",
				"vaccineCode": cc("http://hl7.org/fhir/sid/cvx", "140", "Influenza, seasonal, injectable, preservative free"),
				"patient":     ref(patient), "encounter": ref(encounter), "occurrenceDateTime": at.Format(time.RFC3339), "primarySource": true,
				"location": obj{"reference": loc, "display": s.hospitalName(h)},
			}))
		}
		if len(results) > 3 {
			items = append(items, add(obj{"resourceType": "DiagnosticReport", "status": "final",
				"category": []obj{cc("http://terminology.hl7.org/CodeSystem/v2-0074", "LAB", "Laboratory")},
				"code":     cc("http://loinc.org", "51990-0", "Basic metabolic panel - Blood"),
				"subject":  ref(patient), "encounter": ref(encounter),
				"effectiveDateTime": at.Format(time.RFC3339), "issued": at.Format("2006-01-02T15:04:05.000-07:00"),
				"performer": []obj{{"reference": org, "display": s.hospitalName(h)}},
				"result":    results,
			}))
		}
		// The clinical note (US Core): a DiagnosticReport and a
		// DocumentReference carrying the same text.
		note := fmt.Sprintf("%s\n\n# Chief Complaint\nNo complaints.\n\n# History of Present Illness\n%s is a %d year-old patient.\n\n# Plan\nFollow up in one year.\n",
			at.Format("2006-01-02"), name.Text(), at.Year()-birth.Year())
		data := encodeB64(note)
		items = append(items, add(obj{"resourceType": "DiagnosticReport", "status": "final",
			"category": []obj{cc("http://loinc.org", "34117-2", "History and physical note")},
			"code":     cc("http://loinc.org", "34117-2", "History and physical note"),
			"subject":  ref(patient), "encounter": ref(encounter),
			"effectiveDateTime": at.Format(time.RFC3339), "issued": at.Format("2006-01-02T15:04:05.000-07:00"),
			"performer":     []obj{{"reference": prac, "display": pracDisplay}},
			"presentedForm": []obj{{"contentType": "text/plain; charset=utf-8", "data": data}},
		}))
		items = append(items, add(obj{"resourceType": "DocumentReference", "status": "superseded",
			"identifier": []obj{{"system": "urn:ietf:rfc:3986", "value": encounter}},
			"type":       cc("http://loinc.org", "34117-2", "History and physical note"),
			"category":   []obj{cc("http://hl7.org/fhir/us/core/CodeSystem/us-core-documentreference-category", "clinical-note", "Clinical Note")},
			"subject":    ref(patient), "date": at.Format("2006-01-02T15:04:05.000-07:00"),
			"author":    []obj{{"reference": prac, "display": pracDisplay}},
			"custodian": obj{"reference": org, "display": s.hospitalName(h)},
			"content":   []obj{{"attachment": obj{"contentType": "text/plain; charset=utf-8", "data": data}, "format": obj{"system": "http://ihe.net/fhir/ihe.formatcode.fhir/CodeSystem/formatcode", "code": "urn:ihe:iti:xds:2017:mimeTypeSufficient", "display": "mimeType Sufficient"}}},
			"context":   obj{"encounter": []obj{ref(encounter)}, "period": period},
		}))
		claim := add(obj{"resourceType": "Claim", "status": "active",
			"type": cc("http://terminology.hl7.org/CodeSystem/claim-type", "professional", "professional"),
			"use":  "claim", "patient": ref(patient), "billablePeriod": period, "created": end.Format(time.RFC3339),
			"provider":  obj{"reference": org, "display": s.hospitalName(h)},
			"facility":  obj{"reference": loc, "display": s.hospitalName(h)},
			"priority":  cc("http://terminology.hl7.org/CodeSystem/processpriority", "normal", "normal"),
			"insurance": []obj{{"sequence": 1, "focal": true, "coverage": obj{"display": "Medicaid"}}},
			"item":      []obj{{"sequence": 1, "productOrService": kind, "encounter": []obj{ref(encounter)}}},
			"total":     obj{"value": json.Number("129.16"), "currency": "USD"},
		})
		items = append(items, claim)
		items = append(items, add(obj{"resourceType": "ExplanationOfBenefit", "status": "active",
			"identifier": []obj{{"system": "https://bluebutton.cms.gov/resources/variables/clm_id", "value": eid},
				{"system": "https://bluebutton.cms.gov/resources/identifier/claim-group", "value": "99999999999"}},
			"type": cc("http://terminology.hl7.org/CodeSystem/claim-type", "professional", "professional"),
			"use":  "claim", "patient": ref(patient), "billablePeriod": period, "created": end.Format(time.RFC3339),
			"insurer":  obj{"display": "Medicaid"},
			"provider": obj{"reference": prac, "display": pracDisplay},
			// Synthea's exporter also sets "referral" to the Practitioner,
			// where R4 allows only a ServiceRequest: the gateway refuses it
			// (as HAPI does with reference target types enforced), so the
			// generator leaves it out.
			"facility":  obj{"reference": loc, "display": s.hospitalName(h)},
			"claim":     ref(claim),
			"outcome":   "complete",
			"careTeam":  []obj{{"sequence": 1, "provider": obj{"reference": prac, "display": pracDisplay}, "role": cc("http://terminology.hl7.org/CodeSystem/claimcareteamrole", "primary", "Primary provider")}},
			"insurance": []obj{{"focal": true, "coverage": obj{"display": "Medicaid"}}},
			"item": []obj{{"sequence": 1, "category": cc("https://bluebutton.cms.gov/resources/variables/line_cms_type_srvc_cd", "1", "Medical care"),
				"productOrService": kind, "servicedPeriod": period, "locationCodeableConcept": cc("http://terminology.hl7.org/CodeSystem/ex-serviceplace", "19", "Off Campus-Outpatient Hospital"),
				"encounter": []obj{ref(encounter)}}},
			"total":   []obj{{"category": cc("http://terminology.hl7.org/CodeSystem/adjudication", "submitted", "Submitted Amount"), "amount": obj{"value": json.Number("129.16"), "currency": "USD"}}},
			"payment": obj{"amount": obj{"value": json.Number("0.0"), "currency": "USD"}},
		}))
		all = append(all, items...)
	}
	targets := []obj{ref(patient)}
	for _, t := range all {
		targets = append(targets, ref(t))
	}
	es = append(es, post(uuid(), obj{"resourceType": "Provenance",
		"meta":     obj{"profile": []string{"http://hl7.org/fhir/us/core/StructureDefinition/us-core-provenance"}},
		"target":   targets,
		"recorded": epoch.Format(time.RFC3339),
		"agent": []obj{{
			"type":       cc("http://terminology.hl7.org/CodeSystem/provenance-participant-type", "author", "Author"),
			"who":        obj{"reference": s.PractitionerRef(h * s.PerHospital), "display": "Dr. " + s.g.PractitionerName(s.practitionerK+h*s.PerHospital).Text()},
			"onBehalfOf": obj{"reference": s.OrganizationRef(h), "display": s.hospitalName(h)},
		}},
	}, false))
	return bundleOf(es)
}

func encodeB64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
