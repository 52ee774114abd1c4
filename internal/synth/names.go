package synth

// Name and code lists. The names are common given and family names from
// several languages (with their accents, so that search normalization and
// UTF-8 handling are exercised); the codes are real codes from the code
// systems named next to them.

var givenFemale = []string{
	"Mary", "Patricia", "Jennifer", "Linda", "Elizabeth", "Barbara", "Susan", "Jessica", "Sarah", "Karen",
	"Lisa", "Nancy", "Betty", "Margaret", "Sandra", "Ashley", "Kimberly", "Emily", "Donna", "Michelle",
	"Carol", "Amanda", "Dorothy", "Melissa", "Deborah", "Stephanie", "Rebecca", "Sharon", "Laura", "Cynthia",
	"Kathleen", "Amy", "Angela", "Shirley", "Anna", "Brenda", "Pamela", "Emma", "Nicole", "Helen",
	"Samantha", "Katherine", "Christine", "Debra", "Rachel", "Carolyn", "Janet", "Catherine", "Maria", "Heather",
	"Olivia", "Sophia", "Isabella", "Ava", "Mia", "Charlotte", "Amelia", "Harper", "Evelyn", "Abigail",
	"Zoë", "Chloé", "Léa", "Inès", "Camille", "Manon", "Mélanie", "Hélène", "Renée", "Noémie",
	"José", "Lucía", "Sofía", "María José", "Ximena", "Valentina", "Martina", "Begoña", "Inés", "Pilar",
	"Jürgen", "Jörg", "Björk", "Åsa", "Märta", "Ingrid", "Sigrún", "Þóra", "Ólöf", "Freyja",
	"Zofia", "Małgorzata", "Agnieszka", "Kateřina", "Zuzana", "Ewa", "Łucja", "Ioana", "Mihaela", "Anaïs",
	"Aiko", "Yuki", "Mei", "Xiu", "Priya", "Ananya", "Fatima", "Aisha", "Leila", "Nadia",
	"Siobhán", "Aoife", "Niamh", "Saoirse", "Ciara", "Gráinne", "Eilís", "Róisín", "Dervla", "Bríd",
}

var givenMale = []string{
	"James", "Robert", "John", "Michael", "David", "William", "Richard", "Joseph", "Thomas", "Charles",
	"Christopher", "Daniel", "Matthew", "Anthony", "Mark", "Donald", "Steven", "Paul", "Andrew", "Joshua",
	"Kenneth", "Kevin", "Brian", "George", "Timothy", "Ronald", "Edward", "Jason", "Jeffrey", "Ryan",
	"Jacob", "Gary", "Nicholas", "Eric", "Jonathan", "Stephen", "Larry", "Justin", "Scott", "Brandon",
	"Liam", "Noah", "Oliver", "Elijah", "Lucas", "Mason", "Logan", "Ethan", "Aiden", "Henry",
	"José", "Luis", "Jesús", "Ángel", "Andrés", "Martín", "Sebastián", "Nicolás", "Iñaki", "Ramón",
	"François", "Jérôme", "Stéphane", "Gaël", "Noël", "Loïc", "Hervé", "Benoît", "Frédéric", "Rémi",
	"Jürgen", "Jörg", "Günter", "Björn", "Søren", "Håkon", "Ørjan", "Þór", "Kári", "Ólafur",
	"Łukasz", "Paweł", "Wojciech", "Tomáš", "Jiří", "Miloš", "Dragoș", "Ștefan", "Ömer", "Çağan",
	"Hiroshi", "Takeshi", "Wei", "Jun", "Arjun", "Rohan", "Mohammed", "Omar", "Yusuf", "Karim",
	"Seán", "Pádraig", "Ciarán", "Oisín", "Tadhg", "Éamon", "Diarmuid", "Cathal", "Donnchadh", "Ruairí",
}

