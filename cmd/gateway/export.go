package main

import (
	"context"
	"flag"
	"log/slog"

	"github.com/fhirgate/fhirgate/audit"
	"github.com/fhirgate/fhirgate/fhir/bulk"
	"github.com/fhirgate/fhirgate/fhir/rest"
	"github.com/fhirgate/fhirgate/fhir/search"
	"github.com/fhirgate/fhirgate/policy"
	"github.com/fhirgate/fhirgate/store"
)

// exportConfig sizes the Bulk Data exports' output: files of at most
// fileResources resources, kept in the store in blocks of about
// blockBytes (one commit each, the point a job resumes from when its
// replica dies).
type exportConfig struct {
	fileResources int
	blockBytes    int
}

func (c *exportConfig) register(fs *flag.FlagSet) {
	fs.IntVar(&c.fileResources, "export-file-resources", bulk.DefaultFileResources, "Bulk Data export: most resources in one output file")
	fs.IntVar(&c.blockBytes, "export-block-bytes", bulk.DefaultBlockBytes, "Bulk Data export: an output file is written to the store in blocks of about this many bytes, one commit each; a job whose replica dies resumes after its last block")
}

// startExport runs Bulk Data exports on this replica: its own jobs, and
// those of a replica that died (each job under a store lease). stop ends
// the runners (their jobs stay in the store for a takeover).
func startExport(st *store.Store, decider *policy.Decider, rec *audit.Recorder, c exportConfig, log *slog.Logger) (x *bulk.Exporter, stop func()) {
	x = bulk.New(bulk.Config{Store: st, Types: search.ResourceTypes(), Decide: rest.ExportDecider(decider),
		Audit: rec, Holder: store.NewHolderID("export-"), Logger: log,
		FileResources: c.fileResources, BlockBytes: c.blockBytes})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); x.Run(ctx) }()
	return x, func() { cancel(); <-done }
}
