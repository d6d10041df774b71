// Package ocilayout is a content store kept in an OCI image layout
// directory: an oci-layout file, index.json, and blobs/<alg>/<encoded>.
//
// Blobs are written to a temporary file under ingest/ (created when first
// needed), verified and synced while being written, and then linked (or
// renamed) into blobs/, so a file under blobs/ always matches its name,
// whatever point a writing process is stopped at. A blob already stored is
// never rewritten.
//
// Tags are the org.opencontainers.image.ref.name annotations of the
// descriptors in index.json. Every change to index.json is a
// read-modify-write made under an exclusive flock(2) on the layout directory
// itself (the directory's own file descriptor: no lock file is added to the
// layout), written to a temporary file, synced and renamed over index.json.
// Processes that use this package on one layout therefore never lose each
// other's updates. The same lock is held by GC while it sweeps.
//
// Writers of resumable ingests (ingest/<ref>/data) hold a flock on their
// data file while open, which is how GC tells a live ingest from an
// abandoned one.
package ocilayout

import (
	"context"
	_ "crypto/sha256" // register sha256 with go-digest
	_ "crypto/sha512" // register sha384 and sha512 with go-digest
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/lading-oci/lading/internal/atomicfile"

	"github.com/lading-oci/lading/content"
	"github.com/lading-oci/lading/errdef"
	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

const (
	layoutFile = ocispec.ImageLayoutFile // "oci-layout"
	indexFile  = "index.json"
	blobsDir   = ocispec.ImageBlobsDir // "blobs"
	ingestDir  = "ingest"

	// maxIndexBytes caps how much of index.json is read: it grows with
	// the number of tags, so the cap is well above the metadata cap.
	maxIndexBytes = 64 << 20
	// maxLayoutBytes caps how much of oci-layout is read.
	maxLayoutBytes = 1 << 20
	// copyBufferSize is the buffer used to stream blobs to and from disk.
	copyBufferSize = 1 << 20
)

var errLocked = errors.New("locked by another process")

// Store is a content.Store over an OCI image layout directory. It is safe
// for concurrent use by goroutines and, for index.json, by processes.
type Store struct {
	dir          string
	verifyOnRead bool
	maxMetadata  int64

	// indexMu serialises index.json updates among this Store's goroutines;
	// the flock serialises them among processes and Stores.
	indexMu sync.Mutex

	// writers is the blobs directory, share-locked from the first write
	// until Close (see holdWriters).
	writersMu sync.Mutex
	writers   *os.File
}

var _ content.Store = (*Store)(nil)

// Option configures a Store.
type Option func(*Store)

// WithVerifyOnRead makes readers returned by Fetch hash what they read and
// fail at the end of the blob if it does not match its digest.
func WithVerifyOnRead(v bool) Option {
	return func(s *Store) { s.verifyOnRead = v }
}

// WithMaxMetadataBytes sets the largest manifest, index or configuration
// that Resolve, Verify and GC read into memory (default
// content.DefaultMaxMetadataBytes).
func WithMaxMetadataBytes(n int64) Option {
	return func(s *Store) {
		if n > 0 {
			s.maxMetadata = n
		}
	}
}

func newStore(dir string, opts []Option) *Store {
	s := &Store{dir: dir, maxMetadata: content.DefaultMaxMetadataBytes}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Open opens an existing layout in dir. A directory without an oci-layout
// file is an *errdef.NotFoundError (errdef.ErrNotFound) of a layout; an
// unreadable oci-layout or index.json is errdef.ErrInvalid.
func Open(ctx context.Context, dir string, opts ...Option) (*Store, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s := newStore(dir, opts)
	if err := s.check(); err != nil {
		return nil, err
	}
	return s, nil
}

// Init opens the layout in dir, creating it (and dir) if dir has no
// oci-layout file. An existing layout must be valid, as for Open. It waits
// for the layout's lock while another process creates or changes it, until
// ctx is done.
func Init(ctx context.Context, dir string, opts ...Option) (*Store, error) {
	s := newStore(dir, opts)
	if _, err := os.Stat(s.path(layoutFile)); err == nil {
		return Open(ctx, dir, opts...)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("init layout %s: %w", dir, err)
	}
	if err := os.MkdirAll(s.path(blobsDir), 0o755); err != nil {
		return nil, fmt.Errorf("init layout %s: %w", dir, err)
	}
	err := s.withLock(ctx, func() error {
		// Another process may have created the layout meanwhile.
		if _, err := os.Stat(s.path(indexFile)); errors.Is(err, fs.ErrNotExist) {
			if err := s.writeIndexLocked(ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{}}); err != nil {
				return err
			}
		}
		if _, err := os.Stat(s.path(layoutFile)); errors.Is(err, fs.ErrNotExist) {
			hdr, _ := json.Marshal(ocispec.ImageLayout{Version: ocispec.ImageLayoutVersion})
			if err := atomicfile.Write(filepath.Join(s.dir, layoutFile), hdr, 0o644, true); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("init layout %s: %w", dir, err)
	}
	return Open(ctx, dir, opts...)
}

// Dir returns the layout directory.
func (s *Store) Dir() string { return s.dir }

func (s *Store) path(elem ...string) string {
	return filepath.Join(append([]string{s.dir}, elem...)...)
}

// check makes sure dir holds a layout that can be used: a readable
// oci-layout naming a 1.x version and a readable index.json.
func (s *Store) check() error {
	data, err := readCapped(s.path(layoutFile), maxLayoutBytes)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("open layout: %w", &errdef.NotFoundError{What: errdef.WhatLayout, Name: s.dir, Detail: "the directory has no " + layoutFile + " file"})
	}
	if err != nil {
		return fmt.Errorf("open layout %s: %w", s.dir, err)
	}
	var hdr struct {
		Version *string `json:"imageLayoutVersion"`
	}
	if err := json.Unmarshal(data, &hdr); err != nil {
		return fmt.Errorf("open layout %s: %s: %w: %v", s.dir, layoutFile, errdef.ErrInvalid, err)
	}
	if hdr.Version == nil {
		return fmt.Errorf("open layout %s: %s: %w: no imageLayoutVersion", s.dir, layoutFile, errdef.ErrInvalid)
	}
	if len(*hdr.Version) < 2 || (*hdr.Version)[:2] != "1." {
		return fmt.Errorf("open layout %s: %s: %w: imageLayoutVersion %q is not 1.x", s.dir, layoutFile, errdef.ErrUnsupported, *hdr.Version)
	}
	if _, err := s.readIndex(); err != nil {
		return fmt.Errorf("open layout %s: %w", s.dir, err)
	}
	return nil
}

// readCapped reads a whole file of at most max bytes.
func readCapped(path string, max int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > max {
		return nil, fmt.Errorf("%s: %w: larger than %d bytes", path, errdef.ErrTooLarge, max)
	}
	return data, nil
}

// blobPath is where the blob named d lives; d must have been validated.
func (s *Store) blobPath(d digest.Digest) string {
	return filepath.Join(s.dir, blobsDir, d.Algorithm().String(), d.Encoded())
}

// BlobPath returns the file that holds (or would hold) the blob named d.
func (s *Store) BlobPath(d digest.Digest) (string, error) {
	if err := content.CheckDigest(d); err != nil {
		return "", err
	}
	return s.blobPath(d), nil
}

// Push streams r into the store, verifying digest and size. An existing
// blob is not rewritten; r is not read in that case.
func (s *Store) Push(ctx context.Context, expected ocispec.Descriptor, r io.Reader) error {
	if err := content.CheckDigest(expected.Digest); err != nil {
		return fmt.Errorf("push: %w", err)
	}
	if expected.Size < 0 {
		return fmt.Errorf("push %s: %w: negative size %d", expected.Digest, errdef.ErrInvalid, expected.Size)
	}
	final := s.blobPath(expected.Digest)
	// A blob already stored is not written again, and the writers' lock is
	// not taken for it: a process that only finds its blobs present does
	// not hold GC off. Its modification time is refreshed, so a GC with a
	// MinBlobAge keeps it while the caller goes on to reference it.
	if fi, err := os.Stat(final); err == nil {
		if fi.Size() != expected.Size {
			return fmt.Errorf("push %s: %w: stored blob %s has %d bytes, descriptor says %d", expected.Digest, errdef.ErrSizeMismatch, final, fi.Size(), expected.Size)
		}
		now := time.Now()
		_ = os.Chtimes(final, now, now)
		return nil
	}
	if err := s.holdWriters(ctx); err != nil {
		return fmt.Errorf("push %s: %w", expected.Digest, err)
	}
	f, err := s.createTemp()
	if err != nil {
		return fmt.Errorf("push %s: %w", expected.Digest, err)
	}
	tmp := f.Name()
	defer func() {
		f.Close()
		os.Remove(tmp)
	}()
	vr := content.NewVerifyReader(content.ContextReader(ctx, r), expected)
	buf := make([]byte, copyBufferSize)
	if _, err := io.CopyBuffer(&onlyWriter{w: f, wb: writeback{f: f}}, vr, buf); err != nil {
		return fmt.Errorf("push %s: %w", expected.Digest, err)
	}
	if err := vr.Verify(); err != nil {
		return fmt.Errorf("push %s: %w", expected.Digest, err)
	}
	if err := s.publish(f, expected.Digest); err != nil {
		return fmt.Errorf("push %s: %w", expected.Digest, err)
	}
	return nil
}

// onlyWriter writes to a new blob file, hiding ReadFrom so io.CopyBuffer
// uses the buffer it is given, and starting writeback as it goes.
type onlyWriter struct {
	w  io.Writer
	n  int64
	wb writeback
}

func (o *onlyWriter) Write(p []byte) (int, error) {
	n, err := o.w.Write(p)
	o.n += int64(n)
	o.wb.wrote(o.n)
	return n, err
}

// createTemp creates a locked temporary file under ingest/ for a push.
func (s *Store) createTemp() (*os.File, error) {
	dir := s.path(ingestDir)
	f, err := os.CreateTemp(dir, ".push-*")
	if errors.Is(err, fs.ErrNotExist) {
		if err = os.MkdirAll(dir, 0o755); err == nil {
			f, err = os.CreateTemp(dir, ".push-*")
		}
	}
	if err != nil {
		return nil, err
	}
	if err := tryFlock(f); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, err
	}
	return f, nil
}

// publish syncs the verified file f and gives it the name of blob d. The
// file stays where it was too (the caller removes it). A blob already
// stored under d is kept as it is.
func (s *Store) publish(f *os.File, d digest.Digest) error {
	if err := f.Chmod(0o644); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	final := s.blobPath(d)
	dir := filepath.Dir(final)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	err := os.Link(f.Name(), final)
	switch {
	case err == nil:
	case errors.Is(err, fs.ErrExist):
		return nil
	default:
		// No hard links here (some file systems): rename instead, unless
		// the blob appeared meanwhile.
		if _, serr := os.Lstat(final); serr == nil {
			return nil
		}
		if err := os.Rename(f.Name(), final); err != nil {
			return err
		}
	}
	return atomicfile.SyncDir(dir)
}

// Fetch opens a blob. The reader is not verified unless the store was
// opened WithVerifyOnRead, in which case it fails at the end of the blob
// with errdef.ErrDigestMismatch if the file does not match its name.
func (s *Store) Fetch(ctx context.Context, desc ocispec.Descriptor) (io.ReadCloser, error) {
	if err := content.CheckDigest(desc.Digest); err != nil {
		return nil, fmt.Errorf("fetch: %w", err)
	}
	path := s.blobPath(desc.Digest)
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("fetch: %w", &errdef.NotFoundError{What: errdef.WhatBlob, Name: string(desc.Digest), In: s.dir})
	}
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", desc.Digest, err)
	}
	if !s.verifyOnRead {
		return f, nil
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("fetch %s: %w", desc.Digest, err)
	}
	vr := content.NewVerifyReader(f, ocispec.Descriptor{Digest: desc.Digest, Size: fi.Size()})
	return verifiedFile{vr, f}, nil
}

