package store_test

import (
	"testing"

	"github.com/fhirgate/fhirgate/internal/enginetest"
	"github.com/fhirgate/fhirgate/store"
)

func TestJournalOverlappingWriters(t *testing.T) {
	for _, b := range enginetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) { store.JournalOverlapTest(t, b.Open(t)) })
	}
}

func TestJournalUnion(t *testing.T) {
	for _, b := range enginetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) { store.JournalUnionTest(t, b.Open(t)) })
	}
}
