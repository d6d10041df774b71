package transfer

import (
	"bytes"
	"context"
	"fmt"
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
}

// Copy copies the image or index src's reference points at, with
// everything it references, into dst, and tags it there with dst's tag
// (no tag is set when dst names none). It returns the descriptor copied.
// Digests are kept: the bytes are copied as they are.
//
// Blobs are copied before the manifests that list them and manifests
// before the indexes that list them, so dst never holds a document whose
// references are missing, and the tag is set last. A failure into a layout
// that Open created removes it.
func Copy(ctx context.Context, src, dst *Target, opts CopyOptions) (ocispec.Descriptor, error) {
	desc, err := src.Resolve(ctx)
	if err != nil {
		return desc, err
	}
	if !SameStore(src, dst) {
		if err := CopyGraph(ctx, src.Store, dst.Store, desc, opts); err != nil {
			dst.Abandon()
			return desc, fmt.Errorf("copy %s to %s: %w", src.Ref, dst.Ref, err)
		}
	}
	if tag := dst.Ref.Tag(); tag != "" {
		if err := dst.Store.Tag(ctx, desc, tag); err != nil {
			dst.Abandon()
			return desc, fmt.Errorf("copy %s to %s: %w", src.Ref, dst.Ref, err)
		}
	}
	return desc, nil
}

// CopyGraph copies root and everything reachable from it (the children
// content.DecodeNode finds: configs, layers, manifests, subjects) from src
// into dst, children first. A descriptor dst already has is not read from
// src, nor is anything below it: a store holds a manifest only with its
// blobs. Blobs move concurrently (opts.Concurrency); each is verified by
// dst as it is written.
func CopyGraph(ctx context.Context, src content.Fetcher, dst content.Storage, root ocispec.Descriptor, opts CopyOptions) error {
	n := opts.Concurrency
	if n <= 0 {
		n = DefaultConcurrency
	}
	c := &copier{src: src, dst: dst, opts: opts, sem: make(chan struct{}, n), calls: map[digest.Digest]*call{}}
	return c.copy(ctx, root, "")
}

type copier struct {
	src   content.Fetcher
	dst   content.Storage
	opts  CopyOptions
	sem   chan struct{}
	mu    sync.Mutex
	calls map[digest.Digest]*call
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
	if ok, err := c.dst.Exists(ctx, d); err != nil {
		return err
	} else if ok {
		c.opts.Progress.Skip(d.Digest.String(), name, d.Size)
		return nil
	}
	if !image.IsManifest(d.MediaType) && !image.IsIndex(d.MediaType) {
		return c.transfer(ctx, d, name)
	}
	data, err := content.ReadAll(ctx, c.src, d, c.opts.MaxMetadataBytes)
	if err != nil {
		return err
	}
	node, err := content.DecodeNode(d, data)
	if err != nil {
		return err
	}
	g, gctx := errgroup.WithContext(ctx)
	for _, child := range node.Successors() {
		g.Go(func() error { return c.copy(gctx, child, d.Digest.String()) })
	}
	if err := g.Wait(); err != nil {
		return err
	}
	c.opts.Progress.Start(d.Digest.String(), name, d.Size)
	err = c.dst.Push(ctx, d, bytes.NewReader(data))
	c.opts.Progress.Finish(d.Digest.String(), name, d.Size, d.Size, err)
	return err
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
	rc, err := c.src.Fetch(ctx, d)
	if err != nil {
		c.opts.Progress.Finish(id, name, 0, d.Size, err)
		return err
	}
	defer rc.Close()
	r := c.opts.Progress.Reader(rc, id, name, d.Size)
	err = c.dst.Push(ctx, d, r)
	c.opts.Progress.Finish(id, name, r.N(), d.Size, err)
	return err
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
