//go:build unix

package storage

import (
	"os"
	"syscall"
)

// flockFile takes an advisory lock on f (exclusive or shared), waiting for
// it. It is the lock lading's embedded layout store takes on a layout
// directory around every index.json update, so the two never interleave.
func flockFile(f *os.File, exclusive bool) error {
	how := syscall.LOCK_SH
	if exclusive {
		how = syscall.LOCK_EX
	}
	return flockRaw(f, how)
}

// tryFlockFile takes an exclusive lock on f without waiting; it reports
// false if another open file holds a lock on it.
func tryFlockFile(f *os.File) (bool, error) {
	err := flockRaw(f, syscall.LOCK_EX|syscall.LOCK_NB)
	if err == syscall.EWOULDBLOCK {
		return false, nil
	}
	return err == nil, err
}

func unflockFile(f *os.File) { _ = flockRaw(f, syscall.LOCK_UN) }

func flockRaw(f *os.File, how int) error {
	raw, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	if err := raw.Control(func(fd uintptr) {
		for {
			ferr = syscall.Flock(int(fd), how)
			if ferr != syscall.EINTR {
				return
			}
		}
	}); err != nil {
		return err
	}
	return ferr
}

// linkCount returns the number of hard links of the file fi describes.
func linkCount(fi os.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Nlink)
	}
	return 1
}