var family = []string{
	"Smith", "Johnson", "Williams", "Brown", "Jones", "Miller", "Davis", "Wilson", "Anderson", "Taylor",
	"Thomas", "Moore", "Jackson", "Martin", "Lee", "Thompson", "White", "Harris", "Clark", "Lewis",
	"Robinson", "Walker", "Young", "Allen", "King", "Wright", "Scott", "Hill", "Green", "Adams",
	"Baker", "Nelson", "Carter", "Mitchell", "Roberts", "Turner", "Phillips", "Campbell", "Parker", "Evans",
	"Edwards", "Collins", "Stewart", "Morris", "Rogers", "Reed", "Cook", "Morgan", "Bell", "Murphy",
	"García", "Rodríguez", "Martínez", "Hernández", "López", "González", "Pérez", "Sánchez", "Ramírez", "Torres",
	"Flores", "Gómez", "Díaz", "Vásquez", "Jiménez", "Muñoz", "Álvarez", "Romero", "Gutiérrez", "Ibáñez",
	"Núñez", "Peña", "Castañeda", "Ordóñez", "Quiñones", "Báez", "Cortés", "Guzmán", "Méndez", "Suárez",
	"Müller", "Schröder", "Schäfer", "Köhler", "Weiß", "Groß", "Krüger", "Böhm", "Fuchs", "Hoffmann",
	"Lefèvre", "Dubois", "Lévesque", "Bélanger", "Côté", "Gagné", "Bérubé", "Fréchette", "Ménard", "Boucher",
	"Østergaard", "Jørgensen", "Søndergaard", "Åkesson", "Lindström", "Bjørnstad", "Sæther", "Håland", "Þórsson", "Guðmundsdóttir",
	"Nowak", "Kowalski", "Wiśniewski", "Wójcik", "Kamiński", "Dvořák", "Novák", "Černý", "Procházka", "Kučera",
	"Popescu", "Ionescu", "Țurcanu", "Șerban", "Yılmaz", "Öztürk", "Çelik", "Şahin", "Doğan", "Aydın",
	"Nguyen", "Tran", "Pham", "Kim", "Park", "Chen", "Wang", "Li", "Zhang", "Liu",
	"Sato", "Suzuki", "Takahashi", "Tanaka", "Patel", "Sharma", "Singh", "Gupta", "Khan", "Hussain",
	"O'Brien", "O'Sullivan", "Ó Briain", "Mac Giolla", "Ní Bhriain", "Ó Súilleabháin", "Ó Ceallaigh", "Kennedy", "Byrne", "Ryan",
	"da Silva", "dos Santos", "Conceição", "Gonçalves", "Magalhães", "Simões", "Estêvão", "Araújo", "Falcão", "Brandão",
}

type place struct{ city, state, zip, phone string }

// US cities with a real ZIP code and area code of each.
var places = []place{
	{"Springfield", "IL", "62701", "217"}, {"Boston", "MA", "02115", "617"}, {"Chicago", "IL", "60614", "312"},
	{"Houston", "TX", "77030", "713"}, {"Phoenix", "AZ", "85004", "602"}, {"Philadelphia", "PA", "19104", "215"},
	{"San Antonio", "TX", "78229", "210"}, {"San Diego", "CA", "92103", "619"}, {"Dallas", "TX", "75246", "214"},
	{"San José", "CA", "95112", "408"}, {"Austin", "TX", "78701", "512"}, {"Jacksonville", "FL", "32207", "904"},
	{"Columbus", "OH", "43210", "614"}, {"Charlotte", "NC", "28204", "704"}, {"Indianapolis", "IN", "46202", "317"},
	{"Seattle", "WA", "98104", "206"}, {"Denver", "CO", "80218", "303"}, {"Nashville", "TN", "37232", "615"},
	{"Portland", "OR", "97239", "503"}, {"Baltimore", "MD", "21287", "410"}, {"Milwaukee", "WI", "53226", "414"},
	{"Albuquerque", "NM", "87106", "505"}, {"Tucson", "AZ", "85724", "520"}, {"Sacramento", "CA", "95817", "916"},
	{"Atlanta", "GA", "30322", "404"}, {"Miami", "FL", "33136", "305"}, {"Minneapolis", "MN", "55455", "612"},
	{"New Orleans", "LA", "70112", "504"}, {"Cleveland", "OH", "44195", "216"}, {"Pittsburgh", "PA", "15213", "412"},
	{"Saint Louis", "MO", "63110", "314"}, {"Salt Lake City", "UT", "84132", "801"}, {"Rochester", "MN", "55905", "507"},
	{"Española", "NM", "87532", "505"}, {"Cañon City", "CO", "81212", "719"}, {"La Cañada Flintridge", "CA", "91011", "818"},
}

