package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
)

// FormatVersion is the version of the key layout and record encodings
// this code reads and writes (tessera's compatibilityVersion). Raise it
// when a change makes data written by the new code unreadable by the old
// (or the reverse), so that a gateway never serves or corrupts a store it
// does not understand.
//
// Format 2 adds two flag bits to the current and version records (what a
// write said of the unique names a version holds: Version.Holds). A
// format-1 gateway would decode and re-encode such a record without them,
// so its commits' conditions on the current record would never match: it
// must not run on a format-2 store. Format-1 data is format-2 data
// (records without the bits are HoldsUnknown), so a format-1 store is
// upgraded in place at open.
//
// Format 3 changes nothing in the records: it marks Redis keyspaces in
// store/redis's layout 2 (empty values kept only in the order set), which
// a format-2 gateway would read as missing keys and write beside. Its
// engine migrates the layout at open, before the stamp; Pebble stores
// are stamped too, so that one number keeps meaning one release line.
const FormatVersion = 3

// formatKey holds the store's format version, in decimal.
var formatKey = []byte{tagMeta, 'f', 'o', 'r', 'm', 'a', 't'}

// ErrFormat: the store was written in a format this code does not know.
var ErrFormat = errors.New("unknown store format")

// CheckFormat is called at every open of an engine: on a store without a
// format version (new, or written before versions existed: format 1) or
// in format 1 or 2 it writes FormatVersion; on one with another version it
// refuses with ErrFormat, naming both versions. Concurrent first opens (several
// replicas on one new Redis) agree: the write is conditional.
func CheckFormat(ctx context.Context, e Engine) error {
	for range 3 {
		b, err := e.Get(ctx, formatKey)
		if errors.Is(err, ErrNotFound) || err == nil && (string(b) == "1" || string(b) == "2") {
			// New, or format 1 or 2: stamp (upgrade to) this format.
			batch := Batch{}
			batch.Require(formatKey, b)
			batch.Set(formatKey, []byte(strconv.Itoa(FormatVersion)))
			err = e.Apply(ctx, &batch)
			if errors.Is(err, ErrConflict) {
				continue // another process wrote it first: read it
			}
			if err != nil {
				return fmt.Errorf("store: write format version: %w", err)
			}
			return nil
		}
		if err != nil {
			return fmt.Errorf("store: read format version: %w", err)
		}
		return checkFormat(b)
	}
	return fmt.Errorf("store: format version keeps changing under us")
}

func checkFormat(b []byte) error {
	v, err := strconv.Atoi(string(b))
	switch {
	case err != nil || v <= 0:
		return fmt.Errorf("%w: the store's format version reads %q; is this a fhirgate store?", ErrFormat, b)
	case v > FormatVersion:
		return fmt.Errorf("%w: the store is in format %d, newer than this gateway's %d: run a gateway release that reads format %d", ErrFormat, v, FormatVersion, v)
	case v < FormatVersion:
		return fmt.Errorf("%w: the store is in format %d, older than this gateway's %d, and no migration exists", ErrFormat, v, FormatVersion)
	}
	return nil
}
