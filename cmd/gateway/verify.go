package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/fhirgate/fhirgate/anchor"
	"github.com/fhirgate/fhirgate/anchor/ethanchor"
)

// verifyCmd checks a proof offline against any Ethereum node, trusting
// nothing from the gateway: the leaf, the inclusion path, and the root the
// AuditAnchor contract holds for the proof's tree size. A proof whose
// content is withheld (a regulator's, fhirgate-proof-v2) is checked from
// its leaf hash: it proves that entry is anchored, not which version it
// is. Exit 0: valid; 1: invalid or not verifiable (the reason is
// printed); 2: usage (resource bytes with a withheld proof, too).
func verifyCmd(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("verify", stderr)
	rpc := fs.String("rpc", "", "Ethereum JSON-RPC URL of a node you trust (required)")
	proofPath := fs.String("proof", "", "the proof JSON from $proof (required)")
	resPath := fs.String("resource", "", "optional: the resource bytes (a plain GET of the version), checked against the leaf (full proofs only)")
	contract := fs.String("contract", "", "optional: the AuditAnchor address you expect (default: the one the proof names)")
	timeout := fs.Duration("timeout", 30*time.Second, "how long to wait for the node")
	if err := parse(fs, args); err != nil {
		fmt.Fprintf(stderr, "gateway verify: %v\n", err)
		return 2
	}
	if *rpc == "" || *proofPath == "" {
		fmt.Fprintln(stderr, "gateway verify: --rpc and --proof are required")
		return 2
	}
	raw, err := os.ReadFile(*proofPath)
	if err != nil {
		fmt.Fprintf(stderr, "gateway verify: %v\n", err)
		return 2
	}
	var resource []byte
	if *resPath != "" {
		if resource, err = os.ReadFile(*resPath); err != nil {
			fmt.Fprintf(stderr, "gateway verify: %v\n", err)
			return 2
		}
	}
	var opts []ethanchor.VerifyOption
	if *contract != "" {
		if !common.IsHexAddress(*contract) {
			fmt.Fprintf(stderr, "gateway verify: --contract %q is not an address\n", *contract)
			return 2
		}
		opts = append(opts, ethanchor.WithContract(common.HexToAddress(*contract)))
	}
	p, err := anchor.ParseProof(raw)
	if err != nil {
		fmt.Fprintf(stdout, "INVALID: %v\n", err)
		return 1
	}
	if p.ContentWithheld && resource != nil {
		fmt.Fprintln(stderr, "gateway verify: this proof withholds the leaf's salt and content hash (it was issued to someone who may not read the version): --resource cannot be checked against it; leave it out, or ask for the proof as someone who may read the version")
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	err = ethanchor.VerifyOnChain(ctx, *rpc, p, resource, opts...)
	switch {
	case err == nil && p.ContentWithheld:
		fmt.Fprintf(stdout, "VALID: leaf hash %s is leaf %d of the tree of size %d whose root is anchored on chain %d (contract %s)\n",
			p.LeafHash, p.LeafIndex, p.TreeSize, p.Checkpoint.ChainID, p.Checkpoint.Contract)
		fmt.Fprintf(stdout, "(the proof withholds the salt and content hash: that this leaf is %s/%s/_history/%s is the gateway's statement, which the salt and hash, known to those who may read the version, would prove)\n",
			p.Leaf.Type, p.Leaf.ID, p.Leaf.VersionID)
		return 0
	case err == nil:
		fmt.Fprintf(stdout, "VALID: %s/%s/_history/%s is leaf %d of the tree of size %d whose root is anchored on chain %d (contract %s)\n",
			p.Leaf.Type, p.Leaf.ID, p.Leaf.VersionID, p.LeafIndex, p.TreeSize, p.Checkpoint.ChainID, p.Checkpoint.Contract)
		if resource == nil {
			fmt.Fprintln(stdout, "(the resource bytes were not checked: pass --resource to check them too)")
		}
		return 0
	case errors.Is(err, anchor.ErrInvalid):
		fmt.Fprintf(stdout, "INVALID: %v\n", err)
	default:
		fmt.Fprintf(stdout, "NOT VERIFIED: %v\n", err)
	}
	return 1
}
