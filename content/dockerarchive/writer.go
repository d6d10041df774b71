package dockerarchive

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"sync"

	"github.com/lading-oci/lading/content"
	"github.com/lading-oci/lading/errdef"
	"github.com/lading-oci/lading/image"
	"github.com/lading-oci/lading/internal/archive"
	"github.com/lading-oci/lading/layer"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// ErrClosed is returned by a Writer used after Commit, Close or Abort.
var ErrClosed = archive.ErrClosed

// Writer writes a new docker-archive. It implements content.Storage (reading
// back what it holds), content.Resolver, content.Tagger and
// content.TagLister, and is safe for concurrent use: blobs are written one
// after the other, and a push that arrives while another is writing reads
// its blob into a temporary file beside the archive meanwhile.
//
// Push takes layers (stored decompressed as <diff_id>.tar), configs
// (stored as <hex>.json) and manifests and indexes (kept in memory: a
// docker-archive has no place for them). Tag, or AddImage, adds a tagged
// manifest's image to manifest.json. Nothing appears at the path until
// Commit (or Close) succeeds.
type Writer struct {
	mu      sync.Mutex
	w       *archive.Writer
	layers  map[digest.Digest]*storedLayer // by pushed digest and by diff_id
	configs map[digest.Digest]*storedConfig
	docs    map[digest.Digest]ocispec.Descriptor // manifests and indexes, with data
	items   []ManifestItem
	byCfg   map[digest.Digest]int         // item of a config
	tagged  map[string]ocispec.Descriptor // normalised repo tag -> manifest
	repos   map[string]map[string]string  // repositories file
	itemTop map[int]digest.Digest         // item -> last layer's diff_id
	path    string
}

type storedLayer struct {
	pushed ocispec.Descriptor // as pushed
	diffID digest.Digest
	member *archive.Member
}

type storedConfig struct {
	desc   ocispec.Descriptor
	data   []byte
	member *archive.Member
}

var (
	_ content.TagStore  = (*Writer)(nil)
	_ content.TagLister = (*Writer)(nil)
	_ content.Stater    = (*Writer)(nil)
)

// Create starts a new docker-archive that Commit writes to path, replacing
// any file there. The directory must exist.
func Create(ctx context.Context, path string) (*Writer, error) {
	aw, err := archive.Create(path)
	if err != nil {
		return nil, err
	}
	return &Writer{
		w:       aw,
		path:    path,
		layers:  make(map[digest.Digest]*storedLayer),
		configs: make(map[digest.Digest]*storedConfig),
		docs:    make(map[digest.Digest]ocispec.Descriptor),
		byCfg:   make(map[digest.Digest]int),
		tagged:  make(map[string]ocispec.Descriptor),
		repos:   make(map[string]map[string]string),
		itemTop: make(map[int]digest.Digest),
	}, nil
}

// Path returns the file the archive is written to.
func (w *Writer) Path() string { return w.path }

// Push stores a blob according to its media type: a layer (any OCI or
// Docker layer type; gzip and zstd content is decompressed on the way),
// an image config, or a manifest or index (kept in memory, capped at
// content.DefaultMaxMetadataBytes). The pushed bytes are verified against
// expected; on a mismatch nothing is kept. Other media types are refused
// with errdef.ErrUnsupported: a docker-archive holds images only.
func (w *Writer) Push(ctx context.Context, expected ocispec.Descriptor, r io.Reader) error {
	if err := content.CheckDigest(expected.Digest); err != nil {
		return fmt.Errorf("push: %w", err)
	}
	if expected.Size < 0 {
		return fmt.Errorf("push %s: %w: negative size %d", expected.Digest, errdef.ErrInvalid, expected.Size)
	}
	if !w.mu.TryLock() {
		// Another push is writing to the archive: read this blob into a
		// temporary file meanwhile (verified when it is stored).
		sr, drop, err := archive.Spill(ctx, filepath.Dir(w.path), io.LimitReader(r, expected.Size+1))
		if err != nil {
			return fmt.Errorf("push %s: %w", expected.Digest, err)
		}
		defer drop()
		r = sr
		w.mu.Lock()
	}
	defer w.mu.Unlock()
	if w.w == nil {
		return ErrClosed
	}
	if d, ok := w.lookupLocked(expected.Digest); ok {
		if d.Size != expected.Size {
			return fmt.Errorf("push %s: %w: stored blob has %d bytes, descriptor says %d", expected.Digest, errdef.ErrSizeMismatch, d.Size, expected.Size)
		}
		return nil
	}
	var err error
	switch mt := expected.MediaType; {
	case image.IsLayer(mt):
		err = w.pushLayerLocked(ctx, expected, r)
	case image.IsConfig(mt):
		err = w.pushConfigLocked(ctx, expected, r)
	case image.IsManifest(mt) || image.IsIndex(mt):
		var data []byte
		data, err = readVerified(ctx, expected, r)
		if err == nil {
			d := expected
			d.Data = data
			w.docs[expected.Digest] = d
		}
	default:
		err = fmt.Errorf("%w: a docker-archive holds images only, not %q blobs", errdef.ErrUnsupported, mt)
	}
	if err != nil {
		return fmt.Errorf("push %s: %w", expected.Digest, err)
	}
	return nil
}

