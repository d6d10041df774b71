// Package memory is a content store held in memory: every role of
// content.Store, with tags and resumable ingests. It is meant for tests and
// as the backend of test servers; it keeps whole blobs in memory, so it is
// not for large content.
package memory

import (
	"bytes"
	"context"
	_ "crypto/sha256" // register sha256 with go-digest
	_ "crypto/sha512" // register sha384 and sha512 with go-digest
	"fmt"
	"hash"
	"io"
	"maps"
	"sort"
	"sync"

	"github.com/lading-oci/lading/content"
	"github.com/lading-oci/lading/errdef"
	"github.com/lading-oci/lading/image"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Store is an in-memory content.Store. The zero value is not usable; call
// New. A Store is safe for concurrent use.
type Store struct {
	mu      sync.RWMutex
	blobs   map[digest.Digest]blob
	tags    map[string]ocispec.Descriptor
	ingests map[string]*ingest
}

type blob struct {
	data      []byte
	mediaType string
}

type ingest struct {
	data  []byte
	inUse bool
}

var _ content.Store = (*Store)(nil)

// New returns an empty store.
func New() *Store {
	return &Store{
		blobs:   make(map[digest.Digest]blob),
		tags:    make(map[string]ocispec.Descriptor),
		ingests: make(map[string]*ingest),
	}
}

// Push stores a blob after checking its digest and size. A blob already
// present is not read again.
func (s *Store) Push(ctx context.Context, expected ocispec.Descriptor, r io.Reader) error {
	if err := content.CheckDigest(expected.Digest); err != nil {
		return fmt.Errorf("push: %w", err)
	}
	if expected.Size < 0 {
		return fmt.Errorf("push %s: %w: negative size %d", expected.Digest, errdef.ErrInvalid, expected.Size)
	}
	s.mu.RLock()
	b, ok := s.blobs[expected.Digest]
	s.mu.RUnlock()
	if ok {
		if int64(len(b.data)) != expected.Size {
			return fmt.Errorf("push %s: %w: stored blob has %d bytes, descriptor says %d", expected.Digest, errdef.ErrSizeMismatch, len(b.data), expected.Size)
		}
		return nil
	}
	var buf bytes.Buffer
	if expected.Size < 1<<20 {
		buf.Grow(int(expected.Size))
	}
	vr := content.NewVerifyReader(content.ContextReader(ctx, r), expected)
	if _, err := buf.ReadFrom(vr); err != nil {
		return fmt.Errorf("push %s: %w", expected.Digest, err)
	}
	if err := vr.Verify(); err != nil {
		return fmt.Errorf("push %s: %w", expected.Digest, err)
	}
	s.put(expected.Digest, buf.Bytes(), expected.MediaType)
	return nil
}

// put stores data under dgst unless a blob is already there. A media type
// learnt from a push replaces an unknown one.
func (s *Store) put(dgst digest.Digest, data []byte, mediaType string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if b, ok := s.blobs[dgst]; ok {
		if b.mediaType == "" && mediaType != "" {
			b.mediaType = mediaType
			s.blobs[dgst] = b
		}
		return
	}
	s.blobs[dgst] = blob{data: data, mediaType: mediaType}
}

func (s *Store) get(dgst digest.Digest) (blob, error) {
	s.mu.RLock()
	b, ok := s.blobs[dgst]
	s.mu.RUnlock()
	if !ok {
		return blob{}, fmt.Errorf("blob %s: %w", dgst, errdef.ErrNotFound)
	}
	return b, nil
}

// Fetch returns a reader over a stored blob.
func (s *Store) Fetch(ctx context.Context, desc ocispec.Descriptor) (io.ReadCloser, error) {
	b, err := s.get(desc.Digest)
	if err != nil {
		return nil, fmt.Errorf("fetch: %w", err)
	}
	return io.NopCloser(bytes.NewReader(b.data)), nil
}

// Exists reports whether the blob is stored.
func (s *Store) Exists(ctx context.Context, desc ocispec.Descriptor) (bool, error) {
	_, err := s.get(desc.Digest)
	return err == nil, nil
}

// Stat returns the digest and size of a stored blob.
func (s *Store) Stat(ctx context.Context, dgst digest.Digest) (ocispec.Descriptor, error) {
	b, err := s.get(dgst)
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("stat: %w", err)
	}
	return ocispec.Descriptor{MediaType: "application/octet-stream", Digest: dgst, Size: int64(len(b.data))}, nil
}

// Delete removes a blob. Tags that point at it are kept.
func (s *Store) Delete(ctx context.Context, dgst digest.Digest) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.blobs[dgst]; !ok {
		return fmt.Errorf("delete blob %s: %w", dgst, errdef.ErrNotFound)
	}
	delete(s.blobs, dgst)
	return nil
}

// Blobs calls fn for every stored blob, in digest order. fn may call other
// methods of the store.
func (s *Store) Blobs(ctx context.Context, fn func(desc ocispec.Descriptor) error) error {
	s.mu.RLock()
	descs := make([]ocispec.Descriptor, 0, len(s.blobs))
	for d, b := range s.blobs {
		descs = append(descs, ocispec.Descriptor{MediaType: "application/octet-stream", Digest: d, Size: int64(len(b.data))})
	}
	s.mu.RUnlock()
	sort.Slice(descs, func(i, j int) bool { return descs[i].Digest < descs[j].Digest })
	for _, d := range descs {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(d); err != nil {
			return err
		}
	}
	return nil
}

