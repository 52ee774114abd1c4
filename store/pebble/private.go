package pebble

import (
	"io"
	"os"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// privateFS is the disk as Pebble sees it, with every file it creates
// readable by the process's user only (0600) and every directory 0700:
// the store holds health records. (Pebble's own default is 0666 and 0755
// before the umask.) The gateway also sets its umask; this holds for any
// program that opens a store.
type privateFS struct{ vfs.FS }

func (fs privateFS) Create(name string, category vfs.DiskWriteCategory) (vfs.File, error) {
	return private[vfs.File](name)(fs.FS.Create(name, category))
}

func (fs privateFS) OpenReadWrite(name string, category vfs.DiskWriteCategory, opts ...vfs.OpenOption) (vfs.File, error) {
	return private[vfs.File](name)(fs.FS.OpenReadWrite(name, category, opts...))
}

func (fs privateFS) ReuseForWrite(oldname, newname string, category vfs.DiskWriteCategory) (vfs.File, error) {
	return private[vfs.File](newname)(fs.FS.ReuseForWrite(oldname, newname, category))
}

func (fs privateFS) Lock(name string) (io.Closer, error) {
	return private[io.Closer](name)(fs.FS.Lock(name))
}

func (fs privateFS) MkdirAll(dir string, _ os.FileMode) error {
	if err := fs.FS.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	return os.Chmod(dir, 0o700)
}

// private returns a function that makes name 0600 once it was opened
// without error (and closes it if that fails).
func private[F io.Closer](name string) func(F, error) (F, error) {
	return func(f F, err error) (F, error) {
		if err != nil {
			return f, err
		}
		if err := os.Chmod(name, 0o600); err != nil {
			f.Close()
			var zero F
			return zero, err
		}
		return f, nil
	}
}
