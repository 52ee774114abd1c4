package store

import (
	"bytes"
	"encoding/binary"
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
	want := resourceKeys(typ, id, ivs)
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
