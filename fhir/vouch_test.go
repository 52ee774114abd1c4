package fhir

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fhirgate/fhirgate/fhir/fhirjson"
)

// vouchFor runs the checks Parse runs before jsonformat and reports
// whether vouch would let the resource skip jsonformat (and if not, where
// it gave up); ok is false when the body does not get that far.
func vouchFor(body []byte) (vouched, ok bool, why string) {
	root, err := fhirjson.Parse(body, Limits)
	if err != nil || root.Kind != fhirjson.Object {
		return false, false, ""
	}
	typ := root.GetString("resourceType")
	if !IsResourceType(typ) || len(checkRules(&root, typ)) > 0 {
		return false, false, ""
	}
	v, why := vouchWhy(&root, typ, body)
	return v, true, why
}

// corpusBodies are every body of the shared corpus: official examples and
// the invalid cases (which are mostly invalid by one value: the shapes
// vouch must not be fooled by).
func corpusBodies(t testing.TB) map[string][]byte {
	dir := corpusDir(t)
	files, _ := filepath.Glob(filepath.Join(dir, "examples", "*", "*.json"))
	more, _ := filepath.Glob(filepath.Join(dir, "invalid", "*", "*.json"))
	files = append(files, more...)
	out := map[string][]byte{}
	for _, f := range files {
		if filepath.Base(f) == "INDEX.json" {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(dir, f)
		out[rel] = b
	}
	return out
}

// TestVouchOnlyWhatJsonformatAccepts: whatever vouch lets skip jsonformat,
// jsonformat accepts: every corpus body, and mutants of them in which one
// value is replaced by a tricky one, one element removed, or a second
// value given to a choice element.
func TestVouchOnlyWhatJsonformatAccepts(t *testing.T) {
	bodies := corpusBodies(t)
	vouched, checked, mutants := 0, 0, 0
	rng := rand.New(rand.NewPCG(1, 2))
	perBody := 60
	if testing.Short() {
		perBody = 10
	}
	check := func(name string, body []byte) {
		v, ok, _ := vouchFor(body)
		if !ok {
			return
		}
		checked++
		if !v {
			return
		}
		vouched++
		if err := validate(body, nil); err != nil {
			t.Errorf("%s: vouched for, but jsonformat refuses it: %v\n%s", name, err, truncateBody(body))
		}
	}
	for name, body := range bodies {
		check(name, body)
		root, err := fhirjson.Parse(body, Limits)
		if err != nil {
			continue
		}
		var leaves []*fhirjson.Value
		var objects []*fhirjson.Value
		collect(&root, &leaves, &objects)
		// Numbers are few and their types many (integer, unsignedInt,
		// positiveInt, decimal): up to 6 numbers of each body get every
		// tricky number.
		var numbers []*fhirjson.Value
		for _, leaf := range leaves {
			if leaf.Kind == fhirjson.Number {
				numbers = append(numbers, leaf)
			}
		}
		rng.Shuffle(len(numbers), func(i, j int) { numbers[i], numbers[j] = numbers[j], numbers[i] })
		for _, leaf := range numbers[:min(len(numbers), 6)] {
			saved := *leaf
			for _, n := range trickyNumbers {
				mutants++
				*leaf = fhirjson.Value{Kind: fhirjson.Number, Str: n}
				check(name+" (number replaced)", fhirjson.Canonical(&root))
			}
			*leaf = saved
		}
		for range perBody {
			mutants++
			switch k := rng.IntN(10); {
			case k < 7 && len(leaves) > 0: // a tricky value
				leaf := leaves[rng.IntN(len(leaves))]
				saved := *leaf
				*leaf = trickyValues[rng.IntN(len(trickyValues))]
				check(name+" (value replaced)", fhirjson.Canonical(&root))
				*leaf = saved
			case k < 9 && len(objects) > 0: // an element removed
				obj := objects[rng.IntN(len(objects))]
				if len(obj.Members) < 2 {
					continue
				}
				i := rng.IntN(len(obj.Members))
				saved := obj.Members
				obj.Members = append(append([]fhirjson.Member(nil), saved[:i]...), saved[i+1:]...)
				check(name+" (element removed)", fhirjson.Canonical(&root))
				obj.Members = saved
			case len(objects) > 0: // a second type for a choice element
				obj := objects[rng.IntN(len(objects))]
				var base string
				for _, m := range obj.Members {
					for _, p := range []string{"value", "effective", "onset", "deceased", "multipleBirth", "timing", "occurrence"} {
						if strings.HasPrefix(m.Key, p) && len(m.Key) > len(p) {
							base = p
						}
					}
				}
				if base == "" {
					continue
				}
				saved := obj.Clone()
				obj.Set(base+"String", fhirjson.Str("x"))
				obj.Set(base+"Boolean", fhirjson.Value{Kind: fhirjson.Bool, Str: "true"})
				check(name+" (two choice types)", fhirjson.Canonical(&root))
				*obj = saved
			}
		}
	}
	t.Logf("%d bodies and %d mutants; %d passed the rules, jsonformat skipped for %d", len(bodies), mutants, checked, vouched)
	if vouched < checked/4 {
		t.Errorf("vouched for only %d of %d: the fast path hardly applies", vouched, checked)
	}
}

// TestVouchCoversTheGatewaysTraffic: the bodies EHRs send most (and the
// load generator sends) skip jsonformat; a fast path that silently stopped
// applying would only show as a slower gateway.
func TestVouchCoversTheGatewaysTraffic(t *testing.T) {
	for _, tc := range benchBodies() {
		if v, ok, why := vouchFor(tc.body); !ok || !v {
			t.Errorf("%s: not vouched for (passes the rules: %v; gave up at %s)", tc.name, ok, why)
		}
	}
	for name, body := range corpusBodies(t) {
		if !strings.HasPrefix(name, "examples/") || strings.Contains(name, "Bundle") {
			continue
		}
		if v, ok, why := vouchFor(body); ok && !v {
			t.Logf("left to jsonformat: %s (at %s)", name, why)
		}
	}
}

// trickyValues replace one value in the mutants: near misses of every
// primitive's lexical form, codes in the wrong case, references to types
// an element may not allow, and shapes jsonformat treats specially.
var trickyValues = func() []fhirjson.Value {
	var vs []fhirjson.Value
	for _, s := range []string{
		"", " ", "x ", " x", "a  b", "a\tb", "x\x01y", "http://a b", "%zz", "http://[::1", "#frag",
		"1", "0", "-1", "+1", "1.0", "1e3", "2147483648", "true", "null",
		"2019", "2019-02", "2019-02-28", "2019-02-29", "2020-02-29", "2019-13-01", "2019-00-10", "2019-04-31", "2019-1-1", "-2019", "20190228",
		"2019-02-28T10:00", "2019-02-28T10:00:00", "2019-02-28T10:00:00Z", "2019-02-28T10:00:00.123+01:00", "2019-02-28T10:00:00+14:00",
		"2019-02-28T10:00:00+14:30", "2019-02-28T10:00:00+15:00", "2019-02-28T24:00:00Z", "2019-02-28T10:60:00Z", "2019-02-28T10:00:60Z",
		"2019-02-28T10:00:00.1234567891Z", "2019-02-28t10:00:00z", "10:00", "10:00:00", "10:00:00.5", "24:00:00",
		"male", "MALE", "Male", "female", "unknown", "other", "final", "FINAL", "entered-in-error", "entered_in_error", "booked", "official", "nonsense-code",
		"Patient/1", "Patient/1/_history/2", "Group/1", "Practitioner/1", "Organization/1", "Device/1", "Unknown/1", "patient/1", "Patient/", "/Patient/1",
		"urn:uuid:61ebe359-bfdc-4613-8bf2-c5e300945f0a", "urn:uuid:61EBE359-BFDC-4613-8BF2-C5E300945F0A", "urn:oid:1.2.3", "urn:oid:3.1",
		"aGVsbG8=", "aGVsbG8", "aGVs bG8=", "aGVs/G8=", "id-with.dots", strings.Repeat("a", 65),
		"<div xmlns=\"http://www.w3.org/1999/xhtml\">x</div>",
	} {
		vs = append(vs, fhirjson.Str(s))
	}
	for _, n := range trickyNumbers {
		vs = append(vs, fhirjson.Value{Kind: fhirjson.Number, Str: n})
	}
	vs = append(vs,
		fhirjson.Value{Kind: fhirjson.Bool, Str: "true"},
		fhirjson.Value{Kind: fhirjson.Bool, Str: "false"},
		fhirjson.Obj(fhirjson.KV("extension", fhirjson.Arr(fhirjson.Obj(fhirjson.KV("url", fhirjson.Str("http://x")), fhirjson.KV("valueString", fhirjson.Str("y")))))),
		fhirjson.Obj(fhirjson.KV("reference", fhirjson.Str("Group/1"))),
		fhirjson.Arr(fhirjson.Str("x")),
	)
	return vs
}()

var trickyNumbers = []string{"0", "-0", "1", "-1", "7", "1.5", "-1.50", "1e3", "1E-2", "0.0",
	"2147483647", "2147483648", "-2147483648", "-2147483649", "99999999999999999999"}

// collect gathers pointers to the scalar values and the objects of a tree.
func collect(v *fhirjson.Value, leaves, objects *[]*fhirjson.Value) {
	switch v.Kind {
	case fhirjson.Object:
		*objects = append(*objects, v)
		for i := range v.Members {
			if v.Members[i].Key == "resourceType" {
				continue
			}
			collect(&v.Members[i].Value, leaves, objects)
		}
	case fhirjson.Array:
		for i := range v.Items {
			collect(&v.Items[i], leaves, objects)
		}
	default:
		*leaves = append(*leaves, v)
	}
}

func truncateBody(b []byte) string {
	if len(b) > 400 {
		return string(b[:400]) + "..."
	}
	return string(b)
}

// FuzzVouch: for any body, vouch's yes implies jsonformat's.
func FuzzVouch(f *testing.F) {
	for _, tc := range benchBodies() {
		f.Add(tc.body)
	}
	if dir := filepath.Join(corpusRoot, "examples"); dirExists(dir) {
		files, _ := filepath.Glob(filepath.Join(dir, "*", "*.json"))
		for _, file := range files {
			if b, err := os.ReadFile(file); err == nil && len(b) < 20_000 {
				f.Add(b)
			}
		}
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		if v, _, _ := vouchFor(body); v {
			if err := validate(body, nil); err != nil {
				t.Fatalf("vouched for, but jsonformat refuses it: %v", err)
			}
		}
	})
}

