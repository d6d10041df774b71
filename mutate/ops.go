package mutate

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"github.com/lading-oci/lading/progress"
	"github.com/moby/patternmatcher/ignorefile"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/lading-oci/lading/content"
	"github.com/lading-oci/lading/errdef"
	"github.com/lading-oci/lading/image"
	"github.com/lading-oci/lading/layer"
	"github.com/lading-oci/lading/layer/unpack"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// LayerOptions say how a new layer is written.
type LayerOptions struct {
	// Compression of the new layer blob (gzip when zero).
	Compression layer.Compression
	// Timestamp, when set, clamps file times and is the image's creation
	// time, so the same tree always gives the same image (SOURCE_DATE_EPOCH).
	Timestamp *time.Time
	// UID and GID, when set, replace every entry's owner.
	UID, GID *int
	// CreatedBy is recorded in the layer's history entry.
	CreatedBy string
	// Comment is recorded in the layer's history entry.
	Comment string
	// Progress, when set, receives the progress of writing the layer (or,
	// for Flatten, of reading the layers).
	Progress progress.Func
}

func (o LayerOptions) layerOptions() layer.Options {
	c := o.Compression
	if c == 0 {
		c = layer.Gzip
	}
	return layer.Options{Compression: c, Timestamp: o.Timestamp, UID: o.UID, GID: o.GID, Progress: o.Progress}
}

func (o LayerOptions) created() time.Time {
	if o.Timestamp != nil {
		return o.Timestamp.UTC()
	}
	return time.Now().UTC().Truncate(time.Second)
}

func (o LayerOptions) history() ocispec.History {
	t := o.created()
	return ocispec.History{Created: &t, CreatedBy: o.CreatedBy, Comment: o.Comment}
}

// ingest runs write against a fresh ingest and commits what it produced.
func ingest(ctx context.Context, s content.IngestStorage, write func(w io.Writer) (layer.Result, error)) (layer.Result, error) {
	w, err := s.Ingest(ctx, "")
	if err != nil {
		return layer.Result{}, err
	}
	res, err := write(w)
	if err != nil {
		_ = w.Abort(ctx)
		return layer.Result{}, err
	}
	if _, err := w.Commit(ctx, res.Descriptor.Size, res.Descriptor.Digest); err != nil {
		_ = w.Abort(ctx)
		return layer.Result{}, fmt.Errorf("store layer %s: %w", res.Descriptor.Digest, err)
	}
	_ = w.Close()
	return res, nil
}

// AddDir writes dir as one new layer blob into s.
func AddDir(ctx context.Context, s content.IngestStorage, dir string, opts LayerOptions) (layer.Result, error) {
	return ingest(ctx, s, func(w io.Writer) (layer.Result, error) {
		return layer.Create(ctx, dir, w, opts.layerOptions())
	})
}

// AddTar stores a ready layer file (tar, tar.gz or tar.zst) as it is, and
// computes its diff_id while storing it. The layer is checked to be a tar
// stream that ends properly.
func AddTar(ctx context.Context, s content.IngestStorage, r io.Reader) (layer.Result, error) {
	return ingest(ctx, s, func(w io.Writer) (layer.Result, error) {
		blobHash := sha256.New()
		counter := &countWriter{}
		pr, pw := io.Pipe()
		var diffID digest.Digest
		var usize int64
		var comp layer.Compression
		done := make(chan error, 1)
		go func() {
			rc, c, err := layer.Decompress(pr)
			if err != nil {
				_ = pr.CloseWithError(err)
				done <- err
				return
			}
			comp = c
			h := sha256.New()
			n, err := checkTar(io.TeeReader(rc, h))
			if err == nil {
				var rest int64
				rest, err = io.Copy(h, rc) // padding after the end marker counts too
				n += rest
			}
			rc.Close()
			usize = n
			diffID = digest.NewDigest(digest.SHA256, h)
			if err != nil {
				_ = pr.CloseWithError(err)
				done <- fmt.Errorf("layer: %w: %v", errdef.ErrInvalid, err)
				return
			}
			_, _ = io.Copy(io.Discard, pr)
			done <- nil
		}()
		_, err := io.Copy(io.MultiWriter(w, blobHash, counter, pw), r)
		pw.CloseWithError(err)
		if derr := <-done; err == nil {
			err = derr
		}
		if err != nil {
			return layer.Result{}, err
		}
		return layer.Result{
			Descriptor: ocispec.Descriptor{
				MediaType: layer.MediaType(comp),
				Digest:    digest.NewDigest(digest.SHA256, blobHash),
				Size:      counter.n,
			},
			DiffID:           diffID,
			UncompressedSize: usize,
		}, nil
	})
}

