package redis

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/fhirgate/fhirgate/internal/redistest"
	"github.com/fhirgate/fhirgate/store"
)

// counter counts commands sent to Redis: one per command, one per
// pipeline (a round trip either way).
type counter struct{ n atomic.Int64 }

func (c *counter) DialHook(next goredis.DialHook) goredis.DialHook { return next }
func (c *counter) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error { c.n.Add(1); return next(ctx, cmd) }
}
func (c *counter) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []goredis.Cmder) error { c.n.Add(1); return next(ctx, cmds) }
}

// recorder keeps the last batch applied (its size is a create's).
type recorder struct {
	*DB
	last store.Batch
}

func (r *recorder) Apply(ctx context.Context, b *store.Batch) error {
	r.last = *b
	return r.DB.Apply(ctx, b)
}

// patient is a create as the gateway makes it: a Patient with the index
// values of a typical record and an audit leaf.
func patient(i int) store.Write {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	s := func(p, t string) store.IndexValue {
		return store.IndexValue{Param: p, Kind: store.IndexString, Text: t}
	}
	tk := func(p, sys, code string) store.IndexValue {
		return store.IndexValue{Param: p, Kind: store.IndexToken, System: sys, Code: code}
	}
	id := fmt.Sprintf("p%06d", i)
	day := at.AddDate(-40, 0, i%365).Truncate(24 * time.Hour).UnixMicro()
	return store.Write{
		New: store.Version{Type: "Patient", ID: id, VID: 1, LastUpdated: at, Method: store.MethodCreate, Author: "client/bench",
			Compartments: []string{"Patient/" + id}, Body: []byte(strings.Repeat("x", 1200))},
		Index: []store.IndexValue{
			s("family", fmt.Sprintf("Family%d", i%500)), s("given", "Anne"), s("given", "Marie"), s("name", fmt.Sprintf("Family%d", i%500)),
			s("name", "Anne"), s("name", "Marie"), s("address", "1 Main St"), s("address-city", "Springfield"),
			s("address-postalcode", "12345"), s("phone", "555-0100"),
			tk("gender", "http://hl7.org/fhir/administrative-gender", "female"),
			tk("identifier", "urn:mrn", fmt.Sprint(i)), tk("active", "", "true"),
			{Param: "birthdate", Kind: store.IndexDate, Lo: day, Hi: day + 86_400_000_000 - 1},
			{Param: "general-practitioner", Kind: store.IndexReference, Ref: "Practitioner/d1"},
		},
		Leaf: []byte(strings.Repeat("l", 64)),
	}
}

// TestRoundTrips measures the Redis round trips of a create, a read (on
// a fresh replica and on one whose cache holds the version) and a search
// by name, and the size of a create's commit. It checks the commit is one
// round trip.
//
//	go test -count=1 -run TestRoundTrips -v ./store/redis
func TestRoundTrips(t *testing.T) {
	ctx := context.Background()
	srv := redistest.Start(t)
	prefix := redistest.Prefix(t)
	db := open(t, srv, prefix)
	defer db.Close()
	var c counter
	db.Client().AddHook(&c)
	rec := &recorder{DB: db}
	s := store.New(rec, store.Options{})
	count := func(f func()) int64 {
		n := c.n.Load()
		f()
		return c.n.Load() - n
	}
	for i := range 200 { // also loads the script
		if err := s.Commit(ctx, []store.Write{patient(i)}); err != nil {
			t.Fatal(err)
		}
	}
	create := count(func() {
		if err := s.Commit(ctx, []store.Write{patient(1000)}); err != nil {
			t.Fatal(err)
		}
	})
	b := rec.last
	keys, bytes := len(b.Conds)+len(b.Ops)+len(b.Appends), 0
	for _, op := range b.Ops {
		bytes += len(op.Key) + len(op.Value)
	}
	other := store.New(db, store.Options{}) // another replica: empty cache
	readCold := count(func() {
		if _, err := other.Read(ctx, "Patient", "p001000"); err != nil {
			t.Fatal(err)
		}
	})
	readWarm := count(func() {
		if _, err := other.Read(ctx, "Patient", "p001000"); err != nil {
			t.Fatal(err)
		}
	})
	q := store.Query{Type: "Patient", Count: 10, Clauses: []store.Clause{{Preds: []store.Pred{{Op: store.OpStringStarts, Param: "family", Text: "family7"}}}}}
	var found int
	search := count(func() {
		page, err := other.Search(ctx, &q)
		if err != nil {
			t.Fatal(err)
		}
		found = len(page.IDs)
	})
	t.Logf("create: %d round trips (commit of %d conditions, %d ops, %d appends = %d, %d bytes of ops)", create, len(b.Conds), len(b.Ops), len(b.Appends), keys, bytes)
	t.Logf("read: %d round trips on a cold cache, %d with the version cached", readCold, readWarm)
	t.Logf("search family:starts=family7 (%d of 201 match, page of 10): %d round trips", found, search)
	if create != 1 {
		t.Errorf("a create took %d round trips, want 1 (the commit script)", create)
	}
	searchPage(t, ctx, db, &c)
	if readWarm != 1 {
		t.Errorf("a cached read took %d round trips, want 1 (the current pointer)", readWarm)
	}
}

// single hides the engine's GetMany: the store reads one key per Get,
// as it did before MultiGetter.
type single struct{ *DB }

func (single) GetMany() {} // not store.MultiGetter's signature

