package search

import (
	"errors"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestSearchBounds: a search over a bound is refused before it runs, with
// an error naming the bound (finding 8: 900 name:contains=a took 22 s,
// 2,000 clauses in a POST 68 s, 5,000 _sort keys 17 s).
func TestSearchBounds(t *testing.T) {
	repeat := func(pair string, n int) string { return strings.TrimSuffix(strings.Repeat(pair+"&", n), "&") }
	list := func(v string, n int) string { return strings.TrimSuffix(strings.Repeat(v+",", n), ",") }
	tests := []struct {
		name, typ, query string
		param, msg       string // "" param: the search as a whole
	}{
		{"900 name:contains", "Patient", repeat("name:contains=a", 900), "", "at most 50 per search"},
		{"2,000 clauses", "Patient", repeat("family=a", 2000), "", "at most 50 per search"},
		{"parameters at the bound", "Patient", repeat("family=a", 50), "-", ""},
		{"values of one parameter", "Patient", "_id=" + list("x", 101), "_id", "at most 100 per parameter"},
		{"values at the bound", "Patient", "_id=" + list("x", 100), "-", ""},
		{"values of the search", "Patient", "_id=" + list("x", 100) + "&family=" + list("a", 100) + "&given=a", "", "at most 200 per search"},
		{"5,000 sort keys", "Patient", "_sort=" + list("family", 5000), "_sort", "at most"},
		{"sort keys", "Patient", "_sort=" + list("_id", 9), "_sort", "at most 8"},
		{"sort keys over several _sort", "Patient", repeat("_sort=family,given,birthdate", 3), "_sort", "at most 8"},
		{"sort keys at the bound", "Patient", "_sort=" + list("family", 8), "-", ""},
		{"includes", "Observation", repeat("_include=Observation:subject", 10) + "&" + repeat("_revinclude=Provenance:target", 7), "_include", "at most 16"},
		{"long value", "Patient", "family=" + strings.Repeat("a", 1025), "family", "at most 1024"},
		{"value at the bound", "Patient", "family=" + strings.Repeat("a", 1024), "-", ""},
		{"long page token", "Patient", "_page=" + strings.Repeat("A", 5000), "-", ""},
		{"chains", "Observation", "subject:Patient.family=a&subject:Patient.given=b&performer:Practitioner.family=c&encounter.status=x&_has:Provenance:target:agent=Practitioner/1", "", "at most 4"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			params, err := url.ParseQuery(tt.query)
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			_, err = ParseQuery(tt.typ, params, Options{})
			if d := time.Since(start); d > 50*time.Millisecond {
				t.Errorf("parsing took %v", d)
			}
			var se *Error
			switch {
			case tt.param == "-":
				if errors.As(err, &se) && se.Limit {
					t.Fatalf("refused within the bounds: %v", err)
				}
			case !errors.As(err, &se) || !se.Limit:
				t.Fatalf("err = %v, want a limit error", err)
			case se.Param != tt.param || !strings.Contains(se.Msg, tt.msg):
				t.Fatalf("param %q msg %q; want %q naming %q", se.Param, se.Msg, tt.param, tt.msg)
			}
		})
	}
	// The bounds are those docs/limits.md documents.
	for name, v := range map[string]int{"parameters": MaxParameters, "values": MaxValues, "sorts": MaxSorts, "includes": MaxIncludes} {
		if v <= 0 {
			t.Errorf("%s bound %s", name, strconv.Itoa(v))
		}
	}
}