type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

// start returns the image to build on: a copy of base (see edit), or an
// empty image for platform when there is no base.
func start(ctx context.Context, s content.Exister, base *content.LoadedImage, platform ocispec.Platform) (*Draft, error) {
	if base == nil {
		return New(platform), nil
	}
	return edit(ctx, s, base)
}

// edit starts an edit of base whose result goes into s, after checking that
// s holds every layer of base: the new image refers to them, so without
// them it would be broken. Nothing is written when one is missing; the
// error names it and matches errdef.ErrNotFound (copy the base into s
// first).
func edit(ctx context.Context, s content.Exister, base *content.LoadedImage) (*Draft, error) {
	m, err := From(base)
	if err != nil {
		return nil, err
	}
	for i, l := range base.Manifest.Layers {
		ok, err := s.Exists(ctx, l)
		if err != nil {
			return nil, fmt.Errorf("base image %s: layer %d (%s): %w", base.Desc.Digest, i, l.Digest, err)
		}
		if !ok {
			return nil, fmt.Errorf("base image %s: layer %d (%s): %w: the destination store does not hold it (copy the base image into it first)",
				base.Desc.Digest, i, l.Digest, errdef.ErrNotFound)
		}
	}
	return m, nil
}

// BuildOptions configure Build.
type BuildOptions struct {
	LayerOptions
	// Base is the image to build on; nil builds from nothing.
	Base *content.LoadedImage
	// Platform of an image built from nothing (default:
	// image.DefaultPlatform, linux on this architecture).
	Platform *ocispec.Platform
	// Changes to the configuration, applied after the layer is added.
	Changes ConfigChanges
	// Exclude lists paths of dir to leave out of the layer, as lines of a
	// .dockerignore file. The patterns of dir's .containerignore (or, if
	// there is none, .dockerignore) come first, as docker and buildah read
	// them.
	Exclude []string
}

// IgnoreFile reads the exclusion patterns of a build context: its
// .containerignore or, without one, its .dockerignore; nil when it has
// neither.
func IgnoreFile(dir string) ([]string, error) {
	for _, name := range []string{".containerignore", ".dockerignore"} {
		f, err := os.Open(filepath.Join(dir, name))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		defer f.Close()
		pats, err := ignorefile.ReadAll(f)
		if err != nil {
			return nil, fmt.Errorf("%s: %w: %v", f.Name(), errdef.ErrInvalid, err)
		}
		return pats, nil
	}
	return nil, nil
}

// layoutDir returns the directory of a store that is an OCI layout.
func layoutDir(s any) (string, bool) {
	d, ok := s.(interface{ Dir() string })
	if !ok {
		return "", false
	}
	return d.Dir(), true
}

