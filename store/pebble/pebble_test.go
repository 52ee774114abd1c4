package pebble

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/fhirgate/fhirgate/store"
	"github.com/fhirgate/fhirgate/store/storetest"
)

func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Engine {
		db, err := New(context.Background(), Config{Dir: t.TempDir(), CacheBytes: 8 << 20})
		if err != nil {
			t.Fatal(err)
		}
		return db
	})
}

func TestReopenKeepsLogSize(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db, err := New(ctx, Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if err := db.Apply(ctx, &store.Batch{Appends: []store.Append{{Data: []byte{byte(i)}}}}); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	db, err = New(ctx, Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Apply(ctx, &store.Batch{Appends: []store.Append{{Data: []byte{9}}}}); err != nil {
		t.Fatal(err)
	}
	v, err := db.Get(ctx, store.LogKey(3))
	if err != nil || len(v) != 1 || v[0] != 9 {
		t.Fatalf("entry after reopen landed at the wrong index: %v %v", v, err)
	}
}

// syncCounter counts syncs of write-ahead log files.
type syncCounter struct {
	vfs.FS
	n *atomic.Int64
}

func (c syncCounter) wrap(f vfs.File, name string, err error) (vfs.File, error) {
	if err != nil || !strings.HasSuffix(name, ".log") {
		return f, err
	}
	return countedFile{f, c.n}, nil
}

func (c syncCounter) Create(name string, cat vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := c.FS.Create(name, cat)
	return c.wrap(f, name, err)
}

func (c syncCounter) ReuseForWrite(old, name string, cat vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := c.FS.ReuseForWrite(old, name, cat)
	return c.wrap(f, name, err)
}

type countedFile struct {
	vfs.File
	n *atomic.Int64
}

func (f countedFile) Sync() error     { f.n.Add(1); return f.File.Sync() }
func (f countedFile) SyncData() error { f.n.Add(1); return f.File.SyncData() }

// TestApplySyncsTheLog proves each acknowledged commit reached stable
// storage: a kill -9 test cannot, since the page cache survives a process
// crash. Concurrent commits share syncs (group commit).
func TestApplySyncsTheLog(t *testing.T) {
	ctx := context.Background()
	var syncs atomic.Int64
	db, err := New(ctx, Config{Dir: t.TempDir(), fs: syncCounter{vfs.Default, &syncs}})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	start := syncs.Load()
	const n = 20
	for i := 0; i < n; i++ {
		var b store.Batch
		b.Set([]byte{byte(i)}, []byte("v"))
		if i%2 == 0 {
			b.Require([]byte("absent"), nil) // the conditional path syncs too
		}
		if err := db.Apply(ctx, &b); err != nil {
			t.Fatal(err)
		}
	}
	if got := syncs.Load() - start; got < n {
		t.Fatalf("%d sequential commits synced the log %d times", n, got)
	}
	start = syncs.Load()
	var wg sync.WaitGroup
	for i := 0; i < 64; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			var b store.Batch
			b.Require([]byte("absent"), nil)
			b.Set([]byte{1, byte(i)}, []byte("v"))
			if err := db.Apply(ctx, &b); err != nil {
				t.Error(err)
			}
		}(i)
	}
	wg.Wait()
	t.Logf("64 concurrent commits: %d log syncs", syncs.Load()-start)
}

// TestShared: a directory admits one process, so the pair is one DB seen
// twice, each side with its own Store and read cache (SharedView: the
// caches keep immutable versions only, as they must when another process
// commits too).
func TestShared(t *testing.T) {
	storetest.RunShared(t, func(t *testing.T) (store.Engine, store.Engine) {
		db, err := New(context.Background(), Config{Dir: t.TempDir(), CacheBytes: 8 << 20})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return storetest.SharedView(db), storetest.SharedView(db)
	})
}

// The in-process commit mutex is the only order a Pebble store needs
// because a second process cannot open the directory: the open is
// refused while the first holds it, and admitted once it closed.
func TestDirectoryAdmitsOneProcess(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	first, err := New(ctx, Config{Dir: dir, CacheBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if second, err := New(ctx, Config{Dir: dir, CacheBytes: 1 << 20}); err == nil {
		second.Close()
		first.Close()
		t.Fatal("a second handle opened a directory another holds")
	}
	first.Close()
	again, err := New(ctx, Config{Dir: dir, CacheBytes: 1 << 20})
	if err != nil {
		t.Fatalf("open after close: %v", err)
	}
	again.Close()
}
