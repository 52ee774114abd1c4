package main

import "github.com/fhirgate/fhirgate/fhir/search"

// indexer computes the search index values of every written resource.
var indexer = search.Extract
