// Package search is the FHIR R4 search parameter registry and the index
// value extraction run on every write.
//
// The tables (params_gen.go, compartments_gen.go, types_gen.go) are
// generated from the official R4 definitions in ../shared/spec/r4, which
// stay outside the repository; regenerate them with go generate.
// Extraction evaluates each parameter's FHIRPath expression with a small
// evaluator (internal/fhirpath) and turns the selected elements into
// store.IndexValues following the R4 search rules for each parameter type.
package search

//go:generate go run ./internal/gen -spec ../../../shared/spec/r4 -out .
