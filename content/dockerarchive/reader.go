package dockerarchive

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"

	"github.com/lading-oci/lading/content"
	"github.com/lading-oci/lading/errdef"
	"github.com/lading-oci/lading/image"
	"github.com/lading-oci/lading/internal/archive"
	"github.com/lading-oci/lading/layer"
	"github.com/lading-oci/lading/ref"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Reader is a docker-archive open for reading. It implements the read
// roles of content.Store (Fetch, Exists, Stat, Resolve, Tags) over the
// images of manifest.json and is safe for concurrent use. It is a
// content.TagStore whose Push and Tag refuse with errdef.ErrUnsupported, so
// it can stand wherever a source store is taken.
type Reader struct {
	f     *archive.File
	items []ManifestItem

	mu     sync.Mutex
	images []*loaded // by item; nil until loaded
	errs   []error   // by item: why it could not be loaded
	blobs  map[digest.Digest]*blob
}

var (
	_ content.TagStore        = (*Reader)(nil)
	_ content.ReadOnlyStorage = (*Reader)(nil)
	_ content.Resolver        = (*Reader)(nil)
	_ content.TagLister       = (*Reader)(nil)
	_ content.Stater          = (*Reader)(nil)
)

// loaded is one image of the archive as a manifest.
type loaded struct {
	desc     ocispec.Descriptor // of the manifest
	manifest []byte
	tags     []string // normalised
}

// blob is something Fetch serves: bytes in memory, or an archive member.
type blob struct {
	desc   ocispec.Descriptor
	data   []byte
	member *archive.Member
}

func decompress(r io.Reader) (io.ReadCloser, error) {
	rc, _, err := layer.Decompress(r)
	return rc, err
}

// Open opens the docker-archive at path and reads its manifest.json. A
// missing file matches errdef.ErrNotFound; a file that is not a
// docker-archive, or a malformed or hostile one, errdef.ErrInvalid,
// errdef.ErrUnsafePath or errdef.ErrTooLarge, with the member named. Images
// are checked when first resolved.
func Open(ctx context.Context, path string) (*Reader, error) {
	f, err := archive.OpenFile(ctx, path, decompress)
	if err != nil {
		return nil, err
	}
	r := &Reader{f: f, blobs: make(map[digest.Digest]*blob)}
	data, err := f.ReadAll(manifestFile, MaxManifestBytes)
	if err == nil {
		r.items, err = ParseManifest(data)
	} else if errors.Is(err, errdef.ErrNotFound) {
		hint := ""
		if _, ok := f.Member("oci-layout"); ok {
			hint = " (it has an oci-layout: an oci-archive?)"
		}
		err = fmt.Errorf("%w: no %s member: not a docker-archive%s", errdef.ErrInvalid, manifestFile, hint)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("docker-archive %s: %w", path, err)
	}
	r.images = make([]*loaded, len(r.items))
	r.errs = make([]error, len(r.items))
	return r, nil
}

// Path returns the archive file.
func (r *Reader) Path() string { return r.f.Path }

// Close releases the archive file.
func (r *Reader) Close() error { return r.f.Close() }

// Items returns the entries of manifest.json.
func (r *Reader) Items() []ManifestItem { return r.items }

// Image returns the manifest descriptor of the i-th image of manifest.json
// (its platform taken from the config), loading and checking the image.
func (r *Reader) Image(ctx context.Context, i int) (ocispec.Descriptor, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	l, err := r.loadLocked(ctx, i)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	return l.desc, nil
}

// Select returns the manifest descriptor of the image a docker-archive
// reference names: by REPO:TAG, by index (docker-archive:FILE:@N), or,
// with neither, the archive's only image.
func (r *Reader) Select(ctx context.Context, sel ref.Reference) (ocispec.Descriptor, error) {
	if i, ok := sel.SourceIndex(); ok {
		return r.Resolve(ctx, "@"+strconv.Itoa(i))
	}
	if sel.Name() != "" {
		return r.Resolve(ctx, sel.Name()+":"+sel.Tag())
	}
	switch len(r.items) {
	case 1:
		return r.Image(ctx, 0)
	case 0:
		return ocispec.Descriptor{}, fmt.Errorf("docker-archive %s: %w: the archive holds no images", r.f.Path, errdef.ErrNotFound)
	}
	var names []string
	for _, it := range r.items {
		names = append(names, it.RepoTags...)
	}
	return ocispec.Descriptor{}, fmt.Errorf("docker-archive %s: %w: the archive holds %d images; name one with :REPO:TAG or :@N (tags: %s)",
		r.f.Path, errdef.ErrInvalid, len(r.items), strings.Join(names, ", "))
}

