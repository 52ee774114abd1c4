package store

import (
	"bytes"
	"reflect"
	"testing"
	"time"
)

// The decoders of what the store reads back from an engine. A second
// engine (Redis, shared by processes of several releases, restorable
// from files) makes "the bytes are ours" an assumption: whatever they
// hold, decoding must fail cleanly, never panic, and what decodes must
// encode to a record that decodes the same.

func sampleVersions() []Version {
	at := time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC)
	return []Version{
		{Type: "Patient", ID: "p1", VID: 1, LastUpdated: at, Method: MethodCreate, Author: "client/a", Creator: "client/a", Compartments: []string{"Patient/p1"}, Body: []byte(`{"resourceType":"Patient"}`)},
		{Type: "Patient", ID: "p1", VID: 300, LastUpdated: at, Method: MethodDelete, Author: "", Deleted: true},
		{Type: "Observation", ID: "o", VID: 2, LastUpdated: time.UnixMicro(-1).UTC(), Method: MethodUpdate, Author: "x\x00y", Compartments: []string{"Patient/a", "Practitioner/b"}, Body: []byte("{}")},
	}
}

func FuzzDecodeCurrent(f *testing.F) {
	for _, v := range sampleVersions() {
		f.Add(encodeCurrent(&v))
	}
	f.Add([]byte{recordFormat, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := decodeCurrent("Patient", "p", b)
		if err != nil {
			return
		}
		again, err := decodeCurrent("Patient", "p", encodeCurrent(&v))
		if err != nil || !reflect.DeepEqual(again, v) {
			t.Fatalf("%x decodes to %+v, which encodes to %+v (%v)", b, v, again, err)
		}
	})
}

func FuzzDecodeVersion(f *testing.F) {
	for _, v := range sampleVersions() {
		f.Add(encodeVersion(&v))
	}
	f.Add([]byte{recordFormat, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x80})
	f.Fuzz(func(t *testing.T, b []byte) {
		if _, err := versionMicros(b); err != nil {
			return
		}
		v, err := decodeVersion("Patient", "p", 7, bytes.Clone(b))
		if err != nil {
			return
		}
		again, err := decodeVersion("Patient", "p", 7, encodeVersion(&v))
		if err != nil || !reflect.DeepEqual(again, v) {
			t.Fatalf("%x decodes to %+v, which encodes to %+v (%v)", b, v, again, err)
		}
	})
}

// FuzzIndexList: the 'x' record listing a resource's index keys.
func FuzzIndexList(f *testing.F) {
	prefix, suffix := indexKeyEnds("Patient", "p1")
	var list []byte
	for _, k := range resourceKeys("Patient", "p1", []IndexValue{
		{Param: "name", Kind: IndexString, Text: "Smith"},
		{Param: "general-practitioner", Kind: IndexReference, Ref: "Practitioner/d1"},
	}, nil) {
		list = appendIndexKey(list, k, len(prefix), len(suffix))
	}
	f.Add(list)
	f.Add([]byte{1, 3, 'a', 'b', 'c'}) // written before lists were compact
	f.Add([]byte{0, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, b []byte) {
		var keys [][]byte
		if err := eachIndexKey(b, "Patient", "p1", func(k []byte) { keys = append(keys, k) }); err != nil || len(b) == 0 || b[0] != listCompact {
			return
		}
		var again []byte
		for _, k := range keys {
			again = appendIndexKey(again, k, len(prefix), len(suffix))
		}
		var keys2 [][]byte
		if err := eachIndexKey(again, "Patient", "p1", func(k []byte) { keys2 = append(keys2, k) }); err != nil || !reflect.DeepEqual(keys, keys2) {
			t.Fatalf("list %x: keys %q re-listed as %q (%v)", b, keys, keys2, err)
		}
	})
}

// FuzzIndexKey: the parts decoded from index keys met in scans.
func FuzzIndexKey(f *testing.F) {
	for _, k := range resourceKeys("Patient", "p1", []IndexValue{
		{Param: "name", Kind: IndexString, Text: "Smith"},
		{Param: "identifier", Kind: IndexToken, System: "urn:mrn", Code: "42", Text: "MRN"},
		{Param: "general-practitioner", Kind: IndexReference, Ref: "Practitioner/d1"},
		{Param: "link", Kind: IndexReference, Ref: "https://example.org/fhir/Patient/x"},
	}, nil) {
		f.Add(k)
	}
	f.Add([]byte{0, 1, 5})
	f.Fuzz(func(t *testing.T, k []byte) {
		if s, rest, ok := readStr(k); ok {
			if enc := keyBuf(nil).str(s); !bytes.Equal(enc, k[:len(k)-len(rest)]) {
				t.Fatalf("readStr(%x) = %q, which encodes to %x", k, s, enc)
			}
		}
		if _, ok := keyID(k); !ok {
			return
		}
		for base := 0; base <= len(k); base++ {
			keyRef(k, base)
			tokenText(k, base)
		}
	})
}