// within reports whether path is dir or lies below it.
func within(path, dir string) bool {
	p, err1 := filepath.Abs(path)
	d, err2 := filepath.Abs(dir)
	if err1 != nil || err2 != nil {
		return false
	}
	rel, err := filepath.Rel(d, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

// notInside refuses a directory a layer is made from that holds the
// destination layout: the layer would hold the layout being written.
func notInside(s any, dir string) error {
	if ld, ok := layoutDir(s); ok && within(ld, dir) {
		return fmt.Errorf("%s: %w: the destination layout %s is inside the directory the layer is made from; write it elsewhere",
			dir, errdef.ErrInvalid, ld)
	}
	return nil
}

// Build makes dir into one new layer on top of opts.Base (or of nothing),
// with a config and history entry, and stores the new image in s.
func Build(ctx context.Context, s content.IngestStorage, dir string, opts BuildOptions) (ocispec.Descriptor, error) {
	if fi, err := os.Stat(dir); err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("build context: %w", err)
	} else if !fi.IsDir() {
		return ocispec.Descriptor{}, fmt.Errorf("build context %s: %w: not a directory", dir, errdef.ErrInvalid)
	}
	if err := notInside(s, dir); err != nil {
		return ocispec.Descriptor{}, err
	}
	ignored, err := IgnoreFile(dir)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	platform := image.DefaultPlatform()
	if opts.Platform != nil {
		platform = *opts.Platform
	}
	m, err := start(ctx, s, opts.Base, platform)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	res, err := ingest(ctx, s, func(w io.Writer) (layer.Result, error) {
		lo := opts.layerOptions()
		lo.Exclude = append(ignored, opts.Exclude...)
		return layer.Create(ctx, dir, w, lo)
	})
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	return finish(ctx, s, m, &res, opts.LayerOptions, opts.Changes)
}

// finish adds the layer (if any), applies changes, sets the creation time
// and writes the image.
func finish(ctx context.Context, s content.IngestStorage, m *Draft, res *layer.Result, lo LayerOptions, changes ConfigChanges) (ocispec.Descriptor, error) {
	if res != nil {
		m.AddLayer(res.Descriptor, res.DiffID, lo.history())
	}
	if changes.Created == nil {
		t := lo.created()
		changes.Created = &t
	}
	if err := changes.Apply(m); err != nil {
		return ocispec.Descriptor{}, err
	}
	return Write(ctx, s, m)
}

// AppendOptions configure Append.
type AppendOptions struct {
	// LayerOptions say how the layer is recorded (its history entry; the
	// file is stored as it is, so Compression is not used).
	LayerOptions
	// Changes to the configuration, applied after the layer is added.
	Changes ConfigChanges
}

// Append stores a ready layer file r (tar, tar.gz or tar.zst) on top of base.
func Append(ctx context.Context, s content.IngestStorage, base *content.LoadedImage, r io.Reader, opts AppendOptions) (ocispec.Descriptor, error) {
	m, err := edit(ctx, s, base)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	res, err := AddTar(ctx, s, r)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	return finish(ctx, s, m, &res, opts.LayerOptions, opts.Changes)
}

// MutateOptions configure Mutate.
type MutateOptions struct {
	// Changes to the configuration and manifest annotations.
	Changes ConfigChanges
}

// Mutate changes an image's configuration and annotations without touching
// its layers.
func Mutate(ctx context.Context, s content.IngestStorage, base *content.LoadedImage, opts MutateOptions) (ocispec.Descriptor, error) {
	m, err := edit(ctx, s, base)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	if err := opts.Changes.Apply(m); err != nil {
		return ocispec.Descriptor{}, err
	}
	return Write(ctx, s, m)
}

// Tree reads an image's layers into a layer.Tree: its final filesystem,
// described without writing any file.
func Tree(ctx context.Context, f content.Fetcher, img *content.LoadedImage) (*layer.Tree, error) {
	t := layer.NewTree()
	for i, l := range img.Manifest.Layers {
		if err := ApplyLayer(ctx, f, t, l); err != nil {
			return nil, fmt.Errorf("layer %d (%s): %w", i, l.Digest, err)
		}
	}
	return t, nil
}

// CommitOptions configure Commit.
type CommitOptions struct {
	LayerOptions
	// Rootless says dir was unpacked without root (UnpackOptions.Rootless):
	// what a rootless unpack cannot reproduce is not taken for a change —
	// owners (every file belongs to the unpacking user) and device nodes it
	// skipped. It is always so when the process is not root.
	Rootless bool
	// Changes to the configuration, applied after the layer is added.
	Changes ConfigChanges
	// AllowEmpty adds a layer even when dir has no changes. Without it, no
	// layer is added then: the result is base with the config Changes (see
	// Committed), as with Mutate.
	AllowEmpty bool
}

// Committed reports whether the image Commit returned has a new layer: it
// does unless dir had no changes and CommitOptions.AllowEmpty was not set.
func Committed(base, result *content.LoadedImage) bool {
	return len(result.Manifest.Layers) > len(base.Manifest.Layers)
}

// Commit records the changes made to dir, a root filesystem unpacked from
// base, as one new layer with whiteouts on top of base.
func Commit(ctx context.Context, s content.IngestStorage, base *content.LoadedImage, dir string, opts CommitOptions) (ocispec.Descriptor, error) {
	m, err := edit(ctx, s, base)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	if err := notInside(s, dir); err != nil {
		return ocispec.Descriptor{}, err
	}
	tree, err := Tree(ctx, s, base)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	rootless := opts.Rootless || os.Geteuid() != 0
	w, err := s.Ingest(ctx, "")
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	res, err := layer.CreateDiff(ctx, tree, dir, w, layer.DiffOptions{Options: opts.layerOptions(), Rootless: rootless})
	if err == nil && res.UncompressedSize <= emptyTarSize && !opts.AllowEmpty {
		// No changes: no layer.
		_ = w.Abort(ctx)
		if err := opts.Changes.Apply(m); err != nil {
			return ocispec.Descriptor{}, err
		}
		return Write(ctx, s, m)
	}
	if err == nil {
		_, err = w.Commit(ctx, res.Descriptor.Size, res.Descriptor.Digest)
	}
	if err != nil {
		_ = w.Abort(ctx)
		return ocispec.Descriptor{}, fmt.Errorf("commit %s: %w", dir, err)
	}
	_ = w.Close()
	return finish(ctx, s, m, &res, opts.LayerOptions, opts.Changes)
}

// emptyTarSize is the size of a tar stream with no entries: the two zero
// blocks of its end marker.
const emptyTarSize = 1024

// FlattenOptions configure Flatten.
type FlattenOptions struct {
	// LayerOptions say how the single new layer is written.
	LayerOptions
	// Changes to the configuration, applied after the layers are squashed.
	Changes ConfigChanges
	// MaxBytes caps the uncompressed size of each layer read (0:
	// DefaultMaxLayerBytes; negative: no cap).
	MaxBytes int64
}

// Flatten squashes all of base's layers into one: the filesystem the
// layers describe, whiteouts applied, with the owners, modes, times and
// xattrs they record whoever runs it. The layers' tar streams are merged
// (layer.Flatten, each blob read twice and verified); nothing is written to
// disk but the new blobs.
func Flatten(ctx context.Context, s content.IngestStorage, base *content.LoadedImage, opts FlattenOptions) (ocispec.Descriptor, error) {
	m, err := edit(ctx, s, base)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	blobs, err := layerBlobs(s, base, opts.Progress)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	lo := opts.LayerOptions
	res, err := ingest(ctx, s, func(w io.Writer) (layer.Result, error) {
		fo := lo.layerOptions()
		fo.Progress = nil // the layer's progress is the reading of the blobs
		return layer.Flatten(ctx, blobs, w, layer.FlattenOptions{Options: fo, MaxBytes: maxBytes(opts.MaxBytes)})
	})
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("flatten %s: %w", base.Desc.Digest, err)
	}
	m.Manifest.Layers = []ocispec.Descriptor{}
	m.ConfigFile.RootFS.DiffIDs = nil
	m.ConfigFile.History = nil
	if lo.Comment == "" {
		lo.Comment = fmt.Sprintf("flattened %d layers of %s", len(base.Manifest.Layers), base.Desc.Digest)
	}
	return finish(ctx, s, m, &res, lo, opts.Changes)
}

