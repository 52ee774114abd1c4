package ethanchor_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/fhirgate/fhirgate/anchor"
	"github.com/fhirgate/fhirgate/anchor/ethanchor"
	"github.com/fhirgate/fhirgate/chain"
	"github.com/fhirgate/fhirgate/store"
)

// Wiring `gateway serve`: deploy (once per chain) and run the anchored log
// next to the REST server.
func Example_serve() {
	ctx := context.Background()
	var (
		st     *store.Store  // the gateway's store
		sender *chain.Sender // the gateway's one Sender for its key
		book   *chain.Deployments
	)
	dep, err := ethanchor.Deploy(ctx, sender, book) // or a configured address
	if err != nil {
		panic(err)
	}
	a, err := ethanchor.New(ctx, ethanchor.Config{Sender: sender, Contract: dep.Address, FromBlock: dep.Block})
	if err != nil {
		panic(err)
	}
	defer a.Close() // after the Log stopped
	l, err := anchor.Open(ctx, anchor.Config{Store: st, Anchorer: a, Interval: 5 * time.Second})
	if err != nil {
		panic(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	go l.Run(runCtx)

	// GET /fhir/Patient/123/_history/2/$proof
	p, err := l.ProofFor(ctx, "Patient", "123", 2)
	switch {
	case errors.Is(err, store.ErrNotFound): // 404
	case errors.Is(err, anchor.ErrNotAnchored):
		d, _ := anchor.RetryAfter(err) // 202, Retry-After: d seconds
		_ = d
	case err == nil: // 200, json.Marshal(p)
		_ = p
	}
	// GET /fhir/Patient/123/$verify: one OperationOutcome issue per check.
	checks, _ := l.VerifyResource(ctx, "Patient", "123")
	for _, c := range checks {
		fmt.Println(c.Severity(), c.Message())
	}
	// GET /anchor/checkpoints?after=N&limit=M and /anchor/consistency?from=N&to=M
	_, _ = l.Checkpoints(ctx, anchor.CheckpointQuery{After: 0, Limit: 100})
	_, _ = l.Consistency(ctx, 10, 20)
}

// Wiring `gateway verify --rpc URL --proof proof.json [--resource body.json]`.
func Example_verify() {
	ctx := context.Background()
	data, _ := os.ReadFile("proof.json")
	p, err := anchor.ParseProof(data)
	if err != nil {
		fmt.Println("invalid:", err) // exit 1 (or 2 if the file is unreadable)
		return
	}
	var resource []byte // nil unless --resource
	err = ethanchor.VerifyOnChain(ctx, "https://rpc.example", p, resource,
		ethanchor.WithContract(common.HexToAddress("0x5FbDB2315678afecb367f032d93F642f64180aa3"))) // optional --contract
	switch {
	case err == nil:
		fmt.Println("valid") // exit 0
	case errors.Is(err, anchor.ErrInvalid):
		fmt.Println("invalid:", err) // exit 1
	default:
		fmt.Println("could not verify:", err) // node unreachable, other chain: exit 1
	}
}
