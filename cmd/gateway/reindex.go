package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/fhirgate/fhirgate/fhir"
	"github.com/fhirgate/fhirgate/fhir/fhirjson"
	"github.com/fhirgate/fhirgate/fhir/rest"
	"github.com/fhirgate/fhirgate/fhir/search"
	"github.com/fhirgate/fhirgate/store"
)

// reindex rebuilds the search index of every current resource with the
// search parameter table compiled into this binary: run it after an
// upgrade that changes the table. No gateway may serve from the store
// while it runs: Pebble's directory lock says so for one process, and on
// a shared Redis store it refuses while any replica serves and keeps
// replicas from starting until it is done (store.Maintain).
func reindex(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("reindex", stderr)
	data := fs.String("data", "./data", "data directory (Pebble)")
	var sc storeConfig
	sc.register(fs)
	if err := parse(fs, args); err != nil {
		fmt.Fprintf(stderr, "gateway reindex: %v\n", err)
		return 2
	}
	ctx := context.Background()
	db, err := openEngine(ctx, sc, *data, slog.New(slog.NewTextHandler(stderr, nil)))
	if err != nil {
		fmt.Fprintf(stderr, "gateway reindex: %v\n", err)
		return 1
	}
	renew, end, err := store.Maintain(ctx, db, store.NewHolderID("reindex-"))
	if err != nil {
		db.Close()
		fmt.Fprintf(stderr, "gateway reindex: %v; stop every replica first\n", err)
		return 1
	}
	mctx, stopRenew := context.WithCancel(ctx)
	renewed := make(chan struct{})
	go func() {
		defer close(renewed)
		t := time.NewTicker(store.PresenceTTL / 5)
		defer t.Stop()
		for {
			select {
			case <-mctx.Done():
				return
			case <-t.C:
				renew(mctx)
			}
		}
	}()
	defer func() { stopRenew(); <-renewed; end(); db.Close() }()
	st := store.New(db, store.Options{Shared: shared})
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
