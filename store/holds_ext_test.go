package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/fhirgate/fhirgate/internal/enginetest"
	"github.com/fhirgate/fhirgate/store"
)

// TestVersionHolds: a version remembers whether its write said it holds
// unique names (so that an update can know the previous version links no
// wallet without reading its body), through Current, Version and a
// conditional update on it; a write that leaves names alone says nothing.
func TestVersionHolds(t *testing.T) {
	for _, b := range enginetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			s := store.New(b.Open(t), store.Options{})
			at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
			write := func(prev *store.Version, id string, vid uint64, holds bool, names ...string) store.Version {
				t.Helper()
				w := store.Write{Prev: prev, HoldsUnique: holds, Unique: names, New: store.Version{
					Type: "Patient", ID: id, VID: vid, LastUpdated: at.Add(time.Duration(vid) * time.Second),
					Method: store.MethodUpdate, Author: "client/t", Body: []byte(`{"resourceType":"Patient"}`)}}
				if err := s.Commit(ctx, []store.Write{w}); err != nil {
					t.Fatal(err)
				}
				cur, err := s.Current(ctx, "Patient", id)
				if err != nil {
					t.Fatal(err)
				}
				return cur
			}
			check := func(v store.Version, want store.Holds) {
				t.Helper()
				if v.Holds != want {
					t.Errorf("%s/%s v%d: Holds %d, want %d", v.Type, v.ID, v.VID, v.Holds, want)
				}
				old, err := s.Version(ctx, v.Type, v.ID, v.VID)
				if err != nil || old.Holds != want {
					t.Errorf("Version v%d: Holds %d (%v), want %d", v.VID, old.Holds, err, want)
				}
			}
			v1 := write(nil, "a", 1, true) // holds nothing
			check(v1, store.HoldsNone)
			v2 := write(&v1, "a", 2, true, "eip155:1:0x70997970c51812dc3a010c7d01b50e0d17dc79c8")
			check(v2, store.HoldsSome)
			v3 := write(&v2, "a", 3, true) // released
			check(v3, store.HoldsNone)
			check(write(&v3, "a", 4, false), store.HoldsUnknown) // said nothing
			check(write(nil, "b", 1, false), store.HoldsUnknown)
		})
	}
}
