package main

import (
	"context"
	"log/slog"

	"github.com/fhirgate/fhirgate/audit"
	"github.com/fhirgate/fhirgate/fhir/bulk"
	"github.com/fhirgate/fhirgate/fhir/rest"
	"github.com/fhirgate/fhirgate/fhir/search"
	"github.com/fhirgate/fhirgate/policy"
	"github.com/fhirgate/fhirgate/store"
)

// startExport runs Bulk Data exports on this replica: its own jobs, and
// those of a replica that died (each job under a store lease). stop ends
// the runners (their jobs stay in the store for a takeover).
func startExport(st *store.Store, decider *policy.Decider, rec *audit.Recorder, log *slog.Logger) (x *bulk.Exporter, stop func()) {
	x = bulk.New(bulk.Config{Store: st, Types: search.ResourceTypes(), Decide: rest.ExportDecider(decider),
		Audit: rec, Holder: store.NewHolderID("export-"), Logger: log})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); x.Run(ctx) }()
	return x, func() { cancel(); <-done }
}
