package conformance

import (
	"strings"
	"testing"
)

func TestEverything(t *testing.T) {
	w := setupWorld(t)
	everything := func(t *testing.T, query string) ([]string, map[string]any) {
		t.Helper()
		r := do(t, srv.full, "GET", "Patient/"+w.ids["p1"]+"/$everything"+query, nil)
		wantStatus(t, r, 200)
		b := r.JSON()
		if b["type"] != "searchset" {
			t.Fatalf("type %v", b["type"])
		}
		return w.keys(b, "match"), b
	}
	spec(t, "patient-operation-everything: the patient and its compartment", func(t *testing.T) {
		got, b := everything(t, "")
		if sortedKeys(got) != "o1,p1,r1" || got[0] != "p1" {
			t.Fatalf("got %v", got)
		}
		if b["total"] != float64(3) {
			t.Errorf("total %v", b["total"])
		}
	})
	spec(t, "patient-operation-everything: _count pages with next links", func(t *testing.T) {
		var all []string
		got, b := everything(t, "?_count=1")
		all = append(all, got...)
		for i := 0; i < 5; i++ {
			next := ""
			for _, l := range b["link"].([]any) {
				if l := l.(map[string]any); l["relation"] == "next" {
					next = l["url"].(string)
				}
			}
			if next == "" {
				break
			}
			r := do(t, srv.full, "GET", next, nil)
			wantStatus(t, r, 200)
			b = r.JSON()
			all = append(all, w.keys(b, "match")...)
		}
		if strings.Join(all, ",") != "p1,o1,r1" {
			t.Fatalf("pages gave %v", all)
		}
	})
	spec(t, "patient-operation-everything: _since keeps only later changes", func(t *testing.T) {
		got, _ := everything(t, "?_since=2999-01-01T00:00:00Z")
		if len(got) != 0 {
			t.Fatalf("got %v", got)
		}
	})
	spec(t, "patient-operation-everything: an unknown patient is 404", func(t *testing.T) {
		wantOutcome(t, do(t, srv.full, "GET", "Patient/"+unique("nobody")+"/$everything", nil), 404, "")
	})
}
