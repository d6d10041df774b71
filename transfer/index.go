package transfer

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"strings"

	"github.com/lading-oci/lading/content"
	"github.com/lading-oci/lading/errdef"
	"github.com/lading-oci/lading/image"
	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// IndexEntry returns the descriptor that lists what t's reference names in an
// index: an image's manifest with the platform its config names, or an
// index as it is.
func IndexEntry(ctx context.Context, t *Target) (ocispec.Descriptor, error) {
	desc, err := t.Resolve(ctx)
	if err != nil {
		return desc, err
	}
	entry := ocispec.Descriptor{MediaType: desc.MediaType, Digest: desc.Digest, Size: desc.Size}
	if image.IsManifest(desc.MediaType) {
		img, err := content.LoadImage(ctx, t.Store, desc, nil)
		if err != nil {
			return desc, fmt.Errorf("%s: %w", t.Ref, err)
		}
		p := img.ConfigFile.Platform
		entry.Platform = &ocispec.Platform{OS: p.OS, Architecture: p.Architecture, Variant: p.Variant, OSVersion: p.OSVersion, OSFeatures: p.OSFeatures}
	}
	return entry, nil
}

// CreateIndex makes an index of the images srcs name (each listed with its
// platform), copies them into dst's store where they live elsewhere, and
// stores and tags the index there.
func CreateIndex(ctx context.Context, dst *Target, srcs []*Target, annotations map[string]string) (ocispec.Descriptor, error) {
	idx := ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{}}
	if len(annotations) > 0 {
		idx.Annotations = maps.Clone(annotations)
	}
	if err := addEntries(ctx, dst, &idx, srcs); err != nil {
		dst.Abandon()
		return ocispec.Descriptor{}, err
	}
	desc, err := putIndex(ctx, dst, &idx)
	if err != nil {
		dst.Abandon()
	}
	return desc, err
}

// addEntries copies each source image into dst and lists it in idx,
// replacing an entry of the same platform.
func addEntries(ctx context.Context, dst *Target, idx *ocispec.Index, srcs []*Target) error {
	for _, src := range srcs {
		entry, err := IndexEntry(ctx, src)
		if err != nil {
			return err
		}
		if !SameStore(src, dst) {
			if err := CopyGraph(ctx, src.Store, dst.Store, entry, CopyOptions{}); err != nil {
				return fmt.Errorf("copy %s: %w", src.Ref, err)
			}
		}
		kept := idx.Manifests[:0]
		for _, m := range idx.Manifests {
			if m.Digest == entry.Digest || entry.Platform != nil && m.Platform != nil && image.FormatPlatform(*m.Platform) == image.FormatPlatform(*entry.Platform) {
				continue
			}
			kept = append(kept, m)
		}
		idx.Manifests = append(kept, entry)
	}
	return nil
}

// putIndex validates, stores and tags idx in t.
func putIndex(ctx context.Context, t *Target, idx *ocispec.Index) (ocispec.Descriptor, error) {
	data, err := json.Marshal(idx)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	if _, err := image.DecodeIndex(data); err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("new index: %w", err)
	}
	desc := ocispec.Descriptor{MediaType: idx.MediaType, Digest: digest.FromBytes(data), Size: int64(len(data))}
	if desc.MediaType == "" {
		desc.MediaType = ocispec.MediaTypeImageIndex
	}
	if err := t.Store.Push(ctx, desc, strings.NewReader(string(data))); err != nil {
		return desc, err
	}
	if tag := t.Tag(); tag != "" {
		if err := t.Store.Tag(ctx, desc, tag); err != nil {
			return desc, err
		}
	}
	return desc, nil
}

// IndexEdit is a change to an index: images to add (copied into its store),
// entries to remove (by digest or by platform), and annotations to set on
// the index or on its entries.
type IndexEdit struct {
	Add []*Target
	// RemoveDigests and RemovePlatforms name entries to remove; naming one
	// that is not there is an error (errdef.ErrNotFound).
	RemoveDigests   []digest.Digest
	RemovePlatforms []ocispec.Platform
	// Annotations are set on the index itself.
	Annotations map[string]string
	// EntryAnnotations are set on the entries EntryDigest or EntryPlatform
	// picks.
	EntryAnnotations map[string]string
	EntryDigest      digest.Digest
	EntryPlatform    *ocispec.Platform
}

// EditIndex changes the index t's reference names and stores the new one
// under t's tag. The entries keep their order; added ones come last.
func EditIndex(ctx context.Context, t *Target, e IndexEdit) (ocispec.Descriptor, error) {
	desc, err := t.Resolve(ctx)
	if err != nil {
		return desc, err
	}
	if !image.IsIndex(desc.MediaType) {
		return desc, fmt.Errorf("%s: %w: %s is not an index (%s)", t.Ref, errdef.ErrInvalid, desc.Digest, desc.MediaType)
	}
	data, err := content.ReadAll(ctx, t.Store, desc, 0)
	if err != nil {
		return desc, err
	}
	idx, err := image.DecodeIndex(data)
	if err != nil {
		return desc, fmt.Errorf("index %s: %w", desc.Digest, err)
	}
	if err := addEntries(ctx, t, idx, e.Add); err != nil {
		return desc, err
	}
	for _, d := range e.RemoveDigests {
		if !removeEntries(idx, func(m ocispec.Descriptor) bool { return m.Digest == d }) {
			return desc, &errdef.NotFoundError{What: errdef.WhatManifest, Name: string(d), In: "index " + string(desc.Digest)}
		}
	}
	for _, p := range e.RemovePlatforms {
		if !removeEntries(idx, func(m ocispec.Descriptor) bool { return m.Platform != nil && image.MatchPlatform(p, *m.Platform) }) {
			return desc, &errdef.NotFoundError{What: errdef.WhatPlatform, Name: image.FormatPlatform(p), In: "index " + string(desc.Digest)}
		}
	}
	if len(e.Annotations) > 0 {
		if idx.Annotations == nil {
			idx.Annotations = map[string]string{}
		}
		maps.Copy(idx.Annotations, e.Annotations)
	}
	if len(e.EntryAnnotations) > 0 {
		n := 0
		for i, m := range idx.Manifests {
			if e.EntryDigest != "" && m.Digest == e.EntryDigest || e.EntryPlatform != nil && m.Platform != nil && image.MatchPlatform(*e.EntryPlatform, *m.Platform) {
				if idx.Manifests[i].Annotations == nil {
					idx.Manifests[i].Annotations = map[string]string{}
				}
				maps.Copy(idx.Manifests[i].Annotations, e.EntryAnnotations)
				n++
			}
		}
		if n == 0 {
			return desc, &errdef.NotFoundError{What: errdef.WhatManifest, Name: "the entry to annotate", In: "index " + string(desc.Digest)}
		}
	}
	return putIndex(ctx, t, idx)
}

// removeEntries removes the entries match picks and reports whether there
// were any.
func removeEntries(idx *ocispec.Index, match func(ocispec.Descriptor) bool) bool {
	n := len(idx.Manifests)
	kept := idx.Manifests[:0]
	for _, m := range idx.Manifests {
		if !match(m) {
			kept = append(kept, m)
		}
	}
	idx.Manifests = kept
	return len(kept) < n
}
