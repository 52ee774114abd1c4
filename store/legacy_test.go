package store

import (
	"context"
	"sync/atomic"
)

// LegacyLayout wraps e so that the store's keys are written as earlier
// stores hold them: index entries as before commit 9f2a320 (a local
// reference also under an 'r' key, a narrow date also under an end ('e')
// key), and a version's log position under an 'l' key of its own rather
// than in its system history key. Searches must answer the same on such a
// store (the extra keys are read, never needed), later writes must remove
// them with the rest of a version's entries, and LeafIndex must find the
// old positions. Token keys are written as before the display text rode in
// the code key: the code key without it, the text under an 'x' key.
// (Exported for the external test that runs storetest over it.)
func LegacyLayout(e Engine) *LegacyEngine { return &LegacyEngine{Engine: e} }

// LegacyEngine is the Engine LegacyLayout returns.
type LegacyEngine struct {
	Engine
	added, leafKeys atomic.Int64
}

// Added is the number of legacy index keys written so far.
func (l *LegacyEngine) Added() int64 { return l.added.Load() }

// LeafKeys is the number of legacy 'l' keys written so far.
func (l *LegacyEngine) LeafKeys() int64 { return l.leafKeys.Load() }

func (l *LegacyEngine) Apply(ctx context.Context, b *Batch) error {
	nb := *b
	nb.Ops = nil
	nb.Appends = nil
	for _, a := range b.Appends {
		if len(a.IndexKey) > 0 && a.IndexKey[0] == tagSysHistory {
			nb.Ops = append(nb.Ops, Op{Key: a.IndexKey})
			a.IndexKey = legacyLeafKey(a.IndexKey)
			l.leafKeys.Add(1)
		}
		nb.Appends = append(nb.Appends, a)
	}
	for _, op := range b.Ops {
		if op.Delete || len(op.Key) == 0 {
			nb.Ops = append(nb.Ops, op)
			continue
		}
		switch op.Key[0] {
		case tagIndex:
			keep, extra := legacyKeys(op.Key)
			nb.Ops = append(nb.Ops, Op{Key: keep, Value: op.Value})
			for _, k := range extra {
				nb.Ops = append(nb.Ops, Op{Key: k})
				l.added.Add(1)
			}
		case tagIndexList:
			typ, rest, ok1 := readStr(op.Key[1:])
			id, _, ok2 := readStr(rest)
			if !ok1 || !ok2 {
				panic("legacy: bad list key")
			}
			prefix, suffix := indexKeyEnds(typ, id)
			var list []byte
			if err := eachIndexKey(op.Value, typ, id, func(k []byte) {
				keep, extra := legacyKeys(k)
				list = appendIndexKey(list, keep, len(prefix), len(suffix))
				for _, x := range extra {
					list = appendIndexKey(list, x, len(prefix), len(suffix))
				}
			}); err != nil {
				panic(err)
			}
			nb.Ops = append(nb.Ops, Op{Key: op.Key, Value: list})
		default:
			nb.Ops = append(nb.Ops, op)
		}
	}
	err := l.Engine.Apply(ctx, &nb)
	b.Stale = nb.Stale
	return err
}

// legacyLeafKey returns the 'l' key of the version whose system history
// key is h.
func legacyLeafKey(h []byte) []byte {
	_, rest, ok := readU64(h[1:])
	typ, rest, ok1 := readStr(rest)
	id, rest, ok2 := readStr(rest)
	vid, _, ok3 := readU64(rest)
	if !ok || !ok1 || !ok2 || !ok3 {
		panic("legacy: bad history key")
	}
	return leafIndexKey(typ, id, vid)
}

// legacyKeys returns the key the earlier layout wrote for index key k, and
// the keys it wrote besides.
func legacyKeys(k []byte) (keep []byte, extra [][]byte) {
	id, ok := keyID(k)
	typ, rest, ok1 := readStr(k[1:])
	param, rest, ok2 := readStr(rest)
	if !ok || !ok1 || !ok2 || len(rest) == 0 {
		panic("legacy: bad index key")
	}
	sub, body := rest[0], keyBody(k)[len(k)-len(rest)+1:]
	switch sub {
	case subToken:
		// A code key without its display; the display under an 'x' key.
		code, more, _ := readStr(body)
		system, more, _ := readStr(more)
		text, _, _ := readStr(more)
		keep = indexPrefix(typ, param, subToken).str(code).str(system).id(id)
		if text != "" {
			extra = [][]byte{indexPrefix(typ, param, subTokenTxt).str(text).id(id)}
		}
		return keep, extra
	case subRefID:
		rid, more, _ := readStr(body)
		t, _, _ := readStr(more)
		return k, [][]byte{indexPrefix(typ, param, subRef).str(t + "/" + rid).id(id)}
	case subDateLo:
		lo, hi := beU64(body), beU64(body[8:])
		if hi-lo <= narrowDate {
			return k, [][]byte{indexPrefix(typ, param, subDateHi).u64(hi).u64(lo).id(id)}
		}
	}
	return k, nil
}
