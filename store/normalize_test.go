package store

import (
	"bytes"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// normalizeSlowly is Normalize written plainly, rune by rune after a full
// decomposition: the reference Normalize's shortcuts must agree with.
func normalizeSlowly(s string) string {
	var out []string
	for _, word := range strings.FieldsFunc(norm.NFD.String(s), unicode.IsSpace) {
		var b strings.Builder
		for _, r := range word {
			if !unicode.Is(unicode.Mn, r) {
				b.WriteString(strings.ToLower(string(r)))
			}
		}
		if b.Len() > 0 {
			out = append(out, b.String())
		}
	}
	return strings.Join(out, " ")
}

func TestNormalize(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"smith", "smith"},
		{"Smith", "smith"},
		{"  Évelyne  O'Brien ", "evelyne o'brien"},
		{"Ruairí\tSTEWART\n", "ruairi stewart"},
		{"Guzmán", "guzman"},
		{"ÅNGSTRÖM", "angstrom"},
		{"e\u0301", "e"},               // already decomposed
		{"Straße", "straße"},           // no case folding beyond lower case
		{"a\u00a0b", "a b"},            // no-break space is space
		{"\fa\vb\f", "a b"},            // form feed and vertical tab are space too
		{"\xff\xfeX", "\ufffd\ufffdx"}, // invalid UTF-8 stays replaced, not dropped
	} {
		if got := Normalize(tc.in); got != tc.want {
			t.Errorf("Normalize(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func FuzzNormalize(f *testing.F) {
	for _, s := range []string{"", "Smith", "  Évelyne  O'Brien ", "e\u0301\u0301X", "\xff a", "Ǆ ǅ", "İ"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := Normalize(s), normalizeSlowly(s); got != want {
			t.Fatalf("Normalize(%q) = %q, want %q", s, got, want)
		}
		// Idempotent on what it is given: valid UTF-8, since the JSON
		// parser refuses anything else (NFD leaves a rune next to an
		// invalid byte composed, and the replacement character then lets
		// a second pass decompose it).
		if got := Normalize(s); utf8.ValidString(s) && Normalize(got) != got {
			t.Fatalf("Normalize is not idempotent on %q: %q", got, Normalize(got))
		}
	})
}

// TestResourceKeysArena: keys built in a shared array are the same keys,
// whatever room the array has (none, less than one key, plenty), and none
// is changed by building the next.
func TestResourceKeysArena(t *testing.T) {
	typ, id := "Patient", "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"
	rng := rand.New(rand.NewPCG(1, 2))
	kinds := []IndexKind{IndexString, IndexToken, IndexReference, IndexDate, IndexNumber, IndexQuantity, IndexURI}
	words := []string{"", "Évelyne", "smith", "urn:x", "a\x00b", "Patient/p1", "http://x.org/Patient/p1", "Practitioner/d/_history/2"}
	for round := 0; round < 2000; round++ {
		idx := make([]IndexValue, rng.IntN(12))
		for i := range idx {
			idx[i] = IndexValue{
				Param: []string{"name", "date", "code", "subject"}[rng.IntN(4)],
				Kind:  kinds[rng.IntN(len(kinds))],
				Text:  words[rng.IntN(len(words))], System: words[rng.IntN(len(words))],
				Code: words[rng.IntN(len(words))], Ref: words[rng.IntN(len(words))],
				Lo: rng.Int64N(1 << 40), Num: rng.NormFloat64(),
			}
			idx[i].Hi = idx[i].Lo + rng.Int64N(1<<37)
		}
		var want [][]byte
		for i := range idx { // one value at a time, each key its own array
			for _, k := range resourceKeys(typ, id, idx[i:i+1], nil) {
				want = append(want, bytes.Clone(k))
			}
		}
		for _, c := range []int{0, 7, 64, 1 << 14} {
			kb := keyBuilder{arena: make([]byte, 0, c)}
			for i := range idx {
				idx[i].entries(&kb, typ, id)
			}
			got := slices.Clone(kb.keys)
			slices.SortFunc(got, bytes.Compare)
			got = slices.CompactFunc(got, bytes.Equal)
			w := slices.Clone(want)
			slices.SortFunc(w, bytes.Compare)
			w = slices.CompactFunc(w, bytes.Equal)
			if len(got) != len(w) {
				t.Fatalf("round %d, arena %d: %d keys, want %d", round, c, len(got), len(w))
			}
			for i := range w {
				if !bytes.Equal(got[i], w[i]) {
					t.Fatalf("round %d, arena %d: key %d is %q, want %q", round, c, i, got[i], w[i])
				}
				if k, ok := keyID(got[i]); !ok || k != id {
					t.Fatalf("key %q does not end with the id", got[i])
				}
			}
		}
		all := resourceKeys(typ, id, idx, nil)
		if !slices.IsSortedFunc(all, bytes.Compare) {
			t.Fatal("resourceKeys are not in key order")
		}
		for i := 1; i < len(all); i++ {
			if bytes.Equal(all[i-1], all[i]) {
				t.Fatalf("key %q twice", all[i])
			}
		}
	}
}
