// Package ociarchive reads and writes oci-archive files: an OCI image layout
// (oci-layout, index.json, blobs/<alg>/<encoded>) kept in one tar file, as
// skopeo and buildah write it for oci-archive:FILE[:TAG] references.
//
// Open indexes the archive once from its tar headers and then serves blobs
// straight from the file with io.SectionReader; nothing is extracted. Every
// blob read is verified against its digest and size. An archive compressed
// with gzip or zstd as a whole is decompressed once into an unnamed
// temporary file first (as skopeo accepts such files too); bzip2 and xz are
// refused.
//
// Create writes a new archive: blobs are streamed into the tar as they are
// pushed (their sizes are known from the descriptors) and verified on the
// way; index.json is written by Commit (or Close), which then gives the file
// its name atomically. Until then the data lives in a temporary file in the
// same directory that has no name where the file system allows it, so a
// failed or abandoned write leaves nothing behind and never damages an
// existing file.
//
// Tags are the org.opencontainers.image.ref.name annotations of the
// descriptors in index.json, as in an OCI image layout directory.
package ociarchive

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/lading-oci/lading/content"
	"github.com/lading-oci/lading/errdef"
	"github.com/lading-oci/lading/image"
	"github.com/lading-oci/lading/internal/archive"
	"github.com/lading-oci/lading/layer"
	"github.com/lading-oci/lading/ref"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

const (
	layoutFile = ocispec.ImageLayoutFile // "oci-layout"
	indexFile  = "index.json"
	blobsDir   = ocispec.ImageBlobsDir // "blobs"
	// maxIndexBytes caps index.json, which grows with the number of tags.
	maxIndexBytes = 64 << 20
	// maxLayoutBytes caps the oci-layout file.
	maxLayoutBytes = 1 << 20
)

// Reader is an oci-archive open for reading. It implements the read roles
// of content.Store (Fetch, Exists, Stat, Blobs, Resolve, Tags) and is safe
// for concurrent use. It is a content.TagStore whose Push and Tag refuse
// with errdef.ErrUnsupported, so it can stand wherever a source store is
// taken.
type Reader struct {
	f     *archive.File
	index ocispec.Index
}

var (
	_ content.TagStore        = (*Reader)(nil)
	_ content.ReadOnlyStorage = (*Reader)(nil)
	_ content.Resolver        = (*Reader)(nil)
	_ content.TagLister       = (*Reader)(nil)
	_ content.Stater          = (*Reader)(nil)
	_ content.BlobLister      = (*Reader)(nil)
)

// decompress is the archive.Decompressor for whole-archive compression.
func decompress(r io.Reader) (io.ReadCloser, error) {
	rc, _, err := layer.Decompress(r)
	return rc, err
}

// Open opens the oci-archive at path. A missing file matches
// errdef.ErrNotFound; a file that is not an OCI layout archive, or is a
// malformed or hostile tar, errdef.ErrInvalid or errdef.ErrUnsafePath with
// the member named.
func Open(ctx context.Context, path string) (*Reader, error) {
	f, err := archive.OpenFile(ctx, path, decompress)
	if err != nil {
		return nil, err
	}
	r := &Reader{f: f}
	if err := r.load(); err != nil {
		f.Close()
		return nil, fmt.Errorf("oci-archive %s: %w", path, err)
	}
	return r, nil
}

func (r *Reader) load() error {
	data, err := r.f.ReadAll(layoutFile, maxLayoutBytes)
	if errors.Is(err, errdef.ErrNotFound) {
		hint := ""
		if _, ok := r.f.Member("manifest.json"); ok {
			hint = " (it has a manifest.json: a docker-archive?)"
		}
		return fmt.Errorf("%w: no %s member: not an OCI image layout archive%s", errdef.ErrInvalid, layoutFile, hint)
	}
	if err != nil {
		return err
	}
	if err := checkLayout(data); err != nil {
		return err
	}
	data, err = r.f.ReadAll(indexFile, maxIndexBytes)
	if err != nil {
		return err
	}
	idx, err := decodeIndex(data)
	if err != nil {
		return err
	}
	r.index = idx
	return nil
}

// checkLayout accepts an oci-layout header of any 1.x version.
func checkLayout(data []byte) error {
	var hdr struct {
		Version *string `json:"imageLayoutVersion"`
	}
	if err := json.Unmarshal(data, &hdr); err != nil {
		return fmt.Errorf("%s: %w: %v", layoutFile, errdef.ErrInvalid, err)
	}
	if hdr.Version == nil {
		return fmt.Errorf("%s: %w: no imageLayoutVersion", layoutFile, errdef.ErrInvalid)
	}
	if !strings.HasPrefix(*hdr.Version, "1.") {
		return fmt.Errorf("%s: %w: imageLayoutVersion %q is not 1.x", layoutFile, errdef.ErrUnsupported, *hdr.Version)
	}
	return nil
}

