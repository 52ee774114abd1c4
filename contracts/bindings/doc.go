// Package bindings holds abigen v2 Go bindings for fhirgate's contracts,
// generated from the committed artifacts in ../artifacts (built by
// ../build.mjs). Do not edit the generated files: change the Solidity in
// ../src, then run ../check.sh (or node ../build.mjs && go generate).
package bindings

//go:generate go run github.com/ethereum/go-ethereum/cmd/abigen --v2 --pkg bindings --type AuditAnchor --abi ../artifacts/AuditAnchor.abi --bin ../artifacts/AuditAnchor.bin --out auditanchor.go
//go:generate go run github.com/ethereum/go-ethereum/cmd/abigen --v2 --pkg bindings --type ConsentRegistry --abi ../artifacts/ConsentRegistry.abi --bin ../artifacts/ConsentRegistry.bin --out consentregistry.go