// readVerified reads a small blob into memory, verified.
func readVerified(ctx context.Context, desc ocispec.Descriptor, r io.Reader) ([]byte, error) {
	if desc.Size > content.DefaultMaxMetadataBytes {
		return nil, fmt.Errorf("%w: %d bytes exceeds the %d-byte limit for metadata", errdef.ErrTooLarge, desc.Size, content.DefaultMaxMetadataBytes)
	}
	var buf bytes.Buffer
	buf.Grow(int(desc.Size))
	vr := content.NewVerifyReader(content.ContextReader(ctx, r), desc)
	if _, err := io.Copy(&buf, vr); err != nil {
		return nil, err
	}
	if err := vr.Verify(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func (w *Writer) pushConfigLocked(ctx context.Context, desc ocispec.Descriptor, r io.Reader) error {
	data, err := readVerified(ctx, desc, r)
	if err != nil {
		return err
	}
	m, err := w.w.AddBytes(ctx, desc.Digest.Encoded()+".json", data)
	if err != nil {
		return err
	}
	w.configs[desc.Digest] = &storedConfig{desc: desc, data: data, member: m}
	return nil
}

// pushLayerLocked stores a layer as an uncompressed tar named by its
// diff_id. An uncompressed layer is copied as it is; a compressed one is
// decompressed into a member whose name and size are set at its end.
func (w *Writer) pushLayerLocked(ctx context.Context, desc ocispec.Descriptor, r io.Reader) error {
	vr := content.NewVerifyReader(content.ContextReader(ctx, r), desc)
	br := bufio.NewReaderSize(vr, 1<<16)
	if layer.Detect(br) == image.CompressionNone && desc.Digest.Algorithm() == digest.SHA256 {
		m, err := w.w.AddFile(ctx, desc.Digest.Encoded()+".tar", desc.Size, br)
		if err != nil {
			return err
		}
		w.layers[desc.Digest] = &storedLayer{pushed: desc, diffID: desc.Digest, member: m}
		return nil
	}
	zr, _, err := layer.Decompress(br)
	if err != nil {
		return err
	}
	p, err := w.w.Begin()
	if err != nil {
		zr.Close()
		return err
	}
	h := digest.SHA256.Digester()
	_, err = io.CopyBuffer(io.MultiWriter(p, h.Hash()), zr, make([]byte, 1<<20))
	zr.Close()
	if err == nil {
		// Whatever follows the compressed stream still counts for the digest.
		_, err = io.Copy(io.Discard, br)
	}
	if err == nil {
		err = vr.Verify()
	}
	if err != nil {
		p.Cancel()
		return err
	}
	diffID := h.Digest()
	if l, ok := w.layers[diffID]; ok && l.diffID == diffID {
		p.Cancel()
		w.layers[desc.Digest] = &storedLayer{pushed: desc, diffID: diffID, member: l.member}
		return nil
	}
	m, err := p.Finish(diffID.Encoded() + ".tar")
	if err != nil {
		return err
	}
	stored := &storedLayer{pushed: desc, diffID: diffID, member: m}
	w.layers[desc.Digest] = stored
	if _, ok := w.layers[diffID]; !ok {
		w.layers[diffID] = &storedLayer{pushed: ocispec.Descriptor{MediaType: image.MediaTypeDockerLayerUncompressed, Digest: diffID, Size: m.Size}, diffID: diffID, member: m}
	}
	return nil
}

// lookupLocked finds what was stored under d and describes it.
func (w *Writer) lookupLocked(d digest.Digest) (ocispec.Descriptor, bool) {
	if l, ok := w.layers[d]; ok {
		return l.pushed, true
	}
	if c, ok := w.configs[d]; ok {
		return c.desc, true
	}
	if doc, ok := w.docs[d]; ok {
		return doc, true
	}
	return ocispec.Descriptor{}, false
}

// Exists reports whether the blob was pushed (a layer also under its
// diff_id).
func (w *Writer) Exists(ctx context.Context, desc ocispec.Descriptor) (bool, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	_, ok := w.lookupLocked(desc.Digest)
	return ok, nil
}

// Stat returns the digest and size of a blob pushed.
func (w *Writer) Stat(ctx context.Context, dgst digest.Digest) (ocispec.Descriptor, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	d, ok := w.lookupLocked(dgst)
	if !ok {
		return ocispec.Descriptor{}, fmt.Errorf("stat %s: %w in the archive being written", dgst, errdef.ErrNotFound)
	}
	return ocispec.Descriptor{MediaType: "application/octet-stream", Digest: dgst, Size: d.Size}, nil
}

// Fetch reads back a manifest, config or uncompressed layer. A layer that
// was pushed compressed is held decompressed: it is fetched by its diff_id,
// and fetching it by its compressed digest matches errdef.ErrNotFound.
func (w *Writer) Fetch(ctx context.Context, desc ocispec.Descriptor) (io.ReadCloser, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.w == nil {
		return nil, ErrClosed
	}
	if doc, ok := w.docs[desc.Digest]; ok {
		return io.NopCloser(bytes.NewReader(doc.Data)), nil
	}
	if c, ok := w.configs[desc.Digest]; ok {
		return io.NopCloser(bytes.NewReader(c.data)), nil
	}
	if l, ok := w.layers[desc.Digest]; ok {
		if l.diffID != desc.Digest {
			return nil, fmt.Errorf("fetch %s: %w: the layer is stored decompressed, as %s", desc.Digest, errdef.ErrNotFound, l.diffID)
		}
		return io.NopCloser(w.w.Open(l.member)), nil
	}
	return nil, fmt.Errorf("fetch %s: %w in the archive being written", desc.Digest, errdef.ErrNotFound)
}

// Tag adds the image desc names to manifest.json with the repo tag tag
// ("busybox:1.36", "example.com/app:v1"); see AddImage.
func (w *Writer) Tag(ctx context.Context, desc ocispec.Descriptor, tag string) error {
	return w.AddImage(ctx, desc, tag)
}

// AddImage adds the image whose manifest (pushed before, with its config
// and layers) desc names to manifest.json, with the given repo tags (none
// for an untagged image). An image already added gains the tags; a tag
// that named another image moves. The layers' diff_ids computed while they
// were written must match the config's (errdef.ErrDigestMismatch naming
// the layer otherwise). An index is refused with errdef.ErrUnsupported: a
// docker-archive holds one platform's image per entry.
func (w *Writer) AddImage(ctx context.Context, desc ocispec.Descriptor, repoTags ...string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.w == nil {
		return ErrClosed
	}
	if err := w.addImageLocked(desc, repoTags); err != nil {
		return fmt.Errorf("add image %s to %s: %w", desc.Digest, w.path, err)
	}
	return nil
}

func (w *Writer) addImageLocked(desc ocispec.Descriptor, repoTags []string) error {
	var names []string
	for _, t := range repoTags {
		r, err := ParseRepoTag(t)
		if err != nil {
			return err
		}
		names = append(names, familiarName(r))
	}
	if image.IsIndex(desc.MediaType) {
		return fmt.Errorf("%w: an index cannot be stored in a docker-archive; select one platform's manifest", errdef.ErrUnsupported)
	}
	doc, ok := w.docs[desc.Digest]
	if !ok {
		return fmt.Errorf("manifest %w: push it first", errdef.ErrNotFound)
	}
	if !image.IsManifest(doc.MediaType) {
		return fmt.Errorf("%w: %s is not an image manifest", errdef.ErrUnsupported, doc.MediaType)
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(doc.Data, &m); err != nil {
		return fmt.Errorf("manifest: %w: %v", errdef.ErrInvalid, err)
	}
	cfg, ok := w.configs[m.Config.Digest]
	if !ok {
		return fmt.Errorf("config %s: %w: push it first", m.Config.Digest, errdef.ErrNotFound)
	}
	var ic imageConfig
	if err := json.Unmarshal(cfg.data, &ic); err != nil {
		return fmt.Errorf("config %s: %w: %v", m.Config.Digest, errdef.ErrInvalid, err)
	}
	if len(ic.RootFS.DiffIDs) != len(m.Layers) {
		return fmt.Errorf("config %s: %w: %d diff_ids for %d layers", m.Config.Digest, errdef.ErrInvalid, len(ic.RootFS.DiffIDs), len(m.Layers))
	}
	item := ManifestItem{Config: cfg.member.Name, RepoTags: []string{}, Layers: []string{}}
	for i, l := range m.Layers {
		sl, ok := w.layers[l.Digest]
		if !ok {
			return fmt.Errorf("layer %d (%s): %w: push it first", i, l.Digest, errdef.ErrNotFound)
		}
		if sl.diffID != ic.RootFS.DiffIDs[i] {
			return fmt.Errorf("layer %d (%s): %w: it decompresses to %s, the config's diff_id is %s", i, l.Digest, errdef.ErrDigestMismatch, sl.diffID, ic.RootFS.DiffIDs[i])
		}
		item.Layers = append(item.Layers, sl.member.Name)
	}
	idx, ok := w.byCfg[m.Config.Digest]
	if !ok {
		idx = len(w.items)
		w.items = append(w.items, item)
		w.byCfg[m.Config.Digest] = idx
		if n := len(item.Layers); n > 0 {
			w.itemTop[idx] = ic.RootFS.DiffIDs[n-1]
		}
	}
	for _, name := range names {
		r, _ := ParseRepoTag(name)
		full := fullName(r)
		for i := range w.items {
			w.items[i].RepoTags = slices.DeleteFunc(w.items[i].RepoTags, func(t string) bool {
				p, err := ParseRepoTag(t)
				return err == nil && fullName(p) == full
			})
		}
		w.items[idx].RepoTags = append(w.items[idx].RepoTags, name)
		w.tagged[full] = desc
		if top, ok := w.itemTop[idx]; ok {
			repo := familiarName(r)
			repo = repo[:len(repo)-len(r.Tag())-1]
			if w.repos[repo] == nil {
				w.repos[repo] = map[string]string{}
			}
			w.repos[repo][r.Tag()] = top.Encoded()
		}
	}
	return nil
}

// Tags passes the repo tags set so far, normalised and sorted, to fn in
// pages.
func (w *Writer) Tags(ctx context.Context, fn func(tags []string) error) error {
	w.mu.Lock()
	var tags []string
	for t := range w.tagged {
		tags = append(tags, t)
	}
	w.mu.Unlock()
	return content.ListTags(tags, fn)
}

// Resolve finds the manifest a repo tag names, or what was pushed under a
// digest.
func (w *Writer) Resolve(ctx context.Context, reference string) (ocispec.Descriptor, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if d, err := digest.Parse(reference); err == nil {
		if desc, ok := w.lookupLocked(d); ok {
			desc.Data = nil
			return desc, nil
		}
	} else if r, err := ParseRepoTag(reference); err == nil {
		if desc, ok := w.tagged[fullName(r)]; ok {
			return desc, nil
		}
	}
	return ocispec.Descriptor{}, fmt.Errorf("resolve %q in the archive being written: %w", reference, errdef.ErrNotFound)
}

// Commit writes manifest.json and repositories, ends the archive and gives
// it its name, replacing any file there. On error nothing is left at the
// path. The Writer cannot be used afterwards.
func (w *Writer) Commit(ctx context.Context) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.w == nil {
		return ErrClosed
	}
	aw := w.w
	w.w = nil
	if err := w.commitLocked(ctx, aw); err != nil {
		aw.Abort()
		return fmt.Errorf("write docker-archive %s: %w", aw.Path(), err)
	}
	return nil
}

func (w *Writer) commitLocked(ctx context.Context, aw *archive.Writer) error {
	items := w.items
	if items == nil {
		items = []ManifestItem{}
	}
	data, err := json.Marshal(items)
	if err != nil {
		return err
	}
	if _, err := aw.AddBytes(ctx, manifestFile, data); err != nil {
		return err
	}
	if len(w.repos) > 0 {
		data, err := json.Marshal(w.repos)
		if err != nil {
			return err
		}
		if _, err := aw.AddBytes(ctx, repositoriesFile, data); err != nil {
			return err
		}
	}
	return aw.Commit(ctx)
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
	if w.w == nil {
		return nil
	}
	aw := w.w
	w.w = nil
	return aw.Abort()
}
