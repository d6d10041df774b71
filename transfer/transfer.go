// Package transfer opens image references and moves images between them.
//
// Open turns a parsed reference (oci:DIR:TAG, …) into a Target: the store
// the reference names and what in it the reference points at. Copy copies
// an image or an index, and everything it references, from one Target to
// another, children before parents, so a destination never holds a
// manifest whose blobs are missing, even after a crash. The other
// functions are the reference-level operations of the CLI (list, tag,
// remove) for Go callers.
package transfer

import (
	"context"
	"errors"
	"fmt"
	"github.com/lading-oci/lading/registry/client"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/lading-oci/lading/content"
	"github.com/lading-oci/lading/content/ocilayout"
	"github.com/lading-oci/lading/errdef"
	"github.com/lading-oci/lading/ref"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Target is an opened reference: the store it names and the reference
// itself, which says what in the store it points at.
type Target struct {
	// Ref is the reference the Target was opened for.
	Ref ref.Reference
	// Store is where the reference's images live.
	Store content.TagStore

	layout  *ocilayout.Store
	created string // the directory Open made, removed by Abandon

	// For stores other than layouts: how the reference resolves, how the
	// store is closed (an archive being written is committed) and
	// abandoned (discarded), and the tag a copy sets.
	resolve func(ctx context.Context) (ocispec.Descriptor, error)
	close   func() error
	abandon func()
	tag     string
	repo    *client.Repository
}

// OpenOptions configure Open.
type OpenOptions struct {
	// Create makes the place the reference names when it does not exist
	// (an empty OCI layout), for a destination.
	Create bool
	// MaxMetadataBytes caps manifests, indexes and configs read from the
	// store (0: content.DefaultMaxMetadataBytes).
	MaxMetadataBytes int64
	// Client talks to registries for registry references; nil makes one
	// that finds credentials as the docker CLI does (DockerCredentials).
	Client *client.Client
}

// Open opens the store r names: an OCI image layout (oci:), an oci-archive
// or a docker-archive file, or a repository of a registry (docker:// or a
// bare name, through opts.Client). A missing layout or file is an
// *errdef.NotFoundError unless opts.Create, which makes a layout, or starts
// a new archive (written when the Target is closed; Abandon discards it).
// A registry is not contacted until the Target is used.
func Open(ctx context.Context, r ref.Reference, opts OpenOptions) (*Target, error) {
	switch r.Scheme() {
	case ref.SchemeOCI:
		return openLayout(ctx, r, opts)
	case ref.SchemeOCIArchive, ref.SchemeDockerArchive:
		return openArchive(ctx, r, opts)
	case ref.SchemeRegistry:
		return openRegistry(ctx, r, opts)
	}
	return nil, fmt.Errorf("open %s: %w: unknown transport %q", r, errdef.ErrUnsupported, r.Scheme())
}

func openLayout(ctx context.Context, r ref.Reference, opts OpenOptions) (*Target, error) {
	var lo []ocilayout.Option
	if opts.MaxMetadataBytes > 0 {
		lo = append(lo, ocilayout.WithMaxMetadataBytes(opts.MaxMetadataBytes))
	}
	t := &Target{Ref: r}
	if !opts.Create {
		st, err := ocilayout.Open(ctx, r.Path(), lo...)
		if err != nil {
			return nil, err
		}
		t.layout, t.Store = st, st
		return t, nil
	}
	// Remember what did not exist, so a failed write can leave no layout
	// behind.
	if _, err := os.Stat(filepath.Join(r.Path(), ocispec.ImageLayoutFile)); errors.Is(err, fs.ErrNotExist) {
		top := r.Path()
		for {
			parent := filepath.Dir(top)
			if _, err := os.Stat(parent); err == nil || parent == top {
				break
			}
			top = parent
		}
		if _, err := os.Stat(top); errors.Is(err, fs.ErrNotExist) {
			t.created = top
		} else if empty(r.Path()) {
			t.created = r.Path()
		}
	}
	st, err := ocilayout.Init(ctx, r.Path(), lo...)
	if err != nil {
		t.Abandon()
		return nil, err
	}
	t.layout, t.Store = st, st
	return t, nil
}

// empty reports whether dir is an existing empty directory.
func empty(dir string) bool {
	ents, err := os.ReadDir(dir)
	return err == nil && len(ents) == 0
}

// Tag is the tag a copy or build sets on what it writes to t: the
// reference's tag ("" for none), or, for a docker-archive, its REPO:TAG.
func (t *Target) Tag() string {
	if t.tag != "" {
		return t.tag
	}
	return t.Ref.Tag()
}

// Layout returns the OCI layout behind t, if it is one.
func (t *Target) Layout() (*ocilayout.Store, bool) {
	return t.layout, t.layout != nil
}

// Close releases the store (for a layout, the writers' lock that holds
// garbage collection off while it writes; an archive being written is
// written out).
func (t *Target) Close() error {
	if t.layout != nil {
		return t.layout.Close()
	}
	if t.close != nil {
		c := t.close
		t.close, t.abandon = nil, nil
		return c()
	}
	return nil
}

// Abandon undoes Open's creation of a destination after a failure: a
// layout directory that Open made (with the directories above it that it
// made) is removed, so a failed copy or build leaves nothing behind. A
// destination that existed before is left alone.
func (t *Target) Abandon() {
	if t.abandon != nil {
		a := t.abandon
		t.close, t.abandon = nil, nil
		a()
		return
	}
	if t.created == "" {
		return
	}
	if t.layout != nil {
		t.layout.Close()
	}
	_ = os.RemoveAll(t.created)
	t.created = ""
}

// Resolve returns the descriptor the reference points at: its digest, its
// tag, or, naming neither, the only image of a layout (or the one tagged
// latest).
func (t *Target) Resolve(ctx context.Context) (ocispec.Descriptor, error) {
	if t.resolve != nil {
		desc, err := t.resolve(ctx)
		if err != nil {
			return desc, fmt.Errorf("%s: %w", t.Ref, err)
		}
		return desc, nil
	}
	if d := t.Ref.Digest(); d != "" {
		desc, err := t.Store.Resolve(ctx, d.String())
		if err != nil {
			return desc, fmt.Errorf("%s: %w", t.Ref, err)
		}
		return desc, nil
	}
	if tag := t.Ref.Tag(); tag != "" {
		desc, err := t.Store.Resolve(ctx, tag)
		if err != nil {
			return desc, fmt.Errorf("%s: %w", t.Ref, err)
		}
		return desc, nil
	}
	if t.layout == nil {
		return t.Store.Resolve(ctx, "latest")
	}
	idx, err := t.layout.Index(ctx)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	switch len(idx.Manifests) {
	case 0:
		return ocispec.Descriptor{}, fmt.Errorf("%s: %w", t.Ref, &errdef.NotFoundError{What: errdef.WhatManifest, In: "layout " + t.Ref.Path(), Detail: "the layout holds no images"})
	case 1:
		return idx.Manifests[0], nil
	}
	if d, err := t.Store.Resolve(ctx, "latest"); err == nil {
		return d, nil
	}
	var tags []string
	for _, m := range idx.Manifests {
		if n := m.Annotations[ocispec.AnnotationRefName]; n != "" {
			tags = append(tags, n)
		}
	}
	hint := ""
	if len(tags) > 0 {
		if len(tags) > 5 {
			tags = append(tags[:5], "…")
		}
		hint = " (tags: " + strings.Join(tags, ", ") + ")"
	}
	return ocispec.Descriptor{}, fmt.Errorf("%s: %w: the layout holds %d images and none is tagged latest; name one with :TAG or @DIGEST%s",
		t.Ref, errdef.ErrInvalid, len(idx.Manifests), hint)
}

// Select resolves the reference and, with a platform, follows an index to
// that platform's manifest (content.SelectManifest); without one an index
// is returned as it is.
func (t *Target) Select(ctx context.Context, platform *ocispec.Platform) (ocispec.Descriptor, error) {
	desc, err := t.Resolve(ctx)
	if err != nil || platform == nil {
		return desc, err
	}
	sel, err := content.SelectManifest(ctx, t.Store, desc, platform)
	if err != nil {
		return desc, fmt.Errorf("%s: %w", t.Ref, err)
	}
	return sel, nil
}

// Image resolves the reference and loads its image for platform (nil:
// image.DefaultPlatform), verified and validated (content.LoadImage).
func (t *Target) Image(ctx context.Context, platform *ocispec.Platform) (*content.LoadedImage, error) {
	desc, err := t.Resolve(ctx)
	if err != nil {
		return nil, err
	}
	img, err := content.LoadImage(ctx, t.Store, desc, platform)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", t.Ref, err)
	}
	return img, nil
}

// SameStore reports whether a and b are the same layout directory, where
// copying between them is nothing to do.
func SameStore(a, b *Target) bool {
	if a.layout == nil || b.layout == nil {
		return false
	}
	return sameDir(a.layout.Dir(), b.layout.Dir())
}

func sameDir(a, b string) bool {
	aa, err1 := filepath.Abs(a)
	bb, err2 := filepath.Abs(b)
	if err1 != nil || err2 != nil {
		return false
	}
	if filepath.Clean(aa) == filepath.Clean(bb) {
		return true
	}
	fa, err1 := os.Stat(aa)
	fb, err2 := os.Stat(bb)
	return err1 == nil && err2 == nil && os.SameFile(fa, fb)
}
