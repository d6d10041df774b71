// Package atomicfile replaces small files whole: the content goes to a
// temporary file beside the target, which a rename then puts in its place,
// so a reader sees the old content or the new, never a mix.
package atomicfile

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// Write replaces path with data, mode perm. With durable, the data is
// synced before the rename and the directory after it, so the new content
// survives a crash once Write returns. The temporary file is named
// ".BASE-*.tmp" and is removed on failure.
func Write(path string, data []byte, perm os.FileMode, durable bool) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+"-*.tmp")
	if err != nil {
		return err
	}
	tmp := f.Name()
	err = fill(f, data, perm, durable)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	if durable {
		return SyncDir(dir)
	}
	return nil
}

func fill(f *os.File, data []byte, perm os.FileMode, durable bool) error {
	if err := f.Chmod(perm); err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		return err
	}
	if durable {
		return f.Sync()
	}
	return nil
}

// SyncDir makes the entries of dir durable. File systems that cannot sync
// a directory are not an error.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, errors.ErrUnsupported) && !errors.Is(err, syscall.EINVAL) {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}
