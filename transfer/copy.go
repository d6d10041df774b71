package transfer

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"github.com/lading-oci/lading/errdef"
	"github.com/lading-oci/lading/registry/client"
	"io"
	"os"
	"slices"
	"strings"
	"sync"

	"github.com/lading-oci/lading/content"
	"github.com/lading-oci/lading/image"
	"github.com/lading-oci/lading/progress"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"
)

// DefaultConcurrency is how many blobs Copy moves at once by default.
const DefaultConcurrency = 4

// CopyOptions configure Copy and CopyGraph.
type CopyOptions struct {
	// Concurrency is how many blobs are moved at once (0:
	// DefaultConcurrency).
	Concurrency int
	// MaxMetadataBytes caps each manifest and index read to find what it
	// references (0: content.DefaultMaxMetadataBytes).
	MaxMetadataBytes int64
	// Progress receives an event per blob: started, bytes moved, finished
	// or skipped (already present). Nil reports nothing.
	Progress progress.Func
	// Platforms, for an index, copies only the images of these platforms
	// (see CopyResult.Filtered); for an image, requires it to be of one of
	// them. Nil copies an index whole.
	Platforms []ocispec.Platform
	// Referrers copies, with each manifest and index copied, the manifests
	// and indexes whose subject it is (signatures, SBOMs, attestations),
	// and theirs in turn, when the source can list them
	// (content.ReferrerLister).
	Referrers bool
	// Format converts the manifests and indexes copied to OCI or Docker
	// schema 2 (image.Convert): configs and layers keep their digests, the
	// documents get new ones (CopyResult.Warnings says what the target
	// format could not carry). Zero copies the documents as they are.
	Format image.Format
}

// CopyResult says what Copy copied.
type CopyResult struct {
	// Source is what the source reference names.
	Source ocispec.Descriptor
	// Copied is what was copied and tagged: Source, or the image or
	// filtered index CopyOptions.Platforms chose.
	Copied ocispec.Descriptor
	// Filtered is set when Copied is a new index listing only some of the
	// images of the Source index (so its digest differs).
	Filtered bool
	// Referrers counts the referrers copied with it.
	Referrers int
	// Converted is set when CopyOptions.Format changed the documents;
	// Warnings lists what the conversion dropped.
	Converted bool
	Warnings  []string
}

// Copy copies the image or index src's reference points at, with
// everything it references, into dst, and tags it there with dst's tag
// (no tag is set when dst names none). Digests are kept: the bytes are
// copied as they are, unless opts.Platforms filters an index.
//
// Blobs are copied before the manifests that list them and manifests
// before the indexes that list them, so dst never holds a document whose
// references are missing, and the tag is set last. A failure into a layout
// that Open created removes it.
func Copy(ctx context.Context, src, dst *Target, opts CopyOptions) (CopyResult, error) {
	var res CopyResult
	desc, err := src.Resolve(ctx)
	if err != nil {
		return res, err
	}
	res.Source, res.Copied = desc, desc
	fail := func(err error) (CopyResult, error) {
		dst.Abandon()
		return res, fmt.Errorf("copy %s to %s: %w", src.Ref, dst.Ref, err)
	}
	var filtered []byte
	if len(opts.Platforms) > 0 {
		if res.Copied, filtered, err = selectPlatforms(ctx, src.Store, desc, opts.Platforms, opts.MaxMetadataBytes); err != nil {
			return fail(err)
		}
		res.Filtered = filtered != nil
	}
	if opts.Format != 0 && opts.Referrers {
		return fail(fmt.Errorf("%w: referrers cannot follow a format conversion, which changes the digests they name", errdef.ErrUnsupported))
	}
	tagged := false
	if !SameStore(src, dst) || filtered != nil || opts.Format != 0 {
		c := newCopier(src.Store, dst.Store, opts)
		if opts.Format == 0 {
			// The root is known before the copy: a registry stores it
			// under the tag in one request.
			c.root, c.rootTag = res.Copied.Digest, dst.Tag()
		}
		switch {
		case opts.Format != 0:
			var conv ocispec.Descriptor
			conv, err = c.convert(ctx, res.Copied, filtered, &res)
			if err == nil {
				res.Converted = conv.Digest != res.Copied.Digest
				res.Copied = conv
			}
		case filtered != nil:
			err = c.copyDocument(ctx, res.Copied, filtered)
		default:
			err = c.copy(ctx, res.Copied, "")
		}
		if err == nil && opts.Referrers {
			res.Referrers, err = c.copyReferrers(ctx)
		}
		if err != nil {
			return fail(err)
		}
		tagged = c.rootTagged
	}
	if tag := dst.Tag(); tag != "" && !tagged {
		if err := dst.Store.Tag(ctx, res.Copied, tag); err != nil {
			return fail(err)
		}
	}
	return res, nil
}

