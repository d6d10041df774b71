// Package storage is the storage of lading's registry server: many
// repositories, each of manifests, tags and blobs, plus resumable upload
// sessions, behind one interface (Registry) so that a backend other than the
// filesystem can serve the same HTTP handlers.
//
// # The filesystem layout
//
// FS, the filesystem backend, keeps each repository as an OCI image layout
// under the root, so any OCI tool reads the registry's storage directly
// (skopeo inspect oci:ROOT/REPO:TAG, umoci unpack, lading ls ROOT/REPO):
//
//	ROOT/<repo>/oci-layout
//	ROOT/<repo>/index.json          tags (ref.name annotations) and untagged manifests
//	ROOT/<repo>/blobs/<alg>/<hex>   hard links into the shared store
//	ROOT/.lading/blobs/<alg>/<hex>  the shared store: each blob once
//	ROOT/.lading/uploads/<id>/      upload sessions: data and state
//	ROOT/.lading/pins               the journal of the GC fence
//
// A blob is stored once: a repository's blobs/ holds hard links to the
// shared copy, so the inode's link count tells GC when no repository uses
// it. A repository serves only the blobs in its own blobs/ (given to it by a
// push or a mount), never another repository's.
//
// Repository names follow the distribution specification's grammar, which
// already excludes names starting with "." or "_"; names with a component
// that is an entry of a layout (blobs, index.json, oci-layout, ingest) are
// refused, so no repository can land inside another's layout.
//
// index.json is the source of truth on disk, rewritten atomically (temporary
// file, fsync, rename) under the same flock lading's embedded layout store
// takes, so the CLI and the server can work on one layout. Each repository
// keeps an in-memory copy of its index, checked against the file, and tag
// changes made concurrently are coalesced into one rewrite (group commit).
//
// Garbage collection runs while pushes run: see the fence in fence.go and
// docs/registry-gc.md.
package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/lading-oci/lading/errdef"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Registry is the storage of a registry.
type Registry interface {
	// Repository returns the named repository. If it does not exist, it is
	// created when create is true, else the error matches
	// errdef.ErrNotFound. A bad name matches errdef.ErrInvalid.
	Repository(ctx context.Context, name string, create bool) (Repository, error)
	// Repositories returns up to n repository names (all when n < 0) in
	// lexical order, starting after last.
	Repositories(ctx context.Context, last string, n int) ([]string, error)
	// NewUpload starts an upload session into the named repository, hashing
	// with alg (digest.Canonical when empty).
	NewUpload(ctx context.Context, repo string, alg digest.Algorithm) (Upload, error)
	// Upload resumes the session id of the named repository, waiting while
	// another request uses it. An unknown session matches errdef.ErrNotFound.
	// The caller must Close it.
	Upload(ctx context.Context, repo, id string) (Upload, error)
	// GC removes unreferenced blobs and expired uploads; see GCOptions.
	GC(ctx context.Context, opts GCOptions) (*GCReport, error)
	// ExpireUploads removes upload sessions idle for longer than the
	// configured expiry and returns how many it removed. It is also when
	// the storage forgets what no longer needs protecting from GC.
	ExpireUploads(ctx context.Context) (int, error)
	// Close releases the storage.
	Close() error
}

// Repository is one repository.
type Repository interface {
	// Name returns the repository name.
	Name() string

	// OpenBlob opens a blob of the repository for reading. A blob the
	// repository was not given matches errdef.ErrNotFound.
	OpenBlob(ctx context.Context, d digest.Digest) (*Blob, error)
	// StatBlob returns the descriptor of a blob of the repository and pins
	// it as part of a push in flight (a client asking whether to upload it).
	StatBlob(ctx context.Context, d digest.Digest) (ocispec.Descriptor, error)
	// PushBlob stores r as the blob expected describes (Size may be -1 when
	// unknown), verifying digest and size; on a mismatch nothing is stored.
	PushBlob(ctx context.Context, expected ocispec.Descriptor, r io.Reader) (ocispec.Descriptor, error)
	// MountBlob gives the repository a blob of from without copying it.
	MountBlob(ctx context.Context, d digest.Digest, from Repository) (ocispec.Descriptor, error)
	// DeleteBlob removes a blob from the repository.
	DeleteBlob(ctx context.Context, d digest.Digest) error

	// Manifest returns a manifest by tag or digest, verified against its
	// digest: its descriptor (media type as pushed) and its bytes.
	Manifest(ctx context.Context, reference string) (ocispec.Descriptor, []byte, error)
	// StatManifest returns a manifest's descriptor by tag or digest.
	StatManifest(ctx context.Context, reference string) (ocispec.Descriptor, error)
	// PutManifest stores a manifest and points tags at it; see ManifestPut.
	PutManifest(ctx context.Context, m ManifestPut) error
	// DeleteManifest removes a manifest and every tag pointing at it.
	DeleteManifest(ctx context.Context, d digest.Digest) error
	// Untag removes a tag; the manifest stays.
	Untag(ctx context.Context, tag string) error
	// Tags returns up to n tags (all when n < 0) in lexical order, starting
	// after last.
	Tags(ctx context.Context, last string, n int) ([]string, error)
	// Referrers returns descriptors of the repository's manifests whose
	// subject is d, each once, sorted by digest; if artifactType is not
	// empty, only those of that artifact type.
	Referrers(ctx context.Context, d digest.Digest, artifactType string) ([]ocispec.Descriptor, error)
}

