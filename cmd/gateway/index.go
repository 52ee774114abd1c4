package main

import (
	"github.com/fhirgate/fhirgate/fhir/search"
	"github.com/fhirgate/fhirgate/store"
)

// indexer computes the search index values of every written resource.
var indexer = search.Extract

// shared names the parameters whose references the store keeps under
// another parameter's keys (a store written with it must be read with it:
// serve and reindex both use it).
var shared store.SharedFunc = search.Shared