// Tag points tag at desc, which must be stored.
func (s *Store) Tag(ctx context.Context, desc ocispec.Descriptor, tag string) error {
	if err := content.CheckTag(tag); err != nil {
		return err
	}
	if err := content.CheckDigest(desc.Digest); err != nil {
		return fmt.Errorf("tag %q: %w", tag, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.blobs[desc.Digest]
	if !ok {
		return fmt.Errorf("tag %q: blob %s: %w", tag, desc.Digest, errdef.ErrNotFound)
	}
	if int64(len(b.data)) != desc.Size {
		return fmt.Errorf("tag %q: blob %s: %w: stored blob has %d bytes, descriptor says %d", tag, desc.Digest, errdef.ErrSizeMismatch, len(b.data), desc.Size)
	}
	// The tag is recorded as given: a ref.name annotation the descriptor
	// carries from another store names it there, not here.
	entry := desc
	entry.Annotations = maps.Clone(desc.Annotations)
	if entry.Annotations == nil {
		entry.Annotations = map[string]string{}
	}
	entry.Annotations[ocispec.AnnotationRefName] = tag
	s.tags[tag] = entry
	return nil
}

// Untag removes a tag.
func (s *Store) Untag(ctx context.Context, tag string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.tags[tag]; !ok {
		return fmt.Errorf("untag %q: %w", tag, errdef.ErrNotFound)
	}
	delete(s.tags, tag)
	return nil
}

// Tags passes the tags in lexical order to fn, in pages.
func (s *Store) Tags(ctx context.Context, fn func(tags []string) error) error {
	s.mu.RLock()
	tags := make([]string, 0, len(s.tags))
	for t := range s.tags {
		tags = append(tags, t)
	}
	s.mu.RUnlock()
	return content.ListTags(tags, fn)
}

// Resolve returns the descriptor a tag points at or, for a digest, the
// stored blob with the media type it was pushed with (or found in its
// mediaType field).
func (s *Store) Resolve(ctx context.Context, reference string) (ocispec.Descriptor, error) {
	s.mu.RLock()
	desc, ok := s.tags[reference]
	s.mu.RUnlock()
	if ok {
		return desc, nil
	}
	dgst, err := digest.Parse(reference)
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("resolve %q: %w", reference, errdef.ErrNotFound)
	}
	b, err := s.get(dgst)
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("resolve %q: %w", reference, err)
	}
	mt := b.mediaType
	if mt == "" {
		mt = sniffMediaType(b.data)
	}
	return ocispec.Descriptor{MediaType: mt, Digest: dgst, Size: int64(len(b.data))}, nil
}

// sniffMediaType returns the media type a small JSON document declares or
// implies; application/octet-stream otherwise.
func sniffMediaType(data []byte) string {
	if mt := image.MediaTypeOf(data); mt != "" {
		return mt
	}
	return "application/octet-stream"
}

// Ingest opens a writer for the ingest named ref, resuming it if it exists.
// An empty ref starts a new ingest. A ref whose writer is still open is
// refused with errdef.ErrUnavailable.
func (s *Store) Ingest(ctx context.Context, ref string) (content.Writer, error) {
	if ref == "" {
		ref = content.NewIngestRef()
	}
	if err := content.CheckIngestRef(ref); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	in, ok := s.ingests[ref]
	if !ok {
		in = &ingest{}
		s.ingests[ref] = in
	}
	if in.inUse {
		return nil, fmt.Errorf("ingest %q: %w: a writer is open", ref, errdef.ErrUnavailable)
	}
	in.inUse = true
	w := &writer{s: s, ref: ref, in: in, h: digest.Canonical.Hash()}
	w.h.Write(in.data)
	return w, nil
}

type writer struct {
	s    *Store
	ref  string
	in   *ingest
	h    hash.Hash
	mu   sync.Mutex
	done bool
}

func (w *writer) Ref() string { return w.ref }

func (w *writer) Offset() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return int64(len(w.in.data))
}

func (w *writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return 0, fmt.Errorf("ingest %q: %w: the writer is closed", w.ref, errdef.ErrClosed)
	}
	w.in.data = append(w.in.data, p...)
	w.h.Write(p)
	return len(p), nil
}

// release ends this writer; with discard the ingest itself goes too.
func (w *writer) release(discard bool) {
	w.done = true
	w.s.mu.Lock()
	defer w.s.mu.Unlock()
	w.in.inUse = false
	if discard && w.s.ingests[w.ref] == w.in {
		delete(w.s.ingests, w.ref)
	}
}

func (w *writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.release(false)
	}
	return nil
}

func (w *writer) Abort(ctx context.Context) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return fmt.Errorf("abort ingest %q: %w: the writer is closed", w.ref, errdef.ErrClosed)
	}
	w.release(true)
	return nil
}

func (w *writer) Commit(ctx context.Context, size int64, expected digest.Digest) (ocispec.Descriptor, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return ocispec.Descriptor{}, fmt.Errorf("commit ingest %q: %w: the writer is closed", w.ref, errdef.ErrClosed)
	}
	if err := content.CheckDigest(expected); err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("commit ingest %q: %w", w.ref, err)
	}
	data := w.in.data
	w.release(true)
	if size >= 0 && int64(len(data)) != size {
		return ocispec.Descriptor{}, fmt.Errorf("commit ingest %q as %s: %w: wrote %d bytes, expected %d", w.ref, expected, errdef.ErrSizeMismatch, len(data), size)
	}
	var got digest.Digest
	if expected.Algorithm() == digest.Canonical {
		got = digest.NewDigest(digest.Canonical, w.h)
	} else {
		got = expected.Algorithm().FromBytes(data)
	}
	if got != expected {
		return ocispec.Descriptor{}, fmt.Errorf("commit ingest %q as %s: %w: content hashes to %s", w.ref, expected, errdef.ErrDigestMismatch, got)
	}
	w.s.put(expected, data, "")
	return ocispec.Descriptor{MediaType: "application/octet-stream", Digest: expected, Size: int64(len(data))}, nil
}
