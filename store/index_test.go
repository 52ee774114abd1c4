package store

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"testing"
)

// TestIndexListRoundTrip: a list record gives back exactly the keys put
// in, in the compact form and in the whole-key form of earlier records.
func TestIndexListRoundTrip(t *testing.T) {
	typ, id := "Patient", "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"
	ivs := []IndexValue{
		{Param: "family", Kind: IndexString, Text: "O'Brien"},
		{Param: "identifier", Kind: IndexToken, System: "urn:mrn", Code: "12\x0034"},
		{Param: "general-practitioner", Kind: IndexReference, Ref: "Practitioner/p1"},
		{Param: "birthdate", Kind: IndexDate, Lo: 1, Hi: 2},
		{Param: "death-date", Kind: IndexDate, Lo: 1, Hi: 1 << 50}, // wide
		{Param: "death-date", Kind: IndexDate, Lo: 5, Hi: 6},       // a second value
	}
	want := resourceKeys(typ, id, ivs, nil)
	if len(want) != 9 {
		t.Fatalf("%d keys, want 9 (one per value, three for the wide one, a marker for the second)", len(want))
	}
	prefix, suffix := indexKeyEnds(typ, id)
	var compact, whole []byte
	for _, k := range want {
		if !bytes.HasPrefix(k, prefix) || !bytes.HasSuffix(k, suffix) {
			t.Fatalf("key %q does not have the shared ends", k)
		}
		compact = appendIndexKey(compact, k, len(prefix), len(suffix))
		whole = binary.AppendUvarint(whole, uint64(len(k)))
		whole = append(whole, k...)
	}
	for name, list := range map[string][]byte{"compact": compact, "whole keys": whole} {
		var got [][]byte
		if err := eachIndexKey(list, typ, id, func(k []byte) { got = append(got, k) }); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(got) != len(want) {
			t.Fatalf("%s: %d keys, want %d", name, len(got), len(want))
		}
		for i := range want {
			if !bytes.Equal(got[i], want[i]) {
				t.Fatalf("%s: key %d is %q, want %q", name, i, got[i], want[i])
			}
		}
	}
	if len(compact) >= len(whole)/2 {
		t.Errorf("the compact list is %d bytes, the whole keys %d", len(compact), len(whole))
	}
	if err := eachIndexKey([]byte{listCompact, 200}, typ, id, func([]byte) {}); err == nil {
		t.Error("a truncated list was read")
	}
}

// TestTokenTextKeys: a coded token value's display rides in its code key,
// and a text without a code gets a key of its own unless a coded value of
// the same parameter already carries it (a CodeableConcept's text is often
// its coding's display).
func TestTokenTextKeys(t *testing.T) {
	coded := IndexValue{Param: "code", Kind: IndexToken, System: "http://loinc.org", Code: "4548-4", Text: "Hémoglobin A1c"}
	tests := []struct {
		name  string
		idx   []IndexValue
		want  int
		texts []string // the texts of the code keys, in key order
	}{
		{"code with display", []IndexValue{coded}, 1, []string{"hemoglobin a1c"}},
		{"code without display", []IndexValue{{Param: "code", Kind: IndexToken, Code: "x"}}, 1, []string{""}},
		{"text equal to the display", []IndexValue{coded, {Param: "code", Kind: IndexToken, Text: "Hémoglobin A1c"}}, 1, nil},
		{"text equal once normalized", []IndexValue{{Param: "code", Kind: IndexToken, Text: "HEMOGLOBIN a1c"}, coded}, 1, nil},
		{"other text", []IndexValue{coded, {Param: "code", Kind: IndexToken, Text: "HbA1c"}}, 2, nil},
		{"same text, other parameter", []IndexValue{coded, {Param: "category", Kind: IndexToken, Text: "Hémoglobin A1c"}}, 2, nil},
		{"text alone", []IndexValue{{Param: "code", Kind: IndexToken, Text: "HbA1c"}}, 1, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			keys := resourceKeys("Observation", "o1", tt.idx, nil)
			if len(keys) != tt.want {
				t.Fatalf("%d keys %q, want %d", len(keys), keys, tt.want)
			}
			base := len(indexPrefix("Observation", "code", subToken))
			var texts []string
			for _, k := range keys {
				if k[base-1] == subToken {
					text, ok := tokenText(k, base)
					if !ok {
						t.Fatalf("code key %q holds no text", k)
					}
					texts = append(texts, text)
				}
			}
			if tt.texts != nil && fmt.Sprint(texts) != fmt.Sprint(tt.texts) {
				t.Errorf("texts %q, want %q", texts, tt.texts)
			}
		})
	}
	// A code key of the earlier layout has no text.
	old := indexPrefix("Observation", "code", subToken)
	if _, ok := tokenText(old.str("x").str("").id("o1"), len(old)); ok {
		t.Error("a code key without text gave one")
	}
}

// TestSharedKeys: a shared parameter's references to its target type on
// this server get no keys (its base parameter's keys hold them); its other
// values keep theirs.
func TestSharedKeys(t *testing.T) {
	shared := func(param string) (string, string, bool) {
		if param == "patient" {
			return "subject", "Patient", true
		}
		return "", "", false
	}
	ref := func(param, r string) IndexValue { return IndexValue{Param: param, Kind: IndexReference, Ref: r} }
	tests := []struct {
		name string
		idx  []IndexValue
		want []string // parameters of the keys, in key order
	}{
		{"local reference to the target", []IndexValue{ref("subject", "Patient/p1"), ref("patient", "Patient/p1")}, []string{"subject"}},
		{"absolute URL", []IndexValue{ref("subject", "http://x.org/fhir/Patient/p1"), ref("patient", "http://x.org/fhir/Patient/p1")}, []string{"patient", "subject"}},
		{"contained", []IndexValue{ref("subject", "#p1"), ref("patient", "#p1")}, []string{"patient", "subject"}},
		{"another type", []IndexValue{ref("patient", "Group/g1")}, []string{"patient"}},
		{"not shared", []IndexValue{ref("performer", "Patient/p1")}, []string{"performer"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, k := range resourceKeys("Observation", "o1", tt.idx, shared) {
				_, rest, _ := readStr(k[1:])
				param, _, _ := readStr(rest)
				got = append(got, param)
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("keys of %s, want %s", got, tt.want)
			}
			if n := len(resourceKeys("Observation", "o1", tt.idx, nil)); n != len(tt.idx) {
				t.Errorf("without sharing: %d keys for %d values", n, len(tt.idx))
			}
		})
	}
}