// layerBlobs describes img's layers for reading from f, each blob verified
// against its descriptor as it is read, and its reading reported to pf.
func layerBlobs(f content.Fetcher, img *content.LoadedImage, pf progress.Func) ([]layer.Blob, error) {
	if len(img.ConfigFile.RootFS.DiffIDs) != len(img.Manifest.Layers) {
		return nil, fmt.Errorf("image %s: %w: %d layers but %d diff_ids", img.Desc.Digest, errdef.ErrInvalid,
			len(img.Manifest.Layers), len(img.ConfigFile.RootFS.DiffIDs))
	}
	blobs := make([]layer.Blob, len(img.Manifest.Layers))
	for i, l := range img.Manifest.Layers {
		blobs[i] = layer.Blob{
			Open: func(ctx context.Context) (io.ReadCloser, error) {
				name := fmt.Sprintf("layer %d/%d", i+1, len(img.Manifest.Layers))
				pf.Start(l.Digest.String(), name, l.Size)
				rc, err := f.Fetch(ctx, l)
				if err != nil {
					pf.Finish(l.Digest.String(), name, 0, l.Size, err)
					return nil, err
				}
				r := io.Reader(content.NewVerifyReader(rc, l))
				if pf != nil {
					r = pf.Reader(r, l.Digest.String(), name, l.Size)
				}
				return verifiedBlob{r, progressCloser{rc, pf, l.Digest.String(), name, l.Size}}, nil
			},
			DiffID: img.ConfigFile.RootFS.DiffIDs[i],
			Name:   l.Digest.String(),
		}
	}
	return blobs, nil
}