var streets = []string{
	"Main St", "Oak Ave", "Maple Dr", "Cedar Ln", "Pine St", "Elm St", "Washington Blvd", "Lake Shore Dr",
	"Park Ave", "Highland Ave", "Sunset Blvd", "Church St", "Mill Rd", "River Rd", "Hillcrest Dr", "Forest Ave",
	"Calle Real", "Avenida del Sol", "Rue Sainte-Thérèse", "Peña Blanca Rd", "Cañada Way", "Mesa Verde Dr",
}

type coding struct{ system, code, display string }

var maritalStatus = []coding{
	{"http://terminology.hl7.org/CodeSystem/v3-MaritalStatus", "M", "Married"},
	{"http://terminology.hl7.org/CodeSystem/v3-MaritalStatus", "S", "Never Married"},
	{"http://terminology.hl7.org/CodeSystem/v3-MaritalStatus", "D", "Divorced"},
	{"http://terminology.hl7.org/CodeSystem/v3-MaritalStatus", "W", "Widowed"},
	{"http://terminology.hl7.org/CodeSystem/v3-MaritalStatus", "U", "unmarried"},
}

var languages = []coding{
	{"urn:ietf:bcp:47", "en-US", "English (United States)"},
	{"urn:ietf:bcp:47", "es", "Spanish"},
	{"urn:ietf:bcp:47", "fr", "French"},
	{"urn:ietf:bcp:47", "de", "German"},
	{"urn:ietf:bcp:47", "zh", "Chinese"},
	{"urn:ietf:bcp:47", "vi", "Vietnamese"},
	{"urn:ietf:bcp:47", "pl", "Polish"},
}

// Degrees (HL7 v2 table 0360) and specialties (NUCC provider taxonomy).
var degrees = []coding{
	{"http://terminology.hl7.org/CodeSystem/v2-0360", "MD", "Doctor of Medicine"},
	{"http://terminology.hl7.org/CodeSystem/v2-0360", "DO", "Doctor of Osteopathy"},
	{"http://terminology.hl7.org/CodeSystem/v2-0360", "NP", "Nurse practitioner"},
	{"http://terminology.hl7.org/CodeSystem/v2-0360", "PA", "Physician Assistant"},
}

var specialties = []coding{
	{"http://nucc.org/provider-taxonomy", "207Q00000X", "Family Medicine"},
	{"http://nucc.org/provider-taxonomy", "207R00000X", "Internal Medicine"},
	{"http://nucc.org/provider-taxonomy", "207RC0000X", "Cardiovascular Disease"},
	{"http://nucc.org/provider-taxonomy", "207RE0101X", "Endocrinology, Diabetes & Metabolism"},
	{"http://nucc.org/provider-taxonomy", "2085R0202X", "Diagnostic Radiology"},
	{"http://nucc.org/provider-taxonomy", "207ZP0102X", "Anatomic Pathology & Clinical Pathology"},
	{"http://nucc.org/provider-taxonomy", "208000000X", "Pediatrics"},
	{"http://nucc.org/provider-taxonomy", "207V00000X", "Obstetrics & Gynecology"},
	{"http://nucc.org/provider-taxonomy", "2084N0400X", "Neurology"},
	{"http://nucc.org/provider-taxonomy", "207X00000X", "Orthopaedic Surgery"},
}

// Appointment service types (HL7 service-type) and appointment types
// (HL7 v2 table 0276).
var serviceTypes = []coding{
	{"http://terminology.hl7.org/CodeSystem/service-type", "124", "General Practice"},
	{"http://terminology.hl7.org/CodeSystem/service-type", "165", "Cardiology"},
	{"http://terminology.hl7.org/CodeSystem/service-type", "168", "Endocrinology"},
	{"http://terminology.hl7.org/CodeSystem/service-type", "57", "Immunization"},
	{"http://terminology.hl7.org/CodeSystem/service-type", "177", "Neurology"},
	{"http://terminology.hl7.org/CodeSystem/service-type", "180", "Obstetrics & Gynaecology"},
	{"http://terminology.hl7.org/CodeSystem/service-type", "221", "Paediatric Medicine"},
	{"http://terminology.hl7.org/CodeSystem/service-type", "304", "Diagnostic Radiology/Xray/CT/Fluoroscopy"},
}

