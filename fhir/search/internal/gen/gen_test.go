package main

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// specDir is the shared definitions folder seen from this package.
const specDir = "../../../../../shared/spec/r4"

// TestGeneratedUpToDate regenerates the tables into a temporary folder and
// fails when the committed files differ: run go generate in fhir/search.
func TestGeneratedUpToDate(t *testing.T) {
	if _, err := os.Stat(filepath.Join(specDir, "search-parameters.json")); err != nil {
		t.Skipf("SKIP: R4 definitions not found at %s (../shared is absent; CI always has it): %v", specDir, err)
	}
	out := t.TempDir()
	files, err := generate(specDir)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 3 {
		t.Fatalf("generated %d files, want 3", len(files))
	}
	for name, src := range files {
		if err := os.WriteFile(filepath.Join(out, name), src, 0o644); err != nil {
			t.Fatal(err)
		}
		regenerated, err := os.ReadFile(filepath.Join(out, name))
		if err != nil {
			t.Fatal(err)
		}
		committed, err := os.ReadFile(filepath.Join("../..", name))
		if err != nil {
			t.Fatalf("%s: %v (run go generate in fhir/search)", name, err)
		}
		if !bytes.Equal(regenerated, committed) {
			t.Errorf("%s is stale: run go generate in fhir/search", name)
		}
	}
}

func TestBranchesFor(t *testing.T) {
	tests := []struct {
		expr, base string
		bases      []string
		want       string
		wantErr    bool
	}{
		{"AllergyIntolerance.patient | CarePlan.subject.where(resolve() is Patient) | (Observation.value as Quantity)",
			"CarePlan", []string{"AllergyIntolerance", "CarePlan", "Observation"}, "CarePlan.subject.where(resolve() is Patient)", false},
		{"AllergyIntolerance.patient | (Observation.value as Quantity) | Observation.x.where(a='|')",
			"Observation", []string{"AllergyIntolerance", "Observation"}, "(Observation.value as Quantity) | Observation.x.where(a='|')", false},
		{"name | alias", "InsurancePlan", []string{"InsurancePlan"}, "name | alias", false},
		{"name | Other.alias", "A", []string{"A", "Other"}, "", true},
		{"Other.x", "A", []string{"A"}, "", true},
		{"B.x", "A", []string{"A", "B"}, "", true},
		{"", "A", []string{"A"}, "", false},
	}
	for _, tt := range tests {
		got, err := branchesFor(tt.expr, tt.base, tt.bases)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("branchesFor(%q, %s) = %q, %v; want %q, error %v", tt.expr, tt.base, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestSplitUnion(t *testing.T) {
	got := splitUnion("a | (b | c) | d.where(x='|)') | `e|f`")
	want := []string{"a", "(b | c)", "d.where(x='|)')", "`e|f`"}
	if !slices.Equal(got, want) {
		t.Errorf("splitUnion = %q, want %q", got, want)
	}
}
