package unpack

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// RemoveAll removes the tree at path, as os.RemoveAll does, also when a
// rootless unpack by an unprivileged user left directories whose recorded
// modes deny their owner write or search access (a 0555 or 0000
// directory): those get owner access first. Symbolic links are never
// followed. A missing path is not an error.
func RemoveAll(path string) error {
	err := os.RemoveAll(path)
	if err == nil || !errors.Is(err, fs.ErrPermission) {
		return err
	}
	parent, name := filepath.Split(filepath.Clean(path))
	if parent == "" {
		parent = "."
	}
	rt, rerr := os.OpenRoot(parent)
	if rerr != nil {
		return err
	}
	defer rt.Close()
	if oerr := openTree(rt, name); oerr != nil {
		return fmt.Errorf("remove %s: %w", path, oerr)
	}
	return os.RemoveAll(path)
}

// openTree adds u+rwx to the directory name in rt and every directory
// below it, so that its owner can remove the tree.
func openTree(rt *os.Root, name string) error {
	fi, err := rt.Lstat(name)
	if err != nil || !fi.IsDir() {
		return err
	}
	if fi.Mode().Perm()&0o700 != 0o700 {
		if err := rt.Chmod(name, fi.Mode()|0o700); err != nil {
			return err
		}
	}
	f, err := rt.OpenFile(name, os.O_RDONLY, 0)
	if err != nil {
		return err
	}
	ents, err := f.ReadDir(-1)
	f.Close()
	if err != nil {
		return err
	}
	for _, e := range ents {
		if e.IsDir() {
			if err := openTree(rt, name+"/"+e.Name()); err != nil {
				return err
			}
		}
	}
	return nil
}
