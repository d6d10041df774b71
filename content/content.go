// Package content defines the roles of a content-addressed store — fetch,
// push, stat, ingest (resumable writes), delete, walk, and tags — and the
// helpers built on them: verified reads, capped metadata reads, and graph
// walks over indexes and manifests.
//
// Every blob is named by its descriptor (digest, size, media type). Every
// implementation verifies digest and size on write, and the helpers here let
// callers verify them on read.
package content

import (
	"context"
	"io"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Fetcher reads a blob. The returned reader is not verified; wrap it with
// NewVerifyReader (or use ReadAll) where the bytes must be checked.
// A missing blob is an error matching errdef.ErrNotFound.
type Fetcher interface {
	Fetch(ctx context.Context, desc ocispec.Descriptor) (io.ReadCloser, error)
}

// Pusher writes a blob whose digest and size are known in advance. It reads r
// to the end, verifying both; on a mismatch nothing is stored and the error
// matches errdef.ErrDigestMismatch or errdef.ErrSizeMismatch. Pushing a blob
// that already exists is not an error (content is deduplicated); the
// implementation may skip reading r in that case.
type Pusher interface {
	Push(ctx context.Context, expected ocispec.Descriptor, r io.Reader) error
}

// Exister reports whether a blob is present.
type Exister interface {
	Exists(ctx context.Context, desc ocispec.Descriptor) (bool, error)
}

// Stater returns the descriptor (digest and size; media type
// application/octet-stream) of a stored blob, or errdef.ErrNotFound.
type Stater interface {
	Stat(ctx context.Context, dgst digest.Digest) (ocispec.Descriptor, error)
}

// Deleter removes a blob. Deleting a missing blob matches errdef.ErrNotFound.
type Deleter interface {
	Delete(ctx context.Context, dgst digest.Digest) error
}

// BlobLister visits every stored blob once, in no particular order. Returning an
// error from fn stops the walk and returns that error.
type BlobLister interface {
	Blobs(ctx context.Context, fn func(desc ocispec.Descriptor) error) error
}

// Ingester opens writers for blobs whose digest may not be known until the
// end, such as chunked registry uploads. An ingest is named by a ref: an
// empty ref starts a new ingest with a fresh ref; the ref of an unfinished
// ingest resumes it at its current offset.
type Ingester interface {
	Ingest(ctx context.Context, ref string) (Writer, error)
}

// Writer appends to an ingest.
//
// Close releases the writer without ending the ingest, so it can be resumed
// by its ref. Commit verifies and publishes the blob; Abort discards it.
type Writer interface {
	io.Writer
	io.Closer
	// Ref names the ingest, for resuming.
	Ref() string
	// Offset is the number of bytes written so far.
	Offset() int64
	// Commit checks that the content has the expected digest and, if size is
	// not negative, that many bytes, and then makes it available under that
	// digest. A blob already stored under the digest is kept as it is. The
	// ingest ends either way; on a mismatch the data is discarded and the error
	// matches errdef.ErrDigestMismatch or errdef.ErrSizeMismatch.
	Commit(ctx context.Context, size int64, expected digest.Digest) (ocispec.Descriptor, error)
	// Abort discards the ingest.
	Abort(ctx context.Context) error
}

// Resolver turns a reference (a tag, or a digest in string form) into the
// descriptor it points at, or errdef.ErrNotFound.
type Resolver interface {
	Resolve(ctx context.Context, reference string) (ocispec.Descriptor, error)
}

// Tagger points tag at desc, replacing what the tag pointed at before.
type Tagger interface {
	Tag(ctx context.Context, desc ocispec.Descriptor, tag string) error
}

// Untagger removes a tag; the content it pointed at stays until garbage
// collection. A missing tag matches errdef.ErrNotFound.
type Untagger interface {
	Untag(ctx context.Context, tag string) error
}

// TagLister lists tags in lexical order, in pages passed to fn.
type TagLister interface {
	Tags(ctx context.Context, fn func(tags []string) error) error
}

// ReferrerLister lists the manifests and indexes whose subject is subject
// (the distribution spec's referrers), optionally only those of an
// artifact type ("" for all). Each descriptor carries the referrer's
// artifactType and annotations, as the referrers API gives them.
type ReferrerLister interface {
	Referrers(ctx context.Context, subject ocispec.Descriptor, artifactType string) ([]ocispec.Descriptor, error)
}

// ReadOnlyStorage reads blobs.
type ReadOnlyStorage interface {
	Fetcher
	Exister
}

// Storage reads and writes blobs.
type Storage interface {
	ReadOnlyStorage
	Pusher
}

// IngestStorage is a storage that also takes blobs whose digest is known
// only once they are written: what building an image needs.
type IngestStorage interface {
	Storage
	Ingester
}

// TagStore is a storage with tags: what an image reference can name.
type TagStore interface {
	Storage
	Resolver
	Tagger
}

// Store is every role: what the embedded OCI layout and the in-memory store
// implement, and what the registry server serves.
type Store interface {
	TagStore
	Stater
	Deleter
	BlobLister
	Ingester
	Untagger
	TagLister
}
