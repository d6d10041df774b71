package ocilayout

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/lading-oci/lading/errdef"
)

// A Store that writes blobs holds a shared lock on the layout's blobs
// directory (which, unlike ingest/, is never removed, so every process
// locks the same inode) from its first write until Close (or the end of the process),
// and GC takes that lock exclusively. A blob written by another process but
// not yet tagged is therefore never collected: GC refuses to remove
// unreferenced blobs while such a writer is active (unless
// GCOptions.MinBlobAge protects recent blobs instead), and writers wait
// while GC runs. The lock is an flock, so a writer that dies releases it.

// holdWriters takes the writers' lock for s if it does not hold it yet.
func (s *Store) holdWriters(ctx context.Context) error {
	s.writersMu.Lock()
	defer s.writersMu.Unlock()
	if s.writers != nil {
		return nil
	}
	dir, err := s.blobsDir()
	if err != nil {
		return fmt.Errorf("layout %s: %w", s.dir, err)
	}
	f, err := openLocked(ctx, dir, flockShared)
	if err != nil {
		return fmt.Errorf("layout %s: waiting for a garbage collection to end: %w", s.dir, err)
	}
	s.writers = f
	return nil
}

// releaseWriters gives up the writers' lock if s holds it.
func (s *Store) releaseWriters() error {
	s.writersMu.Lock()
	defer s.writersMu.Unlock()
	if s.writers == nil {
		return nil
	}
	funlock(s.writers)
	err := s.writers.Close()
	s.writers = nil
	return err
}

// Close releases what the Store holds: the lock that marks it as a writer
// of the layout, which keeps GC in other processes from collecting blobs it
// has not tagged yet. The Store can still be used; a later write takes the
// lock again.
func (s *Store) Close() error {
	return s.releaseWriters()
}

// excludeWriters takes the writers' lock exclusively for GC, after giving
// up s's own share of it. With other writers active it fails, unless opts
// make collecting safe without it (a minimum blob age, or a dry run).
func (s *Store) excludeWriters(opts GCOptions) (release func(), err error) {
	if err := s.releaseWriters(); err != nil {
		return nil, err
	}
	if opts.DryRun {
		return func() {}, nil // removes nothing
	}
	dir, err := s.blobsDir()
	if err != nil {
		return nil, fmt.Errorf("gc %s: %w", s.dir, err)
	}
	f, err := os.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("gc %s: %w", s.dir, err)
	}
	switch err := tryFlock(f); {
	case err == nil:
		return func() { funlock(f); f.Close() }, nil
	case errors.Is(err, errLocked) && opts.MinBlobAge > 0:
		f.Close()
		return func() {}, nil
	case errors.Is(err, errLocked):
		f.Close()
		return nil, fmt.Errorf("gc %s: %w: another process is writing to the layout and may not have tagged what it wrote yet; run gc when it has finished, or keep recent blobs with a minimum age", s.dir, errdef.ErrUnavailable)
	default:
		f.Close()
		return nil, fmt.Errorf("gc %s: %w", s.dir, err)
	}
}

// blobsDir returns the blobs directory, making it if the layout has none
// yet (image-layout does not require it until there are blobs).
func (s *Store) blobsDir() (string, error) {
	dir := s.path(blobsDir)
	return dir, os.MkdirAll(dir, 0o755)
}
