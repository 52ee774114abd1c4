package pebble

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/fhirgate/fhirgate/store"
)

// TestFilesArePrivate: every file of the store is 0600 and every
// directory 0700, whatever the umask (issue 14: store files were 0644).
func TestFilesArePrivate(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "store")
	db, err := New(ctx, Config{Dir: dir, CacheBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 100; i++ {
		var b store.Batch
		b.Set([]byte{byte(i)}, make([]byte, 1000))
		if err := db.Apply(ctx, &b); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.db.Flush(); err != nil { // an sstable too
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	n := 0
	filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		info, _ := d.Info()
		want := fs.FileMode(0o600)
		if d.IsDir() {
			want = 0o700
		}
		if got := info.Mode().Perm(); got != want {
			t.Errorf("%s: mode %o, want %o", path, got, want)
		}
		n++
		return nil
	})
	if n < 5 {
		t.Fatalf("only %d entries in %s", n, dir)
	}
	if _, err := os.Stat(filepath.Join(dir, "LOCK")); err != nil {
		t.Fatal(err)
	}
}