// Blob is an open blob.
type Blob struct {
	// Content reads the blob. For the filesystem backend it is an *os.File,
	// so serving it over HTTP can use sendfile.
	Content io.ReadSeekCloser
	// Desc is the blob's digest and size.
	Desc ocispec.Descriptor
	// ModTime is when the blob was last written.
	ModTime time.Time
}

// Close closes the content.
func (b *Blob) Close() error { return b.Content.Close() }

// ManifestPut is a manifest to store.
type ManifestPut struct {
	// Desc describes the manifest: media type (as pushed), digest, size, and
	// for the referrers API its artifactType (the manifest's artifactType,
	// else for an image manifest its config media type) and annotations.
	Desc ocispec.Descriptor
	// Data is the manifest, stored byte for byte.
	Data []byte
	// Subject is the manifest's subject, if any. It need not exist.
	Subject *ocispec.Descriptor
	// Requires lists the blobs and manifests that must be in the repository
	// (with these sizes) for the manifest to be accepted.
	Requires []ocispec.Descriptor
	// Tags are pointed at the manifest.
	Tags []string
}

// Upload is an upload session. Its state (offset, start time, hash state)
// is on disk once the session is closed after a write, so a restarted
// server resumes it.
type Upload interface {
	// ID names the session.
	ID() string
	// Repository names the repository the blob is for.
	Repository() string
	// Offset is how many bytes the session holds.
	Offset() int64
	// StartedAt is when the session began.
	StartedAt() time.Time
	// Append writes r at the end of the session. start, if not negative,
	// must equal Offset (errors.Is ErrOutOfOrder otherwise); size, if not
	// negative, is how many bytes r must have (errdef.ErrSizeMismatch
	// otherwise, with what was read kept). It returns the new offset; what
	// was written before a failure is kept.
	Append(ctx context.Context, r io.Reader, start, size int64) (int64, error)
	// Commit verifies the content against expected (and size, if not
	// negative), stores the blob in the repository and ends the session. On
	// a mismatch the session ends and nothing is stored.
	Commit(ctx context.Context, expected digest.Digest, size int64) (ocispec.Descriptor, error)
	// Cancel ends the session and discards its data.
	Cancel(ctx context.Context) error
	// Close releases the session for other requests; it stays resumable.
	Close() error
}

// ErrOutOfOrder means a chunk did not start where the upload ended.
var ErrOutOfOrder = fmt.Errorf("%w: chunk out of order", errdef.ErrInvalid)

// ErrReadOnly means the storage was opened read-only.
var ErrReadOnly = fmt.Errorf("%w: storage is read-only", errdef.ErrUnsupported)

// BlobProblem is a blob a manifest requires that the repository cannot
// provide.
type BlobProblem struct {
	Digest digest.Digest
	// Size is set when the stored blob has a size other than the
	// descriptor's (the error then matches errdef.ErrSizeMismatch).
	Size   int64
	Reason string
}

// MissingBlobsError lists the blobs a manifest requires that are not in
// the repository (or not with the size its descriptor gives). It matches
// errdef.ErrNotFound, and errdef.ErrSizeMismatch if a size differs.
type MissingBlobsError struct {
	Manifest digest.Digest
	Blobs    []BlobProblem
}

// Error lists the blobs and why each cannot be used.
func (e *MissingBlobsError) Error() string {
	parts := make([]string, len(e.Blobs))
	for i, b := range e.Blobs {
		parts[i] = string(b.Digest) + ": " + b.Reason
	}
	return fmt.Sprintf("manifest %s: %d blobs it references are unknown to the repository: %s", e.Manifest, len(e.Blobs), strings.Join(parts, "; "))
}

// Is matches errdef.ErrNotFound, and errdef.ErrSizeMismatch when a stored
// size differs.
func (e *MissingBlobsError) Is(target error) bool {
	if target == errdef.ErrNotFound {
		return true
	}
	if target == errdef.ErrSizeMismatch {
		for _, b := range e.Blobs {
			if b.Size != 0 {
				return true
			}
		}
	}
	return false
}

// GCOptions tunes GC.
type GCOptions struct {
	// Grace keeps unreferenced blobs whose file changed more recently than
	// this: a second guard behind the fence, for blobs that reached the
	// storage without going through it. Zero relies on the fence alone.
	Grace time.Duration
	// DryRun reports what would be removed and removes nothing.
	DryRun bool
}

// GCReport is what GC removed (or would remove, in a dry run).
type GCReport struct {
	// Repositories counts the repositories examined.
	Repositories int
	// Links lists the blobs removed from repositories, as "repo@digest".
	Links []string
	// Blobs lists the shared copies removed.
	Blobs []digest.Digest
	// FreedBytes is the size of the shared copies removed.
	FreedBytes int64
	// Uploads counts the expired upload sessions removed.
	Uploads int
	// Kept counts unreferenced blobs kept by the fence or the grace period.
	Kept int
	// Problems lists what could not be examined (an unreadable manifest
	// keeps everything in its repository).
	Problems []string
}

// errNotFound wraps errdef.ErrNotFound with what was missing.
func errNotFound(format string, args ...any) error {
	return fmt.Errorf(format+": %w", append(args, errdef.ErrNotFound)...)
}

var errClosed = errors.New("storage is closed")
