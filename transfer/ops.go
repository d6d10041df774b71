package transfer

import (
	"context"
	"fmt"
	"maps"
	"sort"

	"github.com/lading-oci/lading/content"
	"github.com/lading-oci/lading/errdef"
	"github.com/lading-oci/lading/image"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Entry is one image a Target holds, as List reports it.
type Entry struct {
	// Tag is the name it has ("" for an untagged index.json entry).
	Tag string `json:"tag"`
	// Digest, MediaType and Size describe the manifest or index.
	Digest    string `json:"digest"`
	MediaType string `json:"mediaType"`
	Size      int64  `json:"size"`
	// Platforms are those of the image, or of each image of an index.
	Platforms []string `json:"platforms"`
	// ImageSize is what the image takes, as docker counts it: the config
	// and layers of a manifest, or of every image of an index (-1 when it
	// could not be read).
	ImageSize int64 `json:"imageSize"`
}

// indexed is a store whose images are the entries of an index.json: a
// layout or an oci-archive.
type indexed interface {
	Index(ctx context.Context) (ocispec.Index, error)
}

// List lists what t holds: for a layout or an oci-archive, every
// index.json entry; for another store, its tags. Entries are sorted by tag.
// Entries whose documents cannot be read are listed with what index.json
// says (platforms unknown, ImageSize -1).
func List(ctx context.Context, t *Target) ([]Entry, error) {
	var idx ocispec.Index
	if ix, ok := t.Store.(indexed); ok {
		var err error
		if idx, err = ix.Index(ctx); err != nil {
			return nil, err
		}
	} else if tl, ok := t.Store.(content.TagLister); ok {
		err := tl.Tags(ctx, func(tags []string) error {
			for _, tag := range tags {
				d, err := t.Store.Resolve(ctx, tag)
				if err != nil {
					return err
				}
				d.Annotations = maps.Clone(d.Annotations)
				if d.Annotations == nil {
					d.Annotations = map[string]string{}
				}
				d.Annotations[ocispec.AnnotationRefName] = tag
				idx.Manifests = append(idx.Manifests, d)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	} else {
		return nil, fmt.Errorf("list %s: %w: the store cannot list its images", t.Ref, errdef.ErrUnsupported)
	}
	entries := make([]Entry, 0, len(idx.Manifests))
	for _, d := range idx.Manifests {
		e := Entry{Tag: d.Annotations[ocispec.AnnotationRefName], Digest: d.Digest.String(), MediaType: d.MediaType, Size: d.Size, Platforms: []string{}}
		e.Platforms, e.ImageSize = describe(ctx, t.Store, d)
		entries = append(entries, e)
	}
	sort.SliceStable(entries, func(i, j int) bool { return entries[i].Tag < entries[j].Tag })
	return entries, nil
}

// describe finds the platforms and size of what d points at.
func describe(ctx context.Context, f content.Fetcher, d ocispec.Descriptor) ([]string, int64) {
	platforms := []string{}
	switch {
	case image.IsIndex(d.MediaType):
		data, err := content.ReadAll(ctx, f, d, 0)
		if err != nil {
			return platforms, -1
		}
		idx, err := image.DecodeIndex(data)
		if err != nil {
			return platforms, -1
		}
		var total int64
		for _, m := range idx.Manifests {
			ps, n := describe(ctx, f, m)
			if m.Platform != nil {
				ps = []string{image.FormatPlatform(*m.Platform)}
			}
			platforms = append(platforms, ps...)
			if n < 0 || total < 0 {
				total = -1
			} else {
				total += n
			}
		}
		return platforms, total
	case image.IsManifest(d.MediaType):
		img, err := content.LoadImage(ctx, f, d, nil)
		if err != nil {
			if d.Platform != nil {
				platforms = append(platforms, image.FormatPlatform(*d.Platform))
			}
			return platforms, -1
		}
		return []string{image.FormatPlatform(img.ConfigFile.Platform)}, ImageSize(img)
	}
	return platforms, -1
}

// ImageSize is the bytes an image takes: its config and its layers.
func ImageSize(img *content.LoadedImage) int64 {
	n := img.Manifest.Config.Size
	for _, l := range img.Manifest.Layers {
		n += l.Size
	}
	return n
}

// Tag gives what src's reference points at a new tag in the same store.
func Tag(ctx context.Context, src *Target, tag string) (ocispec.Descriptor, error) {
	if err := content.CheckTag(tag); err != nil {
		return ocispec.Descriptor{}, err
	}
	desc, err := src.Resolve(ctx)
	if err != nil {
		return desc, err
	}
	if err := src.Store.Tag(ctx, desc, tag); err != nil {
		return desc, err
	}
	return desc, nil
}

// Remove removes what t's reference names from its store: a tag, or, for a
// digest, every index.json entry with that digest. It returns the tags
// removed. The content stays until garbage collection.
func Remove(ctx context.Context, t *Target) ([]string, error) {
	switch {
	case t.Ref.Tag() != "":
		u, ok := t.Store.(content.Untagger)
		if !ok {
			return nil, fmt.Errorf("remove %s: %w: the store cannot remove tags", t.Ref, errdef.ErrUnsupported)
		}
		if err := u.Untag(ctx, t.Ref.Tag()); err != nil {
			return nil, fmt.Errorf("remove %s: %w", t.Ref, err)
		}
		return []string{t.Ref.Tag()}, nil
	case t.Ref.Digest() != "":
		lay, ok := t.Layout()
		if !ok {
			return nil, fmt.Errorf("remove %s: %w: removing by digest needs a layout", t.Ref, errdef.ErrUnsupported)
		}
		tags, err := lay.RemoveDigest(ctx, t.Ref.Digest())
		if err != nil {
			return nil, fmt.Errorf("remove %s: %w", t.Ref, err)
		}
		return tags, nil
	}
	return nil, fmt.Errorf("remove %s: %w: name a tag (:TAG) or a digest (@DIGEST) to remove", t.Ref, errdef.ErrInvalid)
}
