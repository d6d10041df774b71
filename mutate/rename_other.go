//go:build !unix

package mutate

import "os"

// replaceDir renames the directory from to to, replacing to if it is an
// empty directory.
func replaceDir(from, to string) error {
	_ = os.Remove(to) // only an empty directory can be removed
	return os.Rename(from, to)
}
