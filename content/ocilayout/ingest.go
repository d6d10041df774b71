package ocilayout

import (
	"context"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"github.com/lading-oci/lading/content"
	"github.com/lading-oci/lading/errdef"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// ingestData is the file that holds an ingest's bytes, in ingest/<ref>/.
const ingestData = "data"

// Ingest opens a writer for ingest/<ref>, resuming it (after re-hashing
// what it holds) if it exists; an empty ref starts a new ingest. The writer
// holds a flock on its data file until it is closed; a ref whose writer is
// open, in this or another process, is refused with errdef.ErrUnavailable.
func (s *Store) Ingest(ctx context.Context, ref string) (content.Writer, error) {
	if ref == "" {
		ref = content.NewIngestRef()
	}
	if err := content.CheckIngestRef(ref); err != nil {
		return nil, err
	}
	if err := s.holdWriters(ctx); err != nil {
		return nil, fmt.Errorf("ingest %q: %w", ref, err)
	}
	dir := s.path(ingestDir, ref)
	path := filepath.Join(dir, ingestData)
	var f *os.File
	var err error
	// Garbage collection may remove a directory just made; try again then.
	for range 3 {
		if err = os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("ingest %q: %w", ref, err)
		}
		if f, err = os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644); !errors.Is(err, fs.ErrNotExist) {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("ingest %q: %w", ref, err)
	}
	if err := tryFlock(f); err != nil {
		f.Close()
		if errors.Is(err, errLocked) {
			return nil, fmt.Errorf("ingest %q: %w: a writer is open", ref, errdef.ErrUnavailable)
		}
		return nil, fmt.Errorf("ingest %q: %w", ref, err)
	}
	// Garbage collection may have removed the file between open and lock.
	if fi, err := f.Stat(); err != nil {
		f.Close()
		return nil, fmt.Errorf("ingest %q: %w", ref, err)
	} else if pfi, err := os.Stat(path); err != nil || !os.SameFile(fi, pfi) {
		f.Close()
		return nil, fmt.Errorf("ingest %q: %w: removed while opening", ref, errdef.ErrUnavailable)
	}
	w := &writer{s: s, ref: ref, dir: dir, f: f, h: digest.Canonical.Hash()}
	n, err := io.CopyBuffer(w.h, f, make([]byte, copyBufferSize))
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("ingest %q: re-hash existing data: %w", ref, err)
	}
	w.offset = n
	w.wb = writeback{f: f, started: n}
	return w, nil
}

// writer appends to ingest/<ref>/data; see content.Writer.
type writer struct {
	s      *Store
	ref    string
	dir    string
	mu     sync.Mutex
	f      *os.File // nil once closed
	h      hash.Hash
	offset int64
	wb     writeback
}

func (w *writer) Ref() string { return w.ref }

func (w *writer) Offset() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.offset
}

func (w *writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil {
		return 0, fmt.Errorf("ingest %q: %w: the writer is closed", w.ref, errdef.ErrClosed)
	}
	n, err := w.f.Write(p)
	w.h.Write(p[:n])
	w.offset += int64(n)
	w.wb.wrote(w.offset)
	if err != nil {
		return n, fmt.Errorf("ingest %q: %w", w.ref, err)
	}
	return n, nil
}

// Close releases the writer; the ingest stays and can be resumed.
func (w *writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil {
		return nil
	}
	err := w.f.Close()
	w.f = nil
	if err != nil {
		return fmt.Errorf("ingest %q: %w", w.ref, err)
	}
	return nil
}

// discard closes the file and removes the ingest directory.
func (w *writer) discard() error {
	w.f.Close()
	w.f = nil
	if err := os.RemoveAll(w.dir); err != nil {
		return fmt.Errorf("ingest %q: %w", w.ref, err)
	}
	return nil
}

func (w *writer) Abort(ctx context.Context) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil {
		return fmt.Errorf("abort ingest %q: %w: the writer is closed", w.ref, errdef.ErrClosed)
	}
	return w.discard()
}

func (w *writer) Commit(ctx context.Context, size int64, expected digest.Digest) (ocispec.Descriptor, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil {
		return ocispec.Descriptor{}, fmt.Errorf("commit ingest %q: %w: the writer is closed", w.ref, errdef.ErrClosed)
	}
	desc, err := w.commit(ctx, size, expected)
	if derr := w.discard(); err == nil && derr != nil {
		err = derr
	}
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	return desc, nil
}

func (w *writer) commit(ctx context.Context, size int64, expected digest.Digest) (ocispec.Descriptor, error) {
	if err := content.CheckDigest(expected); err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("commit ingest %q: %w", w.ref, err)
	}
	if size >= 0 && w.offset != size {
		return ocispec.Descriptor{}, fmt.Errorf("commit ingest %q as %s: %w: wrote %d bytes, expected %d", w.ref, expected, errdef.ErrSizeMismatch, w.offset, size)
	}
	var got digest.Digest
	if expected.Algorithm() == digest.Canonical {
		got = digest.NewDigest(digest.Canonical, w.h)
	} else {
		h := expected.Algorithm().Hash()
		if _, err := w.f.Seek(0, io.SeekStart); err != nil {
			return ocispec.Descriptor{}, fmt.Errorf("commit ingest %q: %w", w.ref, err)
		}
		if _, err := io.CopyBuffer(h, content.ContextReader(ctx, w.f), make([]byte, copyBufferSize)); err != nil {
			return ocispec.Descriptor{}, fmt.Errorf("commit ingest %q: re-hash: %w", w.ref, err)
		}
		got = digest.NewDigest(expected.Algorithm(), h)
	}
	if got != expected {
		return ocispec.Descriptor{}, fmt.Errorf("commit ingest %q as %s: %w: content hashes to %s", w.ref, expected, errdef.ErrDigestMismatch, got)
	}
	if err := w.s.publish(w.f, expected); err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("commit ingest %q as %s: %w", w.ref, expected, err)
	}
	return ocispec.Descriptor{MediaType: "application/octet-stream", Digest: expected, Size: w.offset}, nil
}
