package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/fhirgate/fhirgate/fhir"
	"github.com/fhirgate/fhirgate/fhir/fhirjson"
	"github.com/fhirgate/fhirgate/fhir/search"
	"github.com/fhirgate/fhirgate/store"
	"github.com/fhirgate/fhirgate/store/pebble"
)

// reindex rebuilds the search index of every current resource with the
// search parameter table compiled into this binary: run it after an
// upgrade that changes the table. The gateway must be stopped (the store
// is locked while it runs).
func reindex(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("reindex", stderr)
	data := fs.String("data", "./data", "data directory")
	if err := parse(fs, args); err != nil {
		fmt.Fprintf(stderr, "gateway reindex: %v\n", err)
		return 2
	}
	ctx := context.Background()
	db, err := pebble.New(ctx, pebble.Config{Dir: filepath.Join(*data, "store")})
	if err != nil {
		fmt.Fprintf(stderr, "gateway reindex: %v (is the gateway still running on this data directory?)\n", err)
		return 1
	}
	st := store.New(db, store.Options{Shared: shared})
	defer st.Close()
	start := time.Now()
	n, err := reindexAll(ctx, st)
	if err != nil {
		fmt.Fprintf(stderr, "gateway reindex: after %d resources: %v\n", n, err)
		return 1
	}
	fmt.Fprintf(stdout, "reindexed %d resources in %s\n", n, time.Since(start).Round(time.Millisecond))
	return 0
}

// reindexAll recomputes the index entries of every current resource.
func reindexAll(ctx context.Context, st *store.Store) (int, error) {
	n := 0
	for _, typ := range fhir.ResourceTypes() {
		err := st.EachCurrent(ctx, typ, func(v store.Version) error {
			root, err := fhirjson.Parse(v.Body, fhir.Limits)
			if err != nil {
				return fmt.Errorf("%s/%s: %w", v.Type, v.ID, err)
			}
			idx, err := search.Extract(typ, &root)
			if err != nil {
				return fmt.Errorf("%s/%s: %w", v.Type, v.ID, err)
			}
			if err := st.Reindex(ctx, v, idx); err != nil {
				return err
			}
			n++
			return nil
		})
		if err != nil {
			return n, err
		}
	}
	return n, nil
}
