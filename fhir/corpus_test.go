package fhir

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// corpusDir is the shared test corpus beside the checkout (third-party
// files: read in place, never copied into the repo).
var corpusRoot = filepath.Join("..", "..", "shared", "corpus")

func corpusDir(t testing.TB) string {
	dir := corpusRoot
	if _, err := os.Stat(dir); err != nil {
		if os.Getenv("FHIRGATE_REQUIRE_SERVICES") == "1" {
			t.Fatalf("corpus missing at %s", dir)
		}
		t.Skipf("SKIPPED: shared corpus not found at %s", dir)
	}
	return dir
}

func TestParseOfficialExamples(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(corpusDir(t), "examples", "*", "*.json"))
	if len(files) < 100 {
		t.Fatalf("only %d examples found", len(files))
	}
	for _, f := range files {
		body, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Parse(body); err != nil {
			t.Errorf("%s: %v", filepath.Base(f), err)
		}
	}
}

// validatorOnly are the fhir-test-cases-validator cases a server may accept:
// INDEX.json marks them non-structural (terminology, profiles, signatures,
// display names), which only a full validator with terminology checks.
func TestParseInvalidCorpus(t *testing.T) {
	root := filepath.Join(corpusDir(t), "invalid")
	type entry struct {
		File     string `json:"file"`
		Expect   string `json:"expect"`
		Category string `json:"category"`
	}
	for _, set := range []string{"google-fhir-jsonformat", "google-fhir-primitives", "fhir-test-cases-validator"} {
		raw, err := os.ReadFile(filepath.Join(root, set, "INDEX.json"))
		if err != nil {
			t.Fatal(err)
		}
		var idx []entry
		if err := json.Unmarshal(raw, &idx); err != nil {
			t.Fatal(err)
		}
		for _, e := range idx {
			body, err := os.ReadFile(filepath.Join(root, set, e.File))
			if err != nil {
				t.Fatal(err)
			}
			_, perr := Parse(body)
			accept := e.Expect == "accept"
			optional := set == "fhir-test-cases-validator" && !strings.HasPrefix(e.Category, "structural")
			switch {
			case optional:
				if perr == nil {
					t.Logf("accepted validator-only case %s (%s)", e.File, e.Category)
				}
			case accept && perr != nil:
				t.Errorf("%s/%s: refused a valid case: %v", set, e.File, perr)
			case !accept && perr == nil:
				t.Errorf("%s/%s: accepted an invalid case", set, e.File)
			case perr != nil:
				fe, ok := perr.(*Error)
				if !ok || len(fe.Issues) == 0 {
					t.Errorf("%s/%s: error without issues: %v", set, e.File, perr)
				}
			}
		}
	}
}