// DefaultMaxLayerBytes is the cap on a layer's uncompressed size when
// reading it (UnpackOptions.MaxBytes, FlattenOptions.MaxBytes): 64 GiB, far
// above any real layer, far below what fills a disk from a small
// decompression bomb.
const DefaultMaxLayerBytes = 64 << 30

// maxBytes turns a MaxBytes option into a cap: 0 is the default, negative
// none.
func maxBytes(n int64) int64 {
	switch {
	case n == 0:
		return DefaultMaxLayerBytes
	case n < 0:
		return 0
	}
	return n
}

// UnpackOptions configure Unpack.
type UnpackOptions struct {
	// Rootless unpacks without changing owners or making device nodes. It
	// is always so when the process is not root.
	Rootless bool
	// MaxBytes caps the uncompressed size of each layer (0:
	// DefaultMaxLayerBytes; negative: no cap).
	MaxBytes int64
	// Progress, when set, receives an event per layer as its blob is
	// read.
	Progress progress.Func
	// Force merges the image into a directory that is not empty, as
	// layers merge (later entries replace earlier ones, whiteouts remove).
	// Without it such a directory is refused with errdef.ErrAlreadyExists.
	// A merge is applied in place: a failed one leaves dir partly changed.
	Force bool
	// Logger receives what the unpack skipped (device nodes in rootless
	// mode, xattrs the filesystem refused). Nil discards it.
	Logger *slog.Logger
}

// Unpack applies img's layers in order into dir, each checked against its
// diff_id and its blob digest while it streams. Later layers are
// decompressed while earlier ones are written (see unpack.ApplyLayers).
// Linux only: elsewhere it fails with errdef.ErrUnsupported.
//
// It is all or nothing: the layers are applied into a new directory beside
// dir (same parent, so the same filesystem), which is renamed to dir once
// every layer has been applied and checked. A failure — a digest or
// diff_id mismatch, a missing blob, a corrupt stream, a hostile entry, the
// size cap — removes what was made and leaves dir as it was; the error says
// so. dir must not exist or be empty, unless opts.Force merges into it.
func Unpack(ctx context.Context, f content.Fetcher, img *content.LoadedImage, dir string, opts UnpackOptions) error {
	if img == nil || img.Manifest == nil || img.ConfigFile == nil {
		return fmt.Errorf("unpack: %w: no image", errdef.ErrInvalid)
	}
	if ld, ok := layoutDir(f); ok && (within(dir, ld) || within(ld, dir)) {
		return fmt.Errorf("unpack into %s: %w: the directory and the layout %s hold one another; unpack elsewhere", dir, errdef.ErrInvalid, ld)
	}
	layers, err := layerBlobs(f, img, opts.Progress)
	if err != nil {
		return err
	}
	uo := unpack.Options{Rootless: opts.Rootless || os.Geteuid() != 0, MaxBytes: maxBytes(opts.MaxBytes), Logger: opts.Logger}

	empty, existed, mode, err := emptyDir(dir)
	if err != nil {
		return fmt.Errorf("unpack into %s: %w", dir, err)
	}
	if !empty {
		if !opts.Force {
			return fmt.Errorf("unpack into %s: %w: the directory is not empty; merge into it with Force (lading unpack --force)", dir, errdef.ErrAlreadyExists)
		}
		if _, err := unpack.ApplyLayers(ctx, dir, layers, uo); err != nil {
			return fmt.Errorf("unpack into %s (merging; what was applied before the failure stays): %w", dir, err)
		}
		return nil
	}
	parent, name := filepath.Split(filepath.Clean(dir))
	if parent == "" {
		parent = "."
	}
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return fmt.Errorf("unpack into %s: %w", dir, err)
	}
	stage, err := os.MkdirTemp(parent, "."+name+".unpack-")
	if err != nil {
		return fmt.Errorf("unpack into %s: %w", dir, err)
	}
	// The staging directory starts with the mode dir had (or would get).
	if err := os.Chmod(stage, mode); err != nil {
		_ = os.Remove(stage)
		return fmt.Errorf("unpack into %s: %w", dir, err)
	}
	if _, err := unpack.ApplyLayers(ctx, stage, layers, uo); err != nil {
		if rerr := unpack.RemoveAll(stage); rerr != nil {
			return fmt.Errorf("unpack into %s failed and the partial tree %s could not be removed (%v): %w", dir, stage, rerr, err)
		}
		return fmt.Errorf("unpack into %s failed; nothing was written to it: %w", dir, err)
	}
	// rename(2) replaces an empty directory.
	if err := replaceDir(stage, dir); err != nil {
		_ = unpack.RemoveAll(stage)
		if existed {
			return fmt.Errorf("unpack into %s: the directory changed while unpacking: %w", dir, err)
		}
		return fmt.Errorf("unpack into %s: %w", dir, err)
	}
	return nil
}

