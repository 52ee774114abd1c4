package store

import (
	"context"
	"sync/atomic"
)

// LegacyLayout wraps e so that the store's index entries are written as
// stores written before commit 9f2a320 hold them: a local reference also under
// an 'r' key, and a narrow date also under an end ('e') key. Searches must
// answer the same on such a store (the extra keys are read, never needed),
// and later writes must remove them with the rest of a version's entries.
// (Exported for the external test that runs storetest over it.)
func LegacyLayout(e Engine) *LegacyEngine { return &LegacyEngine{Engine: e} }

// LegacyEngine is the Engine LegacyLayout returns.
type LegacyEngine struct {
	Engine
	added atomic.Int64
}

// Added is the number of legacy keys written so far.
func (l *LegacyEngine) Added() int64 { return l.added.Load() }

func (l *LegacyEngine) Apply(ctx context.Context, b *Batch) error {
	nb := *b
	nb.Ops = nil
	for _, op := range b.Ops {
		if op.Delete || len(op.Key) == 0 {
			nb.Ops = append(nb.Ops, op)
			continue
		}
		switch op.Key[0] {
		case tagIndex:
			nb.Ops = append(nb.Ops, op)
			for _, k := range legacyKeys(op.Key) {
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
				list = appendIndexKey(list, k, len(prefix), len(suffix))
				for _, x := range legacyKeys(k) {
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
	return l.Engine.Apply(ctx, &nb)
}

// legacyKeys returns the keys the earlier layout wrote besides index key k.
func legacyKeys(k []byte) [][]byte {
	id, ok := keyID(k)
	typ, rest, ok1 := readStr(k[1:])
	param, rest, ok2 := readStr(rest)
	if !ok || !ok1 || !ok2 || len(rest) == 0 {
		panic("legacy: bad index key")
	}
	sub, body := rest[0], keyBody(k)[len(k)-len(rest)+1:]
	switch sub {
	case subRefID:
		rid, more, _ := readStr(body)
		t, _, _ := readStr(more)
		return [][]byte{indexPrefix(typ, param, subRef).str(t + "/" + rid).id(id)}
	case subDateLo:
		lo, hi := beU64(body), beU64(body[8:])
		if hi-lo <= narrowDate {
			return [][]byte{indexPrefix(typ, param, subDateHi).u64(hi).u64(lo).id(id)}
		}
	}
	return nil
}