// decodeIndex reads index.json leniently (unknown media types and fields
// are kept), as an OCI layout directory's is read.
func decodeIndex(data []byte) (ocispec.Index, error) {
	var idx ocispec.Index
	if err := json.Unmarshal(data, &idx); err != nil {
		return idx, fmt.Errorf("%s: %w: %v", indexFile, errdef.ErrInvalid, err)
	}
	if idx.SchemaVersion != 2 {
		return idx, fmt.Errorf("%s: %w: schemaVersion %d, want 2", indexFile, errdef.ErrInvalid, idx.SchemaVersion)
	}
	return idx, nil
}

// blobName is the member that holds the blob named d.
func blobName(d digest.Digest) string {
	return path.Join(blobsDir, d.Algorithm().String(), d.Encoded())
}

// Path returns the archive file.
func (r *Reader) Path() string { return r.f.Path }

// Index returns the archive's index.json.
func (r *Reader) Index(ctx context.Context) (ocispec.Index, error) {
	idx := r.index
	idx.Manifests = append([]ocispec.Descriptor(nil), r.index.Manifests...)
	return idx, nil
}

func (r *Reader) member(op string, d digest.Digest) (*archive.Member, error) {
	if err := content.CheckDigest(d); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	m, err := r.f.Lookup(blobName(d))
	if errors.Is(err, errdef.ErrNotFound) {
		return nil, fmt.Errorf("%s %s: %w in %s", op, d, errdef.ErrNotFound, r.f.Path)
	}
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", op, d, err)
	}
	return m, nil
}

// Fetch returns a reader of the blob that verifies it: it fails at the end
// with errdef.ErrDigestMismatch if the member does not hash to its name.
// A descriptor whose size differs from the member's is refused with
// errdef.ErrSizeMismatch.
func (r *Reader) Fetch(ctx context.Context, desc ocispec.Descriptor) (io.ReadCloser, error) {
	m, err := r.member("fetch", desc.Digest)
	if err != nil {
		return nil, err
	}
	if desc.Size != m.Size {
		return nil, fmt.Errorf("fetch %s: %w: the archive's member has %d bytes, the descriptor says %d", desc.Digest, errdef.ErrSizeMismatch, m.Size, desc.Size)
	}
	vr := content.NewVerifyReader(r.f.Open(m), ocispec.Descriptor{Digest: desc.Digest, Size: m.Size})
	return io.NopCloser(vr), nil
}

