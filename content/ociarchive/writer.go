package ociarchive

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"path/filepath"
	"slices"
	"sync"

	"github.com/lading-oci/lading/content"
	"github.com/lading-oci/lading/errdef"
	"github.com/lading-oci/lading/internal/archive"
	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// ErrClosed is returned by a Writer used after Commit, Close or Abort.
var ErrClosed = archive.ErrClosed

// Writer writes a new oci-archive. It implements content.IngestStorage
// (reading back what it has written), content.Stater, content.Resolver,
// content.Tagger, content.Untagger and content.TagLister, and is safe for
// concurrent use: blobs are written into the archive one after the other,
// and a push that arrives while another is writing reads its blob into a
// temporary file beside the archive meanwhile. It cannot delete: a blob
// written stays in the archive.
//
// Nothing appears at the archive's path until Commit (or Close) succeeds.
type Writer struct {
	mu    sync.Mutex
	w     *archive.Writer
	blobs map[digest.Digest]*archive.Member
	index []ocispec.Descriptor
	done  bool

	ingests map[string]*ingest
}

var (
	_ content.TagStore  = (*Writer)(nil)
	_ content.Stater    = (*Writer)(nil)
	_ content.Untagger  = (*Writer)(nil)
	_ content.TagLister = (*Writer)(nil)
)

// Create starts a new oci-archive that Commit writes to path, replacing
// any file there. The directory must exist.
func Create(ctx context.Context, path string) (*Writer, error) {
	aw, err := archive.Create(path)
	if err != nil {
		return nil, err
	}
	w := &Writer{w: aw, blobs: make(map[digest.Digest]*archive.Member)}
	hdr, _ := json.Marshal(ocispec.ImageLayout{Version: ocispec.ImageLayoutVersion})
	if _, err := aw.AddBytes(ctx, layoutFile, hdr); err != nil {
		aw.Abort()
		return nil, fmt.Errorf("create oci-archive %s: %w", path, err)
	}
	return w, nil
}

// Path returns the file the archive is written to.
func (w *Writer) Path() string { return w.w.Path() }

func (w *Writer) usable() error {
	if w.done {
		return fmt.Errorf("oci-archive %s: %w", w.w.Path(), ErrClosed)
	}
	return nil
}

// Push streams a blob into the archive, verifying its digest and size. A
// blob already written is not written again, and r is not read then. On a
// mismatch or a failing reader the partial member is removed again.
func (w *Writer) Push(ctx context.Context, expected ocispec.Descriptor, r io.Reader) error {
	if err := content.CheckDigest(expected.Digest); err != nil {
		return fmt.Errorf("push: %w", err)
	}
	if expected.Size < 0 {
		return fmt.Errorf("push %s: %w: negative size %d", expected.Digest, errdef.ErrInvalid, expected.Size)
	}
	if !w.mu.TryLock() {
		// Another push is writing to the archive: read this blob into a
		// temporary file meanwhile (verified when it is appended).
		sr, drop, err := archive.Spill(ctx, filepath.Dir(w.w.Path()), io.LimitReader(r, expected.Size+1))
		if err != nil {
			return fmt.Errorf("push %s: %w", expected.Digest, err)
		}
		defer drop()
		r = sr
		w.mu.Lock()
	}
	defer w.mu.Unlock()
	if err := w.usable(); err != nil {
		return err
	}
	if m, ok := w.blobs[expected.Digest]; ok {
		if m.Size != expected.Size {
			return fmt.Errorf("push %s: %w: written blob has %d bytes, descriptor says %d", expected.Digest, errdef.ErrSizeMismatch, m.Size, expected.Size)
		}
		return nil
	}
	algDir := path.Join(blobsDir, expected.Digest.Algorithm().String())
	for _, d := range []string{blobsDir, algDir} {
		if err := w.w.AddDir(d); err != nil {
			return fmt.Errorf("push %s: %w", expected.Digest, err)
		}
	}
	vr := content.NewVerifyReader(r, expected)
	m, err := w.w.AddFile(ctx, blobName(expected.Digest), expected.Size, vr)
	if err != nil {
		return fmt.Errorf("push %s: %w", expected.Digest, err)
	}
	w.blobs[expected.Digest] = m
	return nil
}

// Exists reports whether the blob has been written.
func (w *Writer) Exists(ctx context.Context, desc ocispec.Descriptor) (bool, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	_, ok := w.blobs[desc.Digest]
	return ok, nil
}

// Stat returns the digest and size of a blob written.
func (w *Writer) Stat(ctx context.Context, dgst digest.Digest) (ocispec.Descriptor, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	m, ok := w.blobs[dgst]
	if !ok {
		return ocispec.Descriptor{}, fmt.Errorf("stat %s: %w in the archive being written", dgst, errdef.ErrNotFound)
	}
	return ocispec.Descriptor{MediaType: "application/octet-stream", Digest: dgst, Size: m.Size}, nil
}

// Fetch reads back a blob written (and verified) earlier.
func (w *Writer) Fetch(ctx context.Context, desc ocispec.Descriptor) (io.ReadCloser, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.usable(); err != nil {
		return nil, err
	}
	m, ok := w.blobs[desc.Digest]
	if !ok {
		return nil, fmt.Errorf("fetch %s: %w in the archive being written", desc.Digest, errdef.ErrNotFound)
	}
	return io.NopCloser(w.w.Open(m)), nil
}