// Resolve finds the manifest descriptor for a repo tag ("busybox:latest",
// compared after normalisation), an index "@N", or a digest of a manifest,
// config or layer of the archive.
func (r *Reader) Resolve(ctx context.Context, reference string) (ocispec.Descriptor, error) {
	if n, ok := strings.CutPrefix(reference, "@"); ok {
		i, err := strconv.Atoi(n)
		if err != nil || i < 0 || strconv.Itoa(i) != n {
			return ocispec.Descriptor{}, fmt.Errorf("resolve %q: %w: want @N with N a non-negative number", reference, errdef.ErrInvalid)
		}
		if i >= len(r.items) {
			return ocispec.Descriptor{}, fmt.Errorf("resolve %q in %s: %w: the archive holds %d images", reference, r.f.Path, errdef.ErrNotFound, len(r.items))
		}
		return r.Image(ctx, i)
	}
	if d, err := digest.Parse(reference); err == nil {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.loadAllLocked(ctx)
		b, ok := r.blobs[d]
		if !ok {
			return ocispec.Descriptor{}, fmt.Errorf("resolve %q in %s: %w", reference, r.f.Path, errdef.ErrNotFound)
		}
		return b.desc, nil
	}
	want, err := ParseRepoTag(reference)
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("resolve %q in %s: %w: neither a repo tag, @N nor a digest", reference, r.f.Path, errdef.ErrNotFound)
	}
	for i, it := range r.items {
		for _, t := range it.RepoTags {
			if got, err := ParseRepoTag(t); err == nil && got == want {
				return r.Image(ctx, i)
			}
		}
	}
	return ocispec.Descriptor{}, fmt.Errorf("resolve %q in %s: %w", reference, r.f.Path, errdef.ErrNotFound)
}

// Tags passes the repo tags of the archive, normalised
// ("docker.io/library/busybox:latest") and sorted, to fn in pages.
func (r *Reader) Tags(ctx context.Context, fn func(tags []string) error) error {
	var tags []string
	for _, it := range r.items {
		for _, t := range it.RepoTags {
			if p, err := ParseRepoTag(t); err == nil {
				tags = append(tags, fullName(p))
			}
		}
	}
	return content.ListTags(tags, fn)
}

func (r *Reader) loadAllLocked(ctx context.Context) {
	for i := range r.items {
		r.loadLocked(ctx, i)
	}
}

// loadLocked builds the manifest of image i and records its blobs.
func (r *Reader) loadLocked(ctx context.Context, i int) (*loaded, error) {
	if l := r.images[i]; l != nil {
		return l, nil
	}
	if err := r.errs[i]; err != nil {
		return nil, err
	}
	l, blobs, err := r.build(ctx, i)
	if err != nil {
		err = fmt.Errorf("docker-archive %s: image %d (%s): %w", r.f.Path, i, strings.Join(r.items[i].RepoTags, ", "), err)
		if ctx.Err() == nil {
			r.errs[i] = err
		}
		return nil, err
	}
	r.images[i] = l
	for _, b := range blobs {
		if _, ok := r.blobs[b.desc.Digest]; !ok {
			r.blobs[b.desc.Digest] = b
		}
	}
	return l, nil
}

// dockerDescriptor is a descriptor with the fields, and in the order, of
// Docker schema 2.
type dockerDescriptor struct {
	MediaType string        `json:"mediaType"`
	Size      int64         `json:"size"`
	Digest    digest.Digest `json:"digest"`
	URLs      []string      `json:"urls,omitempty"`
}

type dockerManifest struct {
	SchemaVersion int                `json:"schemaVersion"`
	MediaType     string             `json:"mediaType"`
	Config        dockerDescriptor   `json:"config"`
	Layers        []dockerDescriptor `json:"layers"`
}

