package store

import (
	"runtime"
	"strconv"
	"testing"
	"unsafe"
)

// TestReadCacheStaysWithinBudget: however many versions are read, the
// cache holds about its budget, not more (the Go heap that remains after
// a collection is what counts).
func TestReadCacheStaysWithinBudget(t *testing.T) {
	const budget = 8 << 20
	c := newReadCache(budget)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := range 100_000 {
		rec := make([]byte, 1600) // a version record as the engine hands it over
		c.put(Version{Type: "Patient", ID: strconv.Itoa(i), VID: 1, Body: rec[100:], Compartments: []string{"Patient/" + strconv.Itoa(i)}}, 0)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	held := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("%d MB held for a budget of %d MB", held>>20, budget>>20)
	if held > 2*budget {
		t.Errorf("the cache holds %d MB for a budget of %d MB", held>>20, budget>>20)
	}
	runtime.KeepAlive(c)
}

// TestReadCacheOwnsItsKeys: the type and id a reader passes may be views
// of a buffer the caller reuses (fiber's parameters are); the cache keeps
// copies, so the entry stays findable, evictable and correct.
func TestReadCacheOwnsItsKeys(t *testing.T) {
	c := newReadCache(1 << 20)
	buf := []byte("DiagnosticReport/r1")
	typ, id := unsafe.String(&buf[0], 16), unsafe.String(&buf[17], 2)
	_, epoch, _ := c.get(typ, id)
	c.put(Version{Type: typ, ID: id, VID: 1, Body: []byte(`{}`)}, epoch)
	copy(buf, "Patientment/r1/x") // the next request
	v, _, ok := c.get("DiagnosticReport", "r1")
	if !ok {
		t.Fatal("the entry is lost once the caller's buffer changes")
	}
	if v.Type != "DiagnosticReport" || v.ID != "r1" {
		t.Fatalf("the cached version reads %s/%s", v.Type, v.ID)
	}
	c.drop([]Write{{New: Version{Type: "DiagnosticReport", ID: "r1"}}})
	if _, _, ok := c.get("DiagnosticReport", "r1"); ok {
		t.Fatal("drop did not remove the entry")
	}
	for i := range c.shards {
		if n := len(c.shards[i].m); n != 0 || c.shards[i].bytes != 0 {
			t.Fatalf("shard %d holds %d entries, %d bytes after the drop", i, n, c.shards[i].bytes)
		}
	}
}
