package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/fhirgate/fhirgate/fhir"
	"github.com/fhirgate/fhirgate/fhir/fhirjson"
	"github.com/fhirgate/fhirgate/fhir/rest"
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
	n, err := reindexAll(ctx, st, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "gateway reindex: after %d resources: %v\n", n, err)
		return 1
	}
	fmt.Fprintf(stdout, "reindexed %d resources in %s\n", n, time.Since(start).Round(time.Millisecond))
	return 0
}

// holdWallets makes a Patient or Practitioner hold its wallets, so that
// no other record can be linked to them (data written before wallets were
// unique). A wallet two records already share is reported, not an error:
// an administrator must remove one link; until then the wallet cannot sign
// in.
func holdWallets(ctx context.Context, st *store.Store, v store.Version, warn io.Writer) error {
	names, err := rest.WalletNames(v.Type, v.Body)
	if err != nil || len(names) == 0 {
		return err
	}
	cur, err := st.Current(ctx, v.Type, v.ID)
	if err != nil {
		return err
	}
	var taken *store.TakenError
	if err := st.Hold(ctx, cur, names); errors.As(err, &taken) {
		fmt.Fprintf(warn, "gateway reindex: %s/%s and %s are linked to one wallet; remove one link (until then it cannot sign in)\n", v.Type, v.ID, taken.Holder)
		return nil
	} else if err != nil {
		return err
	}
	return nil
}

// reindexAll recomputes the index entries of every current resource and
// the wallets each Patient and Practitioner holds.
func reindexAll(ctx context.Context, st *store.Store, warn io.Writer) (int, error) {
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
			return holdWallets(ctx, st, v, warn)
		})
		if err != nil {
			return n, err
		}
	}
	return n, nil
}
