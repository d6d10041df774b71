package ociarchive

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	"github.com/lading-oci/lading/content"
	"github.com/lading-oci/lading/errdef"
	"github.com/lading-oci/lading/internal/archive"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

var _ content.IngestStorage = (*Writer)(nil)

// ingest is a blob being written whose digest is known only at its end.
type ingest struct {
	w    *Writer
	ref  string
	f    *os.File
	drop func() // removes the temporary file
	off  int64

	mu     sync.Mutex
	inUse  bool
	ended  bool
	closed bool
}

// Ingest opens a writer for a blob whose digest is known only at its end,
// as layers being built are. Its data goes to a temporary file beside the
// archive and is appended to the archive when the ingest is committed. An
// ingest can be resumed by its ref while the Writer lives (not after the
// process ends); an empty ref starts a new one.
func (w *Writer) Ingest(ctx context.Context, ref string) (content.Writer, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.usable(); err != nil {
		return nil, err
	}
	if w.ingests == nil {
		w.ingests = make(map[string]*ingest)
	}
	if ref != "" {
		if err := content.CheckIngestRef(ref); err != nil {
			return nil, err
		}
		if in, ok := w.ingests[ref]; ok {
			in.mu.Lock()
			defer in.mu.Unlock()
			if in.inUse {
				return nil, fmt.Errorf("ingest %q: %w: another writer has it open", ref, errdef.ErrUnavailable)
			}
			in.inUse, in.closed = true, false
			return in, nil
		}
	} else {
		ref = content.NewIngestRef()
	}
	f, drop, err := archive.CreateTemp(filepath.Dir(w.w.Path()))
	if err != nil {
		return nil, fmt.Errorf("ingest %q: %w", ref, err)
	}
	in := &ingest{w: w, ref: ref, f: f, drop: drop, inUse: true}
	w.ingests[ref] = in
	return in, nil
}

// Ref names the ingest.
func (in *ingest) Ref() string { return in.ref }

// Offset is the number of bytes written so far.
func (in *ingest) Offset() int64 {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.off
}

// Write appends to the ingest.
func (in *ingest) Write(p []byte) (int, error) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.ended || in.closed {
		return 0, fmt.Errorf("ingest %q: %w", in.ref, ErrClosed)
	}
	n, err := in.f.WriteAt(p, in.off)
	in.off += int64(n)
	return n, err
}

// Close releases the writer; the ingest can be resumed by its ref.
func (in *ingest) Close() error {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.closed, in.inUse = true, false
	return nil
}

// Commit checks the content against expected (and size, unless negative)
// while appending it to the archive as that blob. The ingest ends either
// way; on a mismatch nothing is added.
func (in *ingest) Commit(ctx context.Context, size int64, expected digest.Digest) (ocispec.Descriptor, error) {
	in.mu.Lock()
	if in.ended || in.closed {
		in.mu.Unlock()
		return ocispec.Descriptor{}, fmt.Errorf("ingest %q: %w", in.ref, ErrClosed)
	}
	in.ended = true
	off := in.off
	in.mu.Unlock()
	defer in.end()
	if err := content.CheckDigest(expected); err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("commit ingest %q: %w", in.ref, err)
	}
	if size >= 0 && off != size {
		return ocispec.Descriptor{}, fmt.Errorf("commit ingest %q: %w: %d bytes written, %d expected", in.ref, errdef.ErrSizeMismatch, off, size)
	}
	desc := ocispec.Descriptor{MediaType: "application/octet-stream", Digest: expected, Size: off}
	if err := in.w.Push(ctx, desc, io.NewSectionReader(in.f, 0, off)); err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("commit ingest %q: %w", in.ref, err)
	}
	return desc, nil
}

// Abort discards the ingest.
func (in *ingest) Abort(ctx context.Context) error {
	in.mu.Lock()
	in.ended = true
	in.mu.Unlock()
	in.end()
	return nil
}

// end removes the ingest's file and forgets it.
func (in *ingest) end() {
	in.drop()
	in.w.mu.Lock()
	delete(in.w.ingests, in.ref)
	in.w.mu.Unlock()
}

// dropIngestsLocked ends every ingest still open; w.mu is held.
func (w *Writer) dropIngestsLocked() {
	for ref, in := range w.ingests {
		in.mu.Lock()
		in.ended = true
		in.mu.Unlock()
		in.drop()
		delete(w.ingests, ref)
	}
}