var appointmentTypes = []coding{
	{"http://terminology.hl7.org/CodeSystem/v2-0276", "ROUTINE", "Routine appointment - default if not valued"},
	{"http://terminology.hl7.org/CodeSystem/v2-0276", "FOLLOWUP", "A follow up visit from a previous appointment"},
	{"http://terminology.hl7.org/CodeSystem/v2-0276", "CHECKUP", "A routine check-up, such as an annual physical"},
	{"http://terminology.hl7.org/CodeSystem/v2-0276", "WALKIN", "A previously unscheduled walk-in visit"},
}

// reportKind is a DiagnosticReport code (LOINC) with its category (HL7 v2
// table 0074) and the conclusions a report of that kind may carry.
type reportKind struct {
	code        coding
	category    coding
	conclusions []string
}

var (
	catLab = coding{"http://terminology.hl7.org/CodeSystem/v2-0074", "LAB", "Laboratory"}
	catRad = coding{"http://terminology.hl7.org/CodeSystem/v2-0074", "RAD", "Radiology"}
	catCar = coding{"http://terminology.hl7.org/CodeSystem/v2-0074", "CUS", "Cardiac Ultrasound"}
)

var reportKinds = []reportKind{
	{coding{"http://loinc.org", "58410-2", "CBC panel - Blood by Automated count"}, catLab,
		[]string{"Complete blood count within normal limits.", "Mild normocytic anemia.", "Leukocytosis, likely reactive."}},
	{coding{"http://loinc.org", "24323-8", "Comprehensive metabolic 2000 panel - Serum or Plasma"}, catLab,
		[]string{"Metabolic panel unremarkable.", "Elevated fasting glucose; consider HbA1c.", "Mildly elevated creatinine; eGFR 58."}},
	{coding{"http://loinc.org", "57698-3", "Lipid panel with direct LDL - Serum or Plasma"}, catLab,
		[]string{"Lipids at goal.", "LDL cholesterol above goal (162 mg/dL).", "Hypertriglyceridemia."}},
	{coding{"http://loinc.org", "4548-4", "Hemoglobin A1c/Hemoglobin.total in Blood"}, catLab,
		[]string{"HbA1c 5.4 %, normal.", "HbA1c 6.1 %, prediabetes range.", "HbA1c 8.2 %, above target."}},
	{coding{"http://loinc.org", "24357-6", "Urinalysis macro (dipstick) panel - Urine"}, catLab,
		[]string{"Urinalysis negative.", "Trace protein, otherwise negative.", "Leukocyte esterase positive; culture sent."}},
	{coding{"http://loinc.org", "36643-5", "XR Chest 2 Views"}, catRad,
		[]string{"No acute cardiopulmonary process.", "Right lower lobe opacity, possibly pneumonia.", "Stable cardiomegaly."}},
	{coding{"http://loinc.org", "24627-2", "CT Chest"}, catRad,
		[]string{"No pulmonary embolism.", "4 mm nodule in the left upper lobe; follow-up CT in 12 months.", "Emphysematous changes."}},
	{coding{"http://loinc.org", "24558-9", "MR Brain"}, catRad,
		[]string{"No acute intracranial abnormality.", "Scattered white matter hyperintensities, nonspecific.", "Small chronic lacunar infarct."}},
	{coding{"http://loinc.org", "34552-0", "Cardiac 2D echo panel"}, catCar,
		[]string{"Normal left ventricular size and function, EF 60 %.", "Mild mitral regurgitation.", "Reduced ejection fraction, EF 35 %."}},
}

var appointmentDescriptions = []string{
	"Annual physical examination", "Follow-up of blood pressure", "Diabetes review", "Medication review",
	"Post-operative check", "Vaccination", "Review of laboratory results", "Chest pain evaluation",
	"Prenatal visit", "Well-child visit", "Back pain", "Headache follow-up",
}