// imageConfig has the fields of a config the archive needs.
type imageConfig struct {
	OS           string `json:"os"`
	Architecture string `json:"architecture"`
	Variant      string `json:"variant"`
	RootFS       struct {
		DiffIDs []digest.Digest `json:"diff_ids"`
	} `json:"rootfs"`
}

func (r *Reader) build(ctx context.Context, i int) (*loaded, []*blob, error) {
	it := r.items[i]
	cfgData, err := r.f.ReadAll(it.Config, content.DefaultMaxMetadataBytes)
	if err != nil {
		return nil, nil, fmt.Errorf("config: %w", err)
	}
	var cfg imageConfig
	if err := json.Unmarshal(cfgData, &cfg); err != nil {
		return nil, nil, fmt.Errorf("config %q: %w: %v", it.Config, errdef.ErrInvalid, err)
	}
	if len(cfg.RootFS.DiffIDs) != len(it.Layers) {
		return nil, nil, fmt.Errorf("config %q: %w: %d diff_ids for %d layers in %s", it.Config, errdef.ErrInvalid, len(cfg.RootFS.DiffIDs), len(it.Layers), manifestFile)
	}
	cfgBlob := &blob{desc: ocispec.Descriptor{MediaType: image.MediaTypeDockerConfig, Digest: digest.FromBytes(cfgData), Size: int64(len(cfgData))}, data: cfgData}
	blobs := []*blob{cfgBlob}
	m := dockerManifest{
		SchemaVersion: 2,
		MediaType:     image.MediaTypeDockerManifest,
		Config:        dockerDescriptor{MediaType: cfgBlob.desc.MediaType, Size: cfgBlob.desc.Size, Digest: cfgBlob.desc.Digest},
		Layers:        []dockerDescriptor{},
	}
	for j, name := range it.Layers {
		if err := ctx.Err(); err != nil {
			return nil, nil, err
		}
		diffID := cfg.RootFS.DiffIDs[j]
		if err := content.CheckDigest(diffID); err != nil {
			return nil, nil, fmt.Errorf("config %q: rootfs.diff_ids[%d]: %w", it.Config, j, err)
		}
		b, err := r.layerBlob(name, diffID, it.LayerSources[diffID])
		if err != nil {
			return nil, nil, fmt.Errorf("layer %d: %w", j, err)
		}
		blobs = append(blobs, b)
		m.Layers = append(m.Layers, dockerDescriptor{MediaType: b.desc.MediaType, Size: b.desc.Size, Digest: b.desc.Digest, URLs: b.desc.URLs})
	}
	data, err := json.Marshal(m)
	if err != nil {
		return nil, nil, err
	}
	l := &loaded{manifest: data}
	l.desc = ocispec.Descriptor{MediaType: image.MediaTypeDockerManifest, Digest: digest.FromBytes(data), Size: int64(len(data))}
	if cfg.OS != "" && cfg.Architecture != "" {
		l.desc.Platform = &ocispec.Platform{OS: cfg.OS, Architecture: cfg.Architecture, Variant: cfg.Variant}
	}
	for _, t := range it.RepoTags {
		if p, err := ParseRepoTag(t); err == nil {
			l.tags = append(l.tags, fullName(p))
		}
	}
	blobs = append(blobs, &blob{desc: l.desc, data: data})
	return l, blobs, nil
}

// layerBlob describes the layer stored in member name: its compression from
// its first bytes, its digest from its name (blobs/<alg>/<hex>), the
// diff_id (uncompressed) or by hashing it. A missing member with a foreign
// source in manifest.json becomes that foreign descriptor.
func (r *Reader) layerBlob(name string, diffID digest.Digest, foreign ocispec.Descriptor) (*blob, error) {
	m, err := r.f.Lookup(name)
	if errors.Is(err, errdef.ErrNotFound) && foreign.Digest != "" && len(foreign.URLs) > 0 {
		return &blob{desc: ocispec.Descriptor{MediaType: foreign.MediaType, Digest: foreign.Digest, Size: foreign.Size, URLs: foreign.URLs}}, nil
	}
	if err != nil {
		return nil, err
	}
	head := make([]byte, 4)
	n, _ := r.f.Open(m).ReadAt(head, 0)
	c := layer.Detect(bufio.NewReader(bytes.NewReader(head[:n])))
	b := &blob{member: m, desc: ocispec.Descriptor{Size: m.Size}}
	switch c {
	case image.CompressionGzip:
		b.desc.MediaType = image.MediaTypeDockerLayer
	case image.CompressionZstd:
		b.desc.MediaType = image.MediaTypeDockerLayerZstd
	default:
		b.desc.MediaType = image.MediaTypeDockerLayerUncompressed
		b.desc.Digest = diffID
		return b, nil
	}
	if d, ok := digestOfName(m.Name); ok {
		b.desc.Digest = d
		return b, nil
	}
	h := digest.Canonical.Digester()
	if _, err := io.Copy(h.Hash(), r.f.Open(m)); err != nil {
		return nil, fmt.Errorf("read member %q: %w", m.Name, err)
	}
	b.desc.Digest = h.Digest()
	return b, nil
}

