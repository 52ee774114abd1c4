package main

import (
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
)

// privateDataDir keeps the data directory to the gateway's own user:
// everything created from now on is 0600 (files) and 0700 (directories),
// whoever creates it (Pebble, go-ethereum's chain database, the keys), and
// what an earlier version left readable by others is tightened, the
// directory itself included. The store holds health records and the
// directory signing and chain keys: no other local user has any business
// reading them.
func privateDataDir(dir string, log *slog.Logger) error {
	restrictUmask()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	loosened := 0
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type()&fs.ModeSymlink != 0 {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		want := fs.FileMode(0o600)
		if d.IsDir() {
			want = 0o700
		}
		if perm := info.Mode().Perm(); perm&^want != 0 {
			loosened++
			return os.Chmod(path, perm&want)
		}
		return nil
	})
	if loosened > 0 {
		log.Warn("data directory: made files and directories private to the gateway's user", "dir", dir, "changed", loosened)
	}
	return err
}
