// Command gen writes the FHIR R4 search parameter, compartment and
// resource type tables of package search from the official definitions:
//
//	go run ./internal/gen [-spec ../../../shared/spec/r4] [-out .]
//
// The definitions are third-party files and stay outside the repository;
// only the generated Go tables (facts of the standard) are committed.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
)

func main() {
	spec := flag.String("spec", "../../../shared/spec/r4", "folder holding search-parameters.json and the compartment definitions")
	out := flag.String("out", ".", "folder to write the generated files into")
	flag.Parse()
	files, err := generate(*spec)
	if err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
	for name, src := range files {
		if err := os.WriteFile(filepath.Join(*out, name), src, 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "gen:", err)
			os.Exit(1)
		}
	}
}
