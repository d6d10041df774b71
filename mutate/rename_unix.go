//go:build unix

package mutate

import (
	"os"
	"syscall"
)

// replaceDir renames the directory from to to, replacing to if it is an
// empty directory (rename(2) does; os.Rename refuses any existing
// directory).
func replaceDir(from, to string) error {
	if err := syscall.Rename(from, to); err != nil {
		return &os.LinkError{Op: "rename", Old: from, New: to, Err: err}
	}
	return nil
}