// digestOfName returns the digest a member name blobs/<alg>/<hex> stands for.
func digestOfName(name string) (digest.Digest, bool) {
	rest, ok := strings.CutPrefix(name, "blobs/")
	if !ok {
		return "", false
	}
	alg, enc, ok := strings.Cut(rest, "/")
	if !ok {
		return "", false
	}
	d := digest.NewDigestFromEncoded(digest.Algorithm(alg), enc)
	return d, d.Validate() == nil
}

func (r *Reader) blob(ctx context.Context, op string, d digest.Digest) (*blob, error) {
	if err := content.CheckDigest(d); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	b, ok := r.blobs[d]
	if !ok {
		r.loadAllLocked(ctx)
		b, ok = r.blobs[d]
	}
	if !ok {
		return nil, fmt.Errorf("%s %s: %w in %s", op, d, errdef.ErrNotFound, r.f.Path)
	}
	return b, nil
}

// Fetch returns a reader of a manifest, config or layer of the archive,
// verified against its digest as it is read. A foreign layer the archive
// does not hold matches errdef.ErrNotFound.
func (r *Reader) Fetch(ctx context.Context, desc ocispec.Descriptor) (io.ReadCloser, error) {
	b, err := r.blob(ctx, "fetch", desc.Digest)
	if err != nil {
		return nil, err
	}
	if desc.Size != b.desc.Size {
		return nil, fmt.Errorf("fetch %s: %w: the archive's blob has %d bytes, the descriptor says %d", desc.Digest, errdef.ErrSizeMismatch, b.desc.Size, desc.Size)
	}
	switch {
	case b.data != nil:
		return io.NopCloser(bytes.NewReader(b.data)), nil
	case b.member != nil:
		return io.NopCloser(content.NewVerifyReader(r.f.Open(b.member), b.desc)), nil
	}
	return nil, fmt.Errorf("fetch %s: %w in %s: a foreign layer, to be fetched from %s", desc.Digest, errdef.ErrNotFound, r.f.Path, strings.Join(b.desc.URLs, ", "))
}

// Exists reports whether the archive holds the blob.
func (r *Reader) Exists(ctx context.Context, desc ocispec.Descriptor) (bool, error) {
	if content.CheckDigest(desc.Digest) != nil {
		return false, nil
	}
	b, err := r.blob(ctx, "exists", desc.Digest)
	if errors.Is(err, errdef.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return b.data != nil || b.member != nil, nil
}

// Stat returns the digest and size of a blob of the archive.
func (r *Reader) Stat(ctx context.Context, dgst digest.Digest) (ocispec.Descriptor, error) {
	b, err := r.blob(ctx, "stat", dgst)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	return ocispec.Descriptor{MediaType: "application/octet-stream", Digest: dgst, Size: b.desc.Size}, nil
}

// Push refuses: a Reader is a read-only view of an archive. Write a new
// archive with Create.
func (r *Reader) Push(ctx context.Context, expected ocispec.Descriptor, _ io.Reader) error {
	return fmt.Errorf("push %s to %s: %w: the docker-archive is open for reading; a new archive is written with Create", expected.Digest, r.f.Path, errdef.ErrUnsupported)
}

// Tag refuses: a Reader is a read-only view of an archive.
func (r *Reader) Tag(ctx context.Context, desc ocispec.Descriptor, tag string) error {
	return fmt.Errorf("tag %q in %s: %w: the docker-archive is open for reading; a new archive is written with Create", tag, r.f.Path, errdef.ErrUnsupported)
}