// selectPlatforms picks from desc what matches platforms: for an index, the
// index itself when every image matches, else a new index of those that do
// (returned with its bytes), or the one image when only one entry is asked
// for and matches; for an image, itself if it matches.
func selectPlatforms(ctx context.Context, f content.Fetcher, desc ocispec.Descriptor, platforms []ocispec.Platform, max int64) (ocispec.Descriptor, []byte, error) {
	want := func(p ocispec.Platform) bool {
		return slices.ContainsFunc(platforms, func(w ocispec.Platform) bool { return image.MatchPlatform(w, p) })
	}
	names := make([]string, len(platforms))
	for i, p := range platforms {
		names[i] = image.FormatPlatform(p)
	}
	if image.IsManifest(desc.MediaType) {
		img, err := content.LoadImage(ctx, f, desc, nil)
		if err != nil {
			return desc, nil, err
		}
		if !want(img.ConfigFile.Platform) {
			return desc, nil, &errdef.NotFoundError{What: errdef.WhatPlatform, Name: strings.Join(names, ","), In: "image " + string(desc.Digest),
				Detail: "the image is for " + image.FormatPlatform(img.ConfigFile.Platform)}
		}
		return desc, nil, nil
	}
	if !image.IsIndex(desc.MediaType) {
		return desc, nil, fmt.Errorf("%s: %w: %s is neither an image nor an index", desc.Digest, errdef.ErrUnsupported, desc.MediaType)
	}
	data, err := content.ReadAll(ctx, f, desc, max)
	if err != nil {
		return desc, nil, err
	}
	idx, err := image.DecodeIndex(data)
	if err != nil {
		return desc, nil, fmt.Errorf("index %s: %w", desc.Digest, err)
	}
	var kept []ocispec.Descriptor
	var offered []string
	for _, m := range idx.Manifests {
		if m.Platform == nil {
			continue
		}
		offered = append(offered, image.FormatPlatform(*m.Platform))
		if want(*m.Platform) {
			kept = append(kept, m)
		}
	}
	switch {
	case len(kept) == 0:
		return desc, nil, &errdef.NotFoundError{What: errdef.WhatPlatform, Name: strings.Join(names, ","), In: "index " + string(desc.Digest),
			Detail: "the index offers " + strings.Join(offered, ", ")}
	case len(kept) == len(idx.Manifests):
		return desc, nil, nil
	case len(platforms) == 1 && len(kept) == 1:
		return kept[0], nil, nil
	}
	idx.Manifests = kept
	out, err := json.Marshal(idx)
	if err != nil {
		return desc, nil, err
	}
	return ocispec.Descriptor{MediaType: desc.MediaType, Digest: digest.FromBytes(out), Size: int64(len(out))}, out, nil
}

// CopyGraph copies root and everything reachable from it (the children
// content.DecodeNode finds: configs, layers, manifests, subjects) from src
// into dst, children first. A descriptor dst already has is not read from
// src, nor is anything below it: a store holds a manifest only with its
// blobs. Blobs move concurrently (opts.Concurrency); each is verified by
// dst as it is written.
func CopyGraph(ctx context.Context, src content.Fetcher, dst content.Storage, root ocispec.Descriptor, opts CopyOptions) error {
	return newCopier(src, dst, opts).copy(ctx, root, "")
}

func newCopier(src content.Fetcher, dst content.Storage, opts CopyOptions) *copier {
	n := opts.Concurrency
	if n <= 0 {
		n = DefaultConcurrency
	}
	return &copier{src: src, dst: dst, opts: opts, sem: make(chan struct{}, n), calls: map[digest.Digest]*call{}}
}

// copyDocument copies a manifest or index whose bytes are in hand (a
// filtered index), after its children.
func (c *copier) copyDocument(ctx context.Context, d ocispec.Descriptor, data []byte) error {
	c.mu.Lock()
	c.calls[d.Digest] = &call{done: closedChan}
	c.docs = append(c.docs, d)
	c.mu.Unlock()
	return c.pushDocument(ctx, d, data)
}