// emptyDir reports whether dir is missing or an empty directory, whether it
// exists, and the mode a directory put in its place should have.
func emptyDir(dir string) (empty, exists bool, mode os.FileMode, err error) {
	fi, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return true, false, 0o755, nil
	}
	if err != nil {
		return false, false, 0, err
	}
	if !fi.IsDir() {
		return false, true, 0, fmt.Errorf("%w: not a directory", errdef.ErrAlreadyExists)
	}
	f, err := os.Open(dir)
	if err != nil {
		return false, true, 0, err
	}
	defer f.Close()
	names, err := f.Readdirnames(1)
	if err != nil && !errors.Is(err, io.EOF) {
		return false, true, 0, err
	}
	return len(names) == 0, true, fi.Mode() & (fs.ModePerm | fs.ModeSetgid | fs.ModeSticky), nil
}

// progressCloser closes a blob and reports the layer finished.
type progressCloser struct {
	c     io.Closer
	pf    progress.Func
	id    string
	name  string
	total int64
}

func (p progressCloser) Close() error {
	p.pf.Finish(p.id, p.name, p.total, p.total, nil)
	return p.c.Close()
}

// verifiedBlob reads a blob through its verifier and closes the blob.
type verifiedBlob struct {
	io.Reader
	io.Closer
}

// checkTar reads a tar stream to its end marker, so that only real layers
// are stored, and returns how many bytes it consumed.
func checkTar(r io.Reader) (int64, error) {
	cr := &countReader{r: r}
	tr := tar.NewReader(cr)
	for i := 0; ; i++ {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			if i == 0 && cr.n == 0 {
				return 0, errors.New("empty stream, not a tar archive")
			}
			return cr.n, nil
		}
		if err != nil {
			return cr.n, fmt.Errorf("not a tar archive (entry %d): %v", i, err)
		}
		if _, err := io.Copy(io.Discard, tr); err != nil {
			return cr.n, fmt.Errorf("tar entry %q: %v", hdr.Name, err)
		}
	}
}

type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// ApplyLayer applies the layer blob desc, fetched from f and verified
// against desc as it streams, to t.
func ApplyLayer(ctx context.Context, f content.Fetcher, t *layer.Tree, desc ocispec.Descriptor) error {
	rc, err := f.Fetch(ctx, desc)
	if err != nil {
		return err
	}
	defer rc.Close()
	vr := content.NewVerifyReader(rc, desc)
	dr, _, err := layer.Decompress(vr)
	if err != nil {
		return err
	}
	err = t.Apply(ctx, dr)
	// Closing stops the decompressor's read-ahead before the rest of the
	// blob is read here.
	if cerr := dr.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return vr.Verify()
}