// Tag points tag at desc, which must have been written with desc's size:
// an index.json entry with that tag is replaced; desc's platform and
// annotations are kept with the ref name added.
func (w *Writer) Tag(ctx context.Context, desc ocispec.Descriptor, tag string) error {
	if err := content.CheckTag(tag); err != nil {
		return err
	}
	if err := content.CheckDigest(desc.Digest); err != nil {
		return fmt.Errorf("tag %q: %w", tag, err)
	}
	if desc.MediaType == "" {
		return fmt.Errorf("tag %q: descriptor %s: %w: no media type", tag, desc.Digest, errdef.ErrInvalid)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.usable(); err != nil {
		return err
	}
	m, ok := w.blobs[desc.Digest]
	if !ok {
		return fmt.Errorf("tag %q: blob %s: %w in the archive being written", tag, desc.Digest, errdef.ErrNotFound)
	}
	if m.Size != desc.Size {
		return fmt.Errorf("tag %q: blob %s: %w: written blob has %d bytes, descriptor says %d", tag, desc.Digest, errdef.ErrSizeMismatch, m.Size, desc.Size)
	}
	entry := desc
	entry.Annotations = make(map[string]string, len(desc.Annotations)+1)
	for k, v := range desc.Annotations {
		entry.Annotations[k] = v
	}
	entry.Annotations[ocispec.AnnotationRefName] = tag
	w.index = slices.DeleteFunc(w.index, func(d ocispec.Descriptor) bool { return refName(d) == tag })
	w.index = append(w.index, entry)
	return nil
}

// Untag removes the index.json entry named tag.
func (w *Writer) Untag(ctx context.Context, tag string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := len(w.index)
	w.index = slices.DeleteFunc(w.index, func(d ocispec.Descriptor) bool { return refName(d) == tag })
	if len(w.index) == n {
		return fmt.Errorf("untag %q: %w", tag, errdef.ErrNotFound)
	}
	return nil
}

// Tags passes the tags set so far, sorted, to fn in pages.
func (w *Writer) Tags(ctx context.Context, fn func(tags []string) error) error {
	w.mu.Lock()
	tags := tagsOf(w.index)
	w.mu.Unlock()
	return content.ListTags(tags, fn)
}

// Resolve finds the descriptor for a tag set so far or for a digest, as
// Reader.Resolve does.
func (w *Writer) Resolve(ctx context.Context, reference string) (ocispec.Descriptor, error) {
	w.mu.Lock()
	entries := slices.Clone(w.index)
	w.mu.Unlock()
	d, err := resolve(ctx, w, entries, reference)
	if err != nil {
		return d, fmt.Errorf("resolve %q in the archive being written: %w", reference, err)
	}
	return d, nil
}

// Index returns the index.json the archive would get now.
func (w *Writer) Index(ctx context.Context) (ocispec.Index, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.indexLocked(), nil
}

func (w *Writer) indexLocked() ocispec.Index {
	manifests := slices.Clone(w.index)
	if manifests == nil {
		manifests = []ocispec.Descriptor{}
	}
	return ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex, Manifests: manifests}
}

// Commit checks that everything index.json reaches was written (blobs with
// URLs, non-distributable layers, may be absent), writes index.json, ends
// the archive and gives it its name, replacing any file there. On error
// nothing is left at the path (an existing file keeps its content). The
// Writer cannot be used afterwards.
func (w *Writer) Commit(ctx context.Context) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.usable(); err != nil {
		return err
	}
	err := w.commitLocked(ctx)
	w.done = true
	w.dropIngestsLocked()
	if err != nil {
		w.w.Abort()
		return fmt.Errorf("write oci-archive %s: %w", w.w.Path(), err)
	}
	return nil
}

func (w *Writer) commitLocked(ctx context.Context) error {
	idx := w.indexLocked()
	if err := w.checkComplete(ctx, idx.Manifests); err != nil {
		return err
	}
	data, err := json.Marshal(idx)
	if err != nil {
		return err
	}
	if _, err := w.w.AddBytes(ctx, indexFile, data); err != nil {
		return err
	}
	return w.w.Commit(ctx)
}

// checkComplete walks the graph from roots through the blobs written.
func (w *Writer) checkComplete(ctx context.Context, roots []ocispec.Descriptor) error {
	f := lockedFetcher{w}
	return content.WalkGraph(ctx, f, roots, func(ctx context.Context, d ocispec.Descriptor) error {
		if _, ok := w.blobs[d.Digest]; ok {
			return nil
		}
		if len(d.URLs) > 0 {
			return content.ErrSkip
		}
		return fmt.Errorf("incomplete image: %s %s is referenced but was not written: %w", d.MediaType, d.Digest, errdef.ErrNotFound)
	})
}

// lockedFetcher reads blobs while w.mu is held.
type lockedFetcher struct{ w *Writer }

func (l lockedFetcher) Fetch(ctx context.Context, desc ocispec.Descriptor) (io.ReadCloser, error) {
	m, ok := l.w.blobs[desc.Digest]
	if !ok {
		return nil, fmt.Errorf("fetch %s: %w", desc.Digest, errdef.ErrNotFound)
	}
	return io.NopCloser(content.NewVerifyReader(l.w.w.Open(m), desc)), nil
}

// Close commits the archive (see Commit). Closing a Writer that was
// committed or aborted does nothing.
func (w *Writer) Close() error {
	err := w.Commit(context.Background())
	if errors.Is(err, ErrClosed) {
		return nil
	}
	return err
}

// Abort drops the archive being written: nothing is left at its path, and
// an existing file there is kept as it was. It does nothing after Commit.
func (w *Writer) Abort() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return nil
	}
	w.done = true
	w.dropIngestsLocked()
	return w.w.Abort()
}