type verifiedFile struct {
	*content.VerifyReader
	f *os.File
}

func (v verifiedFile) Close() error { return v.f.Close() }

// Exists reports whether the blob is stored.
func (s *Store) Exists(ctx context.Context, desc ocispec.Descriptor) (bool, error) {
	if err := content.CheckDigest(desc.Digest); err != nil {
		return false, nil
	}
	_, err := os.Stat(s.blobPath(desc.Digest))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("exists %s: %w", desc.Digest, err)
	}
	return true, nil
}

// Stat returns the digest and size of a stored blob.
func (s *Store) Stat(ctx context.Context, dgst digest.Digest) (ocispec.Descriptor, error) {
	if err := content.CheckDigest(dgst); err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("stat: %w", err)
	}
	fi, err := os.Stat(s.blobPath(dgst))
	if errors.Is(err, fs.ErrNotExist) {
		return ocispec.Descriptor{}, fmt.Errorf("stat: %w", &errdef.NotFoundError{What: errdef.WhatBlob, Name: string(dgst), In: s.dir})
	}
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("stat %s: %w", dgst, err)
	}
	return ocispec.Descriptor{MediaType: "application/octet-stream", Digest: dgst, Size: fi.Size()}, nil
}

// Delete removes a blob; index.json is left as it is.
func (s *Store) Delete(ctx context.Context, dgst digest.Digest) error {
	if err := content.CheckDigest(dgst); err != nil {
		return fmt.Errorf("delete: %w", err)
	}
	err := os.Remove(s.blobPath(dgst))
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("delete: %w", &errdef.NotFoundError{What: errdef.WhatBlob, Name: string(dgst), In: s.dir})
	}
	if err != nil {
		return fmt.Errorf("delete %s: %w", dgst, err)
	}
	return nil
}

