package store

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// testRecord is a journal entry holding its label.
type testRecord string

func (r testRecord) Index(time.Time) []IndexValue { return nil }
func (r testRecord) JSON(id string, _ time.Time) []byte {
	return fmt.Appendf(nil, `{"id":%q,"label":%q}`, id, string(r))
}

type testEntries []string

func (es testEntries) Len() int { return len(es) }
func (es testEntries) Entry(i int, id string, _ time.Time, rec []byte, ref func(byte, string)) ([]byte, []byte) {
	ref('x', "all")
	return append(rec, es[i]...), []byte(id)
}

var testJournal = JournalConfig{
	Name: "test-journal", Type: "AuditEvent", Author: "test", IDPrefix: "ae-",
	Decode:       func(rec []byte) (JournalRecord, error) { return testRecord(rec), nil },
	Compartments: func(string, []IndexValue) []string { return nil },
	Families:     map[string]byte{"entity": 'x'},
}

func TestJournalIDs(t *testing.T) {
	j := &Journal{cfg: testJournal}
	for _, p := range []jpos{{0, 0}, {1, 0}, {0xabcdef, 0}, {1_763_700_000_000_000, 0}, {1 << 62, 0},
		{1, 1}, {1_763_700_000_000_000, 0x0123456789abcdef}, {1 << 62, math.MaxUint64}} {
		id := j.id(p)
		want := "ae-" + fmt.Sprintf("%016x", uint64(p.t))
		if p.w != 0 {
			want += fmt.Sprintf("%016x", p.w)
		}
		if id != want {
			t.Fatalf("id(%v) = %s, want %s", p, id, want)
		}
		if got, ok := j.parseID(id); !ok || got != p {
			t.Fatalf("parseID(%s) = %v, %v", id, got, ok)
		}
	}
	for _, bad := range []string{"ae-", "ae-123", "ae-0000000000000001" + "0000000000000000", "ae-000000000000000g",
		"ae-0000000000000001+000000000000001", "ae-4000000000000001", "x-0000000000000001"} {
		if p, ok := j.parseID(bad); ok {
			t.Errorf("parseID(%s) = %v, want refused", bad, p)
		}
	}
	// Ids and keys sort as positions do.
	ps := []jpos{{5, 0}, {5, 1}, {5, 0xff}, {5, math.MaxUint64}, {6, 0}, {6, 2}}
	for i := 1; i < len(ps); i++ {
		if !(j.id(ps[i-1]) < j.id(ps[i])) || ps[i-1].cmp(ps[i]) >= 0 {
			t.Errorf("%v, %v: ids or positions out of order", ps[i-1], ps[i])
		}
		if bytes.Compare(posKey(nil, ps[i-1]), posKey(nil, ps[i])) >= 0 {
			t.Errorf("keys of %v, %v out of order", ps[i-1], ps[i])
		}
		if n := ps[i-1].next(); n.cmp(ps[i]) > 0 || n.prev() != ps[i-1] {
			t.Errorf("next/prev of %v", ps[i-1])
		}
	}
}

// JournalOverlapTest: entries of a legacy journal (segments spanning
// minutes) and of three writers whose segments overlap (equal times) in
// db are scanned from any span, either way, by the segments and by an
// index family, in (time, writer) order, each once. (Exported for the
// external test that runs it on real engines.)
func JournalOverlapTest(t *testing.T, db Engine) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(3, 9))
	legacy, err := OpenJournal(ctx, db, testJournal)
	if err != nil {
		t.Fatal(err)
	}
	legacy.SetWriter(0)
	clock := time.Date(2026, 11, 1, 8, 0, 0, 0, time.UTC).UnixMicro()
	n := 0
	label := func() string { n++; return fmt.Sprint("e", n) }
	for range 3 {
		k := 1 + rng.IntN(200)
		es, ts := make(testEntries, k), make([]int64, k)
		for i := range es {
			clock += 1 + rng.Int64N(3)*rng.Int64N(90)*int64(time.Minute/time.Microsecond)
			es[i], ts[i] = label(), clock
		}
		if err := legacy.AppendAt(ctx, es, ts); err != nil {
			t.Fatal(err)
		}
	}
	var js []*Journal
	for i := range 3 {
		j, err := OpenJournal(ctx, db, testJournal)
		if err != nil {
			t.Fatal(err)
		}
		lag := int64(i/2) * 50
		j.Now = func() time.Time { return time.UnixMicro(clock - lag) }
		js = append(js, j)
	}
	for range 12 {
		if rng.IntN(3) == 0 {
			clock += rng.Int64N(2) * rng.Int64N(1000)
		}
		es := make(testEntries, 1+rng.IntN(300))
		for i := range es {
			es[i] = label()
		}
		if err := js[rng.IntN(3)].Append(ctx, es); err != nil {
			t.Fatal(err)
		}
	}
	var all []jpos
	labels := map[string]bool{}
	if err := js[0].scan(ctx, everything, false, nil, func(f *jfound) (bool, error) {
		all = append(all, f.p)
		labels[string(f.rec.(testRecord))] = true
		return true, nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(all) != n || len(labels) != n {
		t.Fatalf("%d entries scanned (%d distinct), wrote %d", len(all), len(labels), n)
	}
	ties := 0
	for i := 1; i < len(all); i++ {
		if all[i-1].cmp(all[i]) >= 0 {
			t.Fatalf("entries %d, %d out of order: %v, %v", i-1, i, all[i-1], all[i])
		}
		if all[i-1].t == all[i].t {
			ties++
		}
	}
	if ties < 100 {
		t.Fatalf("only %d ties: the writers' segments do not overlap", ties)
	}
	spanOf := func(a, b int) span { return span{all[a], all[b]} }
	spans := []span{everything, spanOf(0, n-1), spanOf(n/3, n/3+1), timeSpan(all[n/2].t, all[n/2].t)}
	for range 60 {
		a, b := rng.IntN(n), rng.IntN(n)
		lo, hi := all[min(a, b)], all[max(a, b)]
		if rng.IntN(2) == 0 {
			lo = lo.next()
		}
		if rng.IntN(2) == 0 {
			hi = jpos{hi.t, 0}
		}
		spans = append(spans, span{lo, hi})
	}
	for _, sp := range spans {
		var want []jpos
		for _, p := range all {
			if p.cmp(sp.lo) >= 0 && p.cmp(sp.hi) <= 0 {
				want = append(want, p)
			}
		}
		for _, drv := range []*driver{nil, {fam: 'x', refs: []string{"all"}}} {
			for _, desc := range []bool{false, true} {
				var got []jpos
				if err := js[2].scan(ctx, sp, desc, drv, func(f *jfound) (bool, error) {
					got = append(got, f.p)
					return true, nil
				}); err != nil {
					t.Fatal(err)
				}
				if desc {
					slices.Reverse(got)
				}
				if !slices.Equal(got, want) {
					t.Fatalf("scan %v desc=%v driver=%v: %d entries, want %d", sp, desc, drv != nil, len(got), len(want))
				}
			}
		}
	}
	// Every entry reads back by id from another writer, at a leaf of its own.
	seen := map[uint64]bool{}
	for _, p := range all {
		id := js[0].id(p)
		v, err := js[1].Read(ctx, id)
		if err != nil || v.ID != id {
			t.Fatalf("read %s: %v %v", id, v.ID, err)
		}
		i, err := js[2].LeafIndex(ctx, id, 1)
		if err != nil || seen[i] {
			t.Fatalf("leaf of %s: %d %v (seen %v)", id, i, err, seen[i])
		}
		seen[i] = true
	}
}
