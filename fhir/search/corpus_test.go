package search

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fhirgate/fhirgate/fhir/fhirjson"
)

// TestCorpus extracts every official example, and every resource inside
// the example Bundles, without error or panic.
func TestCorpus(t *testing.T) {
	if _, err := os.Stat(examplesDir); err != nil {
		t.Skipf("SKIP: %s absent (../shared is absent; CI always has it): %v", examplesDir, err)
	}
	var files, resources, values int
	err := filepath.WalkDir(examplesDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".json") {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		v, err := fhirjson.Parse(b, fhirjson.Limits{})
		if err != nil {
			t.Errorf("%s: %v", path, err)
			return nil
		}
		files++
		var walk func(res *fhirjson.Value, where string)
		walk = func(res *fhirjson.Value, where string) {
			typ := res.GetString("resourceType")
			vals, err := Extract(typ, res)
			if err != nil {
				t.Errorf("%s: %v", where, err)
				return
			}
			resources++
			values += len(vals)
			if entries := res.Get("entry"); typ == "Bundle" && entries != nil {
				for i := range entries.Items {
					if r := entries.Items[i].Get("resource"); r != nil {
						walk(r, where+" entry "+r.GetString("resourceType"))
					}
				}
			}
		}
		walk(&v, path)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 100 {
		t.Errorf("only %d example files", files)
	}
	t.Logf("%d files, %d resources, %d index values", files, resources, values)
}