var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// copyReferrers copies the referrers of every document copied so far, and
// theirs, and returns how many there were.
func (c *copier) copyReferrers(ctx context.Context) (int, error) {
	rl, ok := c.src.(content.ReferrerLister)
	if !ok {
		return 0, nil
	}
	done := map[digest.Digest]bool{}
	n := 0
	for {
		c.mu.Lock()
		var todo []ocispec.Descriptor
		for _, d := range c.docs {
			if !done[d.Digest] {
				todo = append(todo, d)
				done[d.Digest] = true
			}
		}
		c.mu.Unlock()
		if len(todo) == 0 {
			return n, nil
		}
		for _, d := range todo {
			refs, err := rl.Referrers(ctx, d, "")
			if err != nil {
				return n, fmt.Errorf("referrers of %s: %w", d.Digest, err)
			}
			for _, r := range refs {
				r.Annotations, r.ArtifactType = nil, ""
				if err := c.copy(ctx, r, d.Digest.String()); err != nil {
					return n, err
				}
				n++
			}
		}
	}
}

type copier struct {
	src   content.Fetcher
	dst   content.Storage
	opts  CopyOptions
	sem   chan struct{}
	mu    sync.Mutex
	calls map[digest.Digest]*call
	// docs are the manifests and indexes copied (or found present), whose
	// referrers Referrers copies.
	docs []ocispec.Descriptor
	// root is the document the copy is for and rootTag the tag it gets;
	// rootTagged says the root went to a manifestPusher under the tag.
	root       digest.Digest
	rootTag    string
	rootTagged bool
}

// manifestPusher is a store that can store a manifest and point tags at it
// at once (a registry, where one PUT by tag does both).
type manifestPusher interface {
	PushManifest(ctx context.Context, desc ocispec.Descriptor, data []byte, tags ...string) error
}

// call is one descriptor's copy, shared by every parent that lists it.
type call struct {
	done chan struct{}
	err  error
}