func dirExists(dir string) bool {
	st, err := os.Stat(dir)
	return err == nil && st.IsDir()
}

// TestVouchTemporalForms puts near misses of each temporal form in an
// element of each temporal type: vouch must never say yes where
// jsonformat says no, and must say yes to the ordinary forms.
func TestVouchTemporalForms(t *testing.T) {
	elements := []struct{ typ, body string }{
		{"date", `{"resourceType":"Patient","birthDate":%q}`},
		{"dateTime", `{"resourceType":"Patient","deceasedDateTime":%q}`},
		{"instant", `{"resourceType":"Observation","status":"final","code":{"text":"x"},"issued":%q}`},
		{"time", `{"resourceType":"Observation","status":"final","code":{"text":"x"},"valueTime":%q}`},
	}
	ordinary := map[string][]string{
		"date":     {"2019", "2019-02", "2019-02-28", "2020-02-29"},
		"dateTime": {"2019", "2019-02-28", "2019-02-28T10:00:00Z", "2019-02-28T10:00:00.123+01:00", "2019-02-28T10:00:00-05:00"},
		"instant":  {"2019-02-28T10:00:00Z", "2019-02-28T10:00:00.123456+14:00"},
		"time":     {"10:00:00", "23:59:59.5"},
	}
	var values []string
	for _, v := range trickyValues {
		if v.Kind == fhirjson.String {
			values = append(values, v.Str)
		}
	}
	values = append(values, "1900-02-29", "2000-02-29", "2100-02-29", "0000", "9999-12-31T23:59:59.999999999Z", "2019-02-28T10:00:00.Z",
		"2019-02-28T10:00:00+01", "2019-02-28T10:00:00+0100", "2019-02-28T10:00:00+1:00", "2019-02-28T10:00:00-14:00", "2019-02-28 10:00:00Z",
		"10:00:00.", "10:00:00.1234567890", "1:00:00", "10:0:00", "2019-02-28T10:00:00ZZ")
	for _, el := range elements {
		for _, s := range values {
			body := []byte(fmt.Sprintf(el.body, s))
			v, ok, _ := vouchFor(body)
			if ok && v {
				if err := validate(body, nil); err != nil {
					t.Errorf("%s %q: vouched for, but jsonformat refuses it: %v", el.typ, s, err)
				}
			}
		}
		for _, s := range ordinary[el.typ] {
			if v, ok, why := vouchFor([]byte(fmt.Sprintf(el.body, s))); !ok || !v {
				t.Errorf("%s %q: not vouched for (at %s)", el.typ, s, why)
			}
		}
	}
}