// searchPage counts the round trips of a search as the gateway makes it
// (25 matches, a page of 10, an access filter that reads every match's
// current record, the page's resources read then), one key per Get
// against GetMany: 37 against a handful (BENCHMARKS.md §8).
func searchPage(t *testing.T, ctx context.Context, db *DB, c *counter) {
	var ws []store.Write
	for i := range 25 {
		w := patient(5000 + i)
		w.Index[0].Text = "Searchme"
		ws = append(ws, w)
	}
	if err := store.New(db, store.Options{}).Commit(ctx, ws); err != nil {
		t.Fatal(err)
	}
	q := store.Query{Type: "Patient", Count: 10, Filter: func(v *store.Version) bool { return v.Creator == "client/bench" && len(v.Compartments) == 1 },
		Clauses: []store.Clause{{Preds: []store.Pred{{Op: store.OpStringStarts, Param: "family", Text: "searchme"}}}}}
	run := func(s *store.Store, many bool) (int64, int) {
		n := c.n.Load()
		page, err := s.Search(ctx, &q)
		if err != nil {
			t.Fatal(err)
		}
		var vs []store.Version
		if many {
			vs, err = s.ReadMany(ctx, "Patient", page.IDs)
		} else {
			for _, id := range page.IDs {
				v, err := s.Read(ctx, "Patient", id)
				if err != nil {
					t.Fatal(err)
				}
				vs = append(vs, v)
			}
		}
		if err != nil || len(vs) != 10 || page.Total != 25 {
			t.Fatalf("page of %d of %d: %v", len(vs), page.Total, err)
		}
		return c.n.Load() - n, page.Total
	}
	q.Total = true
	before := store.New(single{db}, store.Options{})
	run(before, false) // versions cached, as on a warm replica
	oneByOne, total := run(before, false)
	after := store.New(db, store.Options{})
	cold, _ := run(after, true)
	warm, _ := run(after, true)
	t.Logf("search family:starts=searchme with an access filter (%d match, page of 10) and its page read: %d round trips one key per Get (versions cached), %d with GetMany (%d with the versions not cached)", total, oneByOne, warm, cold)
	if oneByOne < 35 {
		t.Errorf("one key per Get took %d round trips, want 25+10+the scan", oneByOne)
	}
	if warm > 3 || cold > 4 {
		t.Errorf("with GetMany: %d round trips (cold cache %d), want at most 3 (4)", warm, cold)
	}
}

// BenchmarkCommitScript is Redis's own ceiling for our commit: the
// commit script at a create's size (the batch TestRoundTrips records: 1
// condition, the version, its current pointer, histories, index keys and
// list, a log append), from 64 concurrent clients, each commit fsynced
// (appendfsync always). It reports Redis's CPU (all its threads, from
// INFO cpu) and its used_memory growth per commit; the script's own time
// per call (commandstats) is logged. Group21 is a commit of 21 such
// creates, the shape of the AuditEvent group commit (about 21 events per
// commit under 64 clients, BENCHMARKS.md §8).
//
//	go test -run XXX -bench CommitScript -benchtime 5s ./store/redis
func BenchmarkCommitScript(b *testing.B) {
	benchCommit(b, []store.Write{patient(0)})
}

func BenchmarkCommitScriptGroup21(b *testing.B) {
	var ws []store.Write
	for i := range 21 {
		ws = append(ws, patient(i))
	}
	benchCommit(b, ws)
}

func benchCommit(b *testing.B, ws []store.Write) {
	ctx := context.Background()
	srv := redistest.Start(b)
	db, err := Open(ctx, Config{URL: srv.URL(), Prefix: redistest.Prefix(b), PoolSize: 64})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	rec := &recorder{DB: db}
	s := store.New(rec, store.Options{})
	if err := s.Commit(ctx, ws); err != nil {
		b.Fatal(err)
	}
	shape := rec.last
	cpu := func() float64 { // Redis's CPU seconds, all threads (INFO cpu)
		var sum float64
		for _, f := range []string{"used_cpu_sys", "used_cpu_user"} {
			v, _ := db.Info(ctx, "cpu", f)
			x, _ := strconv.ParseFloat(v, 64)
			sum += x
		}
		return sum
	}
	mem := func() float64 {
		v, _ := db.Info(ctx, "memory", "used_memory")
		x, _ := strconv.ParseFloat(v, 64)
		return x
	}
	cpu0, mem0 := cpu(), mem()
	var seq atomic.Int64
	b.SetParallelism(max(1, 64/runtimeProcs()))
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			n := seq.Add(1)
			tag := []byte(fmt.Sprintf("%09d", n))
			var bt store.Batch
			for _, c := range shape.Conds {
				bt.Conds = append(bt.Conds, store.Cond{Key: append(append([]byte{}, c.Key...), tag...), Absent: true})
			}
			for _, op := range shape.Ops {
				bt.Ops = append(bt.Ops, store.Op{Key: append(append([]byte{}, op.Key...), tag...), Value: op.Value})
			}
			for _, a := range shape.Appends {
				bt.Appends = append(bt.Appends, store.Append{Data: a.Data, IndexKey: append(append([]byte{}, a.IndexKey...), tag...)})
			}
			if err := db.Apply(ctx, &bt); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "commits/s")
	b.ReportMetric((cpu()-cpu0)*1e6/float64(b.N), "redis-cpu-µs/commit")
	b.ReportMetric((mem()-mem0)/float64(b.N), "redis-B/commit")
	b.ReportMetric(float64(len(shape.Conds)+len(shape.Ops)+len(shape.Appends)), "keys/commit")
	used, _ := db.Info(ctx, "memory", "used_memory")
	stat, _ := db.Info(ctx, "commandstats", "cmdstat_evalsha")
	b.Logf("%d commits: used_memory %s; evalsha %s", b.N+1, used, stat)
}