// Exists reports whether the archive holds the blob.
func (r *Reader) Exists(ctx context.Context, desc ocispec.Descriptor) (bool, error) {
	if content.CheckDigest(desc.Digest) != nil {
		return false, nil
	}
	_, err := r.member("exists", desc.Digest)
	if errors.Is(err, errdef.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// Stat returns the digest and size of a blob in the archive.
func (r *Reader) Stat(ctx context.Context, dgst digest.Digest) (ocispec.Descriptor, error) {
	m, err := r.member("stat", dgst)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	return ocispec.Descriptor{MediaType: "application/octet-stream", Digest: dgst, Size: m.Size}, nil
}

// Blobs calls fn for every member under blobs/ whose name is a digest.
func (r *Reader) Blobs(ctx context.Context, fn func(desc ocispec.Descriptor) error) error {
	for _, n := range r.f.Names() {
		d, ok := digestOf(n)
		if !ok {
			continue
		}
		m, err := r.f.Lookup(n)
		if err != nil {
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(ocispec.Descriptor{MediaType: "application/octet-stream", Digest: d, Size: m.Size}); err != nil {
			return err
		}
	}
	return nil
}

// digestOf returns the digest a member name blobs/<alg>/<encoded> stands for.
func digestOf(name string) (digest.Digest, bool) {
	rest, ok := strings.CutPrefix(name, blobsDir+"/")
	if !ok {
		return "", false
	}
	alg, enc, ok := strings.Cut(rest, "/")
	if !ok {
		return "", false
	}
	d := digest.NewDigestFromEncoded(digest.Algorithm(alg), enc)
	if d.Validate() != nil {
		return "", false
	}
	return d, true
}

// Tags passes the distinct ref names of index.json, sorted, to fn in pages.
func (r *Reader) Tags(ctx context.Context, fn func(tags []string) error) error {
	return content.ListTags(tagsOf(r.index.Manifests), fn)
}

// Resolve finds the descriptor for a tag (an index.json ref name) or a
// digest: its entry in index.json or in an index reachable from it, or else
// the blob, with the media type its JSON names if it is a small document.
func (r *Reader) Resolve(ctx context.Context, reference string) (ocispec.Descriptor, error) {
	d, err := resolve(ctx, r, r.index.Manifests, reference)
	if err != nil {
		return d, fmt.Errorf("resolve %q in %s: %w", reference, r.f.Path, err)
	}
	return d, nil
}

// Select returns the descriptor an oci-archive reference names: its digest,
// else its tag, else the archive's only image, else the one tagged
// "latest" (the rules of skopeo's oci-archive:FILE).
func (r *Reader) Select(ctx context.Context, sel ref.Reference) (ocispec.Descriptor, error) {
	switch {
	case sel.Digest() != "":
		return r.Resolve(ctx, sel.Digest().String())
	case sel.Tag() != "":
		return r.Resolve(ctx, sel.Tag())
	}
	switch len(r.index.Manifests) {
	case 0:
		return ocispec.Descriptor{}, fmt.Errorf("oci-archive %s: %w: the archive holds no images", r.f.Path, errdef.ErrNotFound)
	case 1:
		return r.index.Manifests[0], nil
	}
	if d, err := r.Resolve(ctx, "latest"); err == nil {
		return d, nil
	}
	return ocispec.Descriptor{}, fmt.Errorf("oci-archive %s: %w: the archive holds %d images; name one with :TAG or @DIGEST (tags: %s)",
		r.f.Path, errdef.ErrInvalid, len(r.index.Manifests), strings.Join(tagsOf(r.index.Manifests), ", "))
}

// Close releases the archive file.
func (r *Reader) Close() error {
	return r.f.Close()
}

func refName(d ocispec.Descriptor) string {
	return d.Annotations[ocispec.AnnotationRefName]
}

func tagsOf(descs []ocispec.Descriptor) []string {
	var tags []string
	for _, d := range descs {
		if t := refName(d); t != "" {
			tags = append(tags, t)
		}
	}
	return tags
}

// store is what resolve reads through.
type store interface {
	content.Fetcher
	content.Stater
}

// resolve is Resolve over the entries of an index.json.
func resolve(ctx context.Context, s store, entries []ocispec.Descriptor, reference string) (ocispec.Descriptor, error) {
	for i := len(entries) - 1; i >= 0; i-- {
		if refName(entries[i]) == reference {
			return entries[i], nil
		}
	}
	dgst, err := digest.Parse(reference)
	if err != nil {
		return ocispec.Descriptor{}, errdef.ErrNotFound
	}
	if d, ok := findInIndexes(ctx, s, entries, dgst); ok {
		return d, nil
	}
	st, err := s.Stat(ctx, dgst)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	if st.Size <= content.DefaultMaxMetadataBytes {
		if data, err := content.ReadAll(ctx, s, st, 0); err == nil {
			if mt := image.MediaTypeOf(data); mt != "" {
				st.MediaType = mt
			}
		}
	}
	return st, nil
}

// findInIndexes looks for dgst among descs and, breadth first, in the
// indexes they lead to.
func findInIndexes(ctx context.Context, s store, descs []ocispec.Descriptor, dgst digest.Digest) (ocispec.Descriptor, bool) {
	seen := map[digest.Digest]bool{}
	for len(descs) > 0 && ctx.Err() == nil {
		var next []ocispec.Descriptor
		for _, d := range descs {
			if d.Digest == dgst {
				return d, true
			}
		}
		for _, d := range descs {
			if !image.IsIndex(d.MediaType) || seen[d.Digest] {
				continue
			}
			seen[d.Digest] = true
			data, err := content.ReadAll(ctx, s, d, 0)
			if err != nil {
				continue
			}
			var child ocispec.Index
			if json.Unmarshal(data, &child) == nil {
				next = append(next, child.Manifests...)
			}
		}
		descs = next
	}
	return ocispec.Descriptor{}, false
}

// Push refuses: a Reader is a read-only view of an archive. Write a new
// archive with Create.
func (r *Reader) Push(ctx context.Context, expected ocispec.Descriptor, _ io.Reader) error {
	return fmt.Errorf("push %s to %s: %w: the oci-archive is open for reading; a new archive is written with Create", expected.Digest, r.f.Path, errdef.ErrUnsupported)
}

// Tag refuses: a Reader is a read-only view of an archive.
func (r *Reader) Tag(ctx context.Context, desc ocispec.Descriptor, tag string) error {
	return fmt.Errorf("tag %q in %s: %w: the oci-archive is open for reading; a new archive is written with Create", tag, r.f.Path, errdef.ErrUnsupported)
}
