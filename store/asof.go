package store

import (
	"bytes"
	"context"
	"time"
)

// asOfBatch is how many version records one engine scan of EachAsOf reads
// before their versions are handed to fn (outside the scan, so that fn
// may use the engine; a network engine does not hold a scan open).
const asOfBatch = 1024

// EachAsOf calls fn, in id order, with each resource of typ as it stood
// at asOf: its latest version with LastUpdated <= asOf (with its body; a
// delete tombstone when it was deleted then; fn skips those). Resources
// created after asOf are left out. Only ids that sort after after are
// visited ("" for all), so that a caller that stopped can resume after
// the last id it handled. v.Body is valid only during fn (copy what is
// kept). It is one sequential scan of the type's version
// records (bulk export reads a whole type this way): the memory it holds
// is one batch of records, whatever the size of the type. A type kept by
// another component (Virtual) has nothing to visit here.
func (s *Store) EachAsOf(ctx context.Context, typ, after string, asOf time.Time, fn func(*Version) error) error {
	if s.virtual(typ) != nil {
		return nil
	}
	p := newKey(tagVersion, len(typ)+2).str(typ)
	r := PrefixRange(p)
	if after != "" {
		// Past every version of after: its prefix's end.
		r.Start = PrefixEnd(p.frozen().str(after))
	}
	limit := asOfBatch
	at := asOf.UnixMicro()
	var (
		held    Version // the latest version of the current id so far
		holding bool
		out     []Version
		// The records of a batch are copied into one arena reused from
		// batch to batch: no allocation per record for bodies.
		arena []byte
	)
	for {
		out = out[:0]
		arena = arena[:0]
		var last []byte
		var bad error
		n := 0
		err := scanCtx(ctx, s.e, Range{Start: r.Start, End: r.End, Limit: limit}, func(k, val []byte) bool {
			n++
			last = append(last[:0], k...)
			id, rest, ok := readStr(k[len(p):])
			var vid uint64
			if ok {
				vid, _, ok = readU64(rest)
			}
			ts, err := versionMicros(val)
			if !ok || err != nil {
				bad = errCorrupt
				return false
			}
			if holding && held.ID != id {
				out = append(out, held)
				holding = false
			}
			if ts > at {
				return true // a later version (or the resource's first is later)
			}
			at := len(arena)
			arena = append(arena, val...)
			v, err := decodeVersion(typ, id, vid, arena[at:len(arena):len(arena)])
			if err != nil {
				bad = err
				return false
			}
			held, holding = v, true
			return true
		})
		if err == nil {
			err = bad
		}
		if err != nil {
			return err
		}
		if holding {
			held.Body = bytes.Clone(held.Body) // it may outlive the arena's batch
		}
		for i := range out {
			if err := fn(&out[i]); err != nil {
				return err
			}
		}
		if n < limit {
			if holding {
				return fn(&held)
			}
			return nil
		}
		r.Start = append(last, 0) // the next key after last
	}
}

// IsVirtual reports whether typ is kept by another component (Options.
// Virtual), not by the store's own records.
func (s *Store) IsVirtual(typ string) bool { return s.virtual(typ) != nil }