// blobFile is one file found under blobs/.
type blobFile struct {
	desc ocispec.Descriptor
	path string
	info fs.FileInfo
}

// walkBlobs lists the regular files under blobs/ whose names are valid
// digests of a supported algorithm; anything else is skipped.
func (s *Store) walkBlobs(ctx context.Context, fn func(b blobFile) error) error {
	root := s.path(blobsDir)
	algs, err := os.ReadDir(root)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("walk blobs of %s: %w", s.dir, err)
	}
	for _, a := range algs {
		if !a.IsDir() {
			continue
		}
		alg := digest.Algorithm(a.Name())
		if !alg.Available() {
			continue
		}
		dir := filepath.Join(root, a.Name())
		ents, err := os.ReadDir(dir)
		if err != nil {
			return fmt.Errorf("walk blobs of %s: %w", s.dir, err)
		}
		for _, e := range ents {
			if err := ctx.Err(); err != nil {
				return err
			}
			d := digest.NewDigestFromEncoded(alg, e.Name())
			if d.Validate() != nil || !e.Type().IsRegular() {
				continue
			}
			info, err := e.Info()
			if errors.Is(err, fs.ErrNotExist) {
				continue // removed meanwhile
			}
			if err != nil {
				return fmt.Errorf("walk blobs of %s: %w", s.dir, err)
			}
			b := blobFile{
				desc: ocispec.Descriptor{MediaType: "application/octet-stream", Digest: d, Size: info.Size()},
				path: filepath.Join(dir, e.Name()),
				info: info,
			}
			if err := fn(b); err != nil {
				return err
			}
		}
	}
	return nil
}

// Blobs calls fn for every blob under blobs/ whose name is a valid digest.
func (s *Store) Blobs(ctx context.Context, fn func(desc ocispec.Descriptor) error) error {
	return s.walkBlobs(ctx, func(b blobFile) error { return fn(b.desc) })
}