// copy copies d once, however many parents list it; parent names the
// document that lists it, for errors.
func (c *copier) copy(ctx context.Context, d ocispec.Descriptor, parent string) error {
	c.mu.Lock()
	if cl, ok := c.calls[d.Digest]; ok {
		c.mu.Unlock()
		select {
		case <-cl.done:
			return cl.err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	cl := &call{done: make(chan struct{})}
	c.calls[d.Digest] = cl
	c.mu.Unlock()
	cl.err = c.copyOnce(ctx, d)
	if cl.err != nil && parent != "" {
		cl.err = fmt.Errorf("%s (listed by %s): %w", d.Digest, parent, cl.err)
	}
	close(cl.done)
	return cl.err
}

func (c *copier) copyOnce(ctx context.Context, d ocispec.Descriptor) error {
	if err := content.CheckDigest(d.Digest); err != nil {
		return err
	}
	name := label(d)
	doc := image.IsManifest(d.MediaType) || image.IsIndex(d.MediaType)
	if doc {
		c.mu.Lock()
		c.docs = append(c.docs, d)
		c.mu.Unlock()
	}
	if ok, err := c.dst.Exists(ctx, d); err != nil {
		return err
	} else if ok {
		c.opts.Progress.Skip(d.Digest.String(), name, d.Size)
		if doc && c.opts.Referrers {
			// The referrers of what is below may be missing still.
			return c.children(ctx, d, nil)
		}
		return nil
	}
	if !doc {
		return c.transfer(ctx, d, name)
	}
	data, err := content.ReadAll(ctx, c.src, d, c.opts.MaxMetadataBytes)
	if err != nil {
		return err
	}
	return c.pushDocument(ctx, d, data)
}

// pushDocument copies the children of the document d (data) and then d.
func (c *copier) pushDocument(ctx context.Context, d ocispec.Descriptor, data []byte) error {
	if err := c.children(ctx, d, data); err != nil {
		return err
	}
	name := label(d)
	c.opts.Progress.Start(d.Digest.String(), name, d.Size)
	var err error
	if mp, ok := c.dst.(manifestPusher); ok && d.Digest == c.root && c.rootTag != "" {
		if err = mp.PushManifest(ctx, d, data, c.rootTag); err == nil {
			c.mu.Lock()
			c.rootTagged = true
			c.mu.Unlock()
		}
	} else {
		err = c.dst.Push(ctx, d, bytes.NewReader(data))
	}
	c.opts.Progress.Finish(d.Digest.String(), name, d.Size, d.Size, err)
	return err
}

// children copies what the document d lists, concurrently; data is its
// content (nil: read it from the source).
func (c *copier) children(ctx context.Context, d ocispec.Descriptor, data []byte) error {
	if data == nil {
		var err error
		if data, err = content.ReadAll(ctx, c.src, d, c.opts.MaxMetadataBytes); err != nil {
			return err
		}
	}
	node, err := content.DecodeNode(d, data)
	if err != nil {
		return err
	}
	g, gctx := errgroup.WithContext(ctx)
	for _, child := range node.Successors() {
		g.Go(func() error { return c.copy(gctx, child, d.Digest.String()) })
	}
	return g.Wait()
}

// transfer streams one blob from src to dst.
func (c *copier) transfer(ctx context.Context, d ocispec.Descriptor, name string) error {
	select {
	case c.sem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-c.sem }()
	id := d.Digest.String()
	c.opts.Progress.Start(id, name, d.Size)
	// Between repositories of one registry, the registry mounts the blob
	// (or, refusing, the client streams it).
	if from, to, ok := sameRegistry(c.src, c.dst); ok {
		err := to.Mount(ctx, d, from.Name(), func() (io.ReadCloser, error) { return from.Fetch(ctx, d) })
		c.opts.Progress.Finish(id, name, d.Size, d.Size, err)
		return err
	}
	rc, err := c.src.Fetch(ctx, d)
	if err != nil {
		c.opts.Progress.Finish(id, name, 0, d.Size, err)
		return err
	}
	defer rc.Close()
	if _, file := rc.(*os.File); file || c.opts.Progress == nil {
		// The reader as it is: a file goes to a registry by sendfile, so
		// its progress is reported when it is done.
		err := c.dst.Push(ctx, d, rc)
		c.opts.Progress.Finish(id, name, d.Size, d.Size, err)
		return err
	}
	r := c.opts.Progress.Reader(rc, id, name, d.Size)
	err = c.dst.Push(ctx, d, r)
	c.opts.Progress.Finish(id, name, r.N(), d.Size, err)
	return err
}

// sameRegistry reports whether src and dst are repositories of one
// registry, where blobs can be mounted.
func sameRegistry(src content.Fetcher, dst content.Storage) (from, to *client.Repository, ok bool) {
	from, ok1 := src.(*client.Repository)
	to, ok2 := dst.(*client.Repository)
	if !ok1 || !ok2 || from.Registry() != to.Registry() || from.Name() == to.Name() {
		return nil, nil, false
	}
	return from, to, true
}

// convert copies the manifest or index d (its bytes data, nil to read
// them) converted to c.opts.Format, after its children, and returns the
// descriptor of what it stored.
func (c *copier) convert(ctx context.Context, d ocispec.Descriptor, data []byte, res *CopyResult) (ocispec.Descriptor, error) {
	if data == nil {
		var err error
		if data, err = content.ReadAll(ctx, c.src, d, c.opts.MaxMetadataBytes); err != nil {
			return d, err
		}
	}
	if image.IsManifest(d.MediaType) {
		// Configs and layers keep their digests: copy them as they are.
		node, err := content.DecodeNode(d, data)
		if err != nil {
			return d, err
		}
		g, gctx := errgroup.WithContext(ctx)
		for _, child := range node.Successors() {
			if node.Manifest.Subject != nil && child.Digest == node.Manifest.Subject.Digest {
				continue // not carried across a conversion
			}
			g.Go(func() error { return c.copy(gctx, child, d.Digest.String()) })
		}
		if err := g.Wait(); err != nil {
			return d, err
		}
	}
	conv, err := image.Convert(d.MediaType, data, c.opts.Format, image.ConvertOptions{
		Child: func(_ int, child ocispec.Descriptor) (ocispec.Descriptor, error) {
			return c.convert(ctx, child, nil, res)
		},
	})
	if err != nil {
		return d, fmt.Errorf("convert %s: %w", d.Digest, err)
	}
	for _, w := range conv.Warnings {
		res.Warnings = append(res.Warnings, fmt.Sprintf("%s: %s", d.Digest, w))
	}
	out := conv.Descriptor
	if ok, err := c.dst.Exists(ctx, out); err != nil {
		return out, err
	} else if !ok {
		name := label(out)
		c.opts.Progress.Start(out.Digest.String(), name, out.Size)
		err := c.dst.Push(ctx, out, bytes.NewReader(conv.Data))
		c.opts.Progress.Finish(out.Digest.String(), name, out.Size, out.Size, err)
		if err != nil {
			return out, err
		}
	}
	return out, nil
}

// label names a blob by its role, for progress.
func label(d ocispec.Descriptor) string {
	switch {
	case image.IsManifest(d.MediaType):
		return "manifest"
	case image.IsIndex(d.MediaType):
		return "index"
	case image.IsConfig(d.MediaType):
		return "config"
	case image.IsLayer(d.MediaType):
		return "layer"
	}
	return "blob"
}
