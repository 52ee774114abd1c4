package search

import (
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkExtractPatient measures extraction for a typical Patient: it
// runs on every write.
func BenchmarkExtractPatient(b *testing.B) {
	for _, fixture := range []string{"testdata/Patient-typical.json", filepath.Join(examplesDir, "Patient", "Patient-example.json")} {
		src, err := os.ReadFile(fixture)
		if err != nil {
			b.Logf("skip %s: %v", fixture, err)
			continue
		}
		res := parse(b, string(src))
		b.Run(filepath.Base(fixture), func(b *testing.B) {
			Extract("Patient", res) // compile outside the measurement
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Extract("Patient", res); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
