package content

import (
	"context"
	"fmt"
	"strings"

	"github.com/lading-oci/lading/errdef"
	"github.com/lading-oci/lading/image"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// LoadedImage is one image read from a store: its manifest and configuration,
// verified against their descriptors and validated.
type LoadedImage struct {
	// Desc is the manifest's descriptor (with the platform an index gave it).
	Desc ocispec.Descriptor
	// Manifest and RawManifest are the parsed and raw manifest.
	Manifest    *ocispec.Manifest
	RawManifest []byte
	// ConfigFile and RawConfig are the parsed and raw configuration.
	ConfigFile *ocispec.Image
	RawConfig  []byte
	// Warnings are the problems of the manifest and config that reading
	// tolerated (see image.Warnings): worth reporting, not worth refusing
	// an image another tool wrote.
	Warnings image.ValidationErrors
}

// SelectManifest follows desc through (possibly nested) indexes to the
// manifest for platform (nil: image.DefaultPlatform). A manifest descriptor is
// returned as it is when platform is nil; with a platform, its config must
// name a matching platform. When nothing matches, the error is an
// *errdef.NotFoundError of a platform (errdef.ErrNotFound) that lists the
// platforms there are.
func SelectManifest(ctx context.Context, f Fetcher, desc ocispec.Descriptor, platform *ocispec.Platform) (ocispec.Descriptor, error) {
	want := image.DefaultPlatform()
	if platform != nil {
		want = *platform
	}
	for depth := 0; ; depth++ {
		switch {
		case image.IsManifest(desc.MediaType):
			if platform != nil && depth == 0 {
				if err := checkPlatform(ctx, f, desc, want); err != nil {
					return desc, err
				}
			}
			return desc, nil
		case image.IsSchema1(desc.MediaType):
			return desc, fmt.Errorf("%s: %w: Docker schema 1 manifests are not supported", desc.Digest, errdef.ErrUnsupported)
		case !image.IsIndex(desc.MediaType):
			return desc, fmt.Errorf("%s: %w: media type %q is neither an image manifest nor an index", desc.Digest, errdef.ErrUnsupported, desc.MediaType)
		}
		if depth > 8 {
			return desc, fmt.Errorf("%s: %w: indexes nested more than 8 deep", desc.Digest, errdef.ErrInvalid)
		}
		data, err := ReadAll(ctx, f, desc, 0)
		if err != nil {
			return desc, fmt.Errorf("read index %s: %w", desc.Digest, err)
		}
		idx, err := image.DecodeIndex(data)
		if err != nil {
			return desc, fmt.Errorf("index %s: %w", desc.Digest, err)
		}
		var next *ocispec.Descriptor
		var offered []string
		for i := range idx.Manifests {
			m := idx.Manifests[i]
			if m.Platform == nil {
				if image.IsIndex(m.MediaType) && next == nil {
					next = &idx.Manifests[i] // a nested index without a platform may hold it
				}
				continue
			}
			offered = append(offered, image.FormatPlatform(*m.Platform))
			if image.IsManifest(m.MediaType) && image.MatchPlatform(want, *m.Platform) {
				next = &idx.Manifests[i]
				break
			}
		}
		if next == nil && len(idx.Manifests) == 1 && idx.Manifests[0].Platform == nil && image.IsManifest(idx.Manifests[0].MediaType) {
			next = &idx.Manifests[0] // a single-image index without platforms
		}
		if next == nil {
			detail := "the index offers " + strings.Join(offered, ", ")
			if len(offered) == 0 {
				detail = "the index names no platforms"
			}
			return desc, &errdef.NotFoundError{What: errdef.WhatPlatform, Name: image.FormatPlatform(want), In: "index " + string(desc.Digest), Detail: detail}
		}
		desc = *next
	}
}

// checkPlatform reads the manifest desc and its config and checks that the
// config's platform is want.
func checkPlatform(ctx context.Context, f Fetcher, desc ocispec.Descriptor, want ocispec.Platform) error {
	_, err := LoadImage(ctx, f, desc, &want)
	return err
}

// LoadImage reads the image desc names, choosing from an index by platform
// (nil: image.DefaultPlatform), and returns its validated manifest and config.
func LoadImage(ctx context.Context, f Fetcher, desc ocispec.Descriptor, platform *ocispec.Platform) (*LoadedImage, error) {
	direct := image.IsManifest(desc.MediaType)
	sel := platform
	if direct {
		sel = nil // checked below, once the config is read
	}
	mdesc, err := SelectManifest(ctx, f, desc, sel)
	if err != nil {
		return nil, err
	}
	img := &LoadedImage{Desc: mdesc}
	if img.RawManifest, err = ReadAll(ctx, f, mdesc, 0); err != nil {
		return nil, fmt.Errorf("read manifest %s: %w", mdesc.Digest, err)
	}
	if img.Manifest, err = image.DecodeManifest(img.RawManifest, image.Warnings(&img.Warnings)); err != nil {
		return nil, fmt.Errorf("manifest %s: %w", mdesc.Digest, err)
	}
	if !image.IsConfig(img.Manifest.Config.MediaType) {
		return nil, fmt.Errorf("manifest %s: %w: config media type %q is not an image configuration (an artifact, not an image)",
			mdesc.Digest, errdef.ErrUnsupported, img.Manifest.Config.MediaType)
	}
	if img.RawConfig, err = ReadAll(ctx, f, img.Manifest.Config, 0); err != nil {
		return nil, fmt.Errorf("read config %s: %w", img.Manifest.Config.Digest, err)
	}
	if img.ConfigFile, err = image.DecodeConfig(img.RawConfig, image.Warnings(&img.Warnings)); err != nil {
		return nil, fmt.Errorf("config %s: %w", img.Manifest.Config.Digest, err)
	}
	if direct && platform != nil && !image.MatchPlatform(*platform, img.ConfigFile.Platform) {
		return nil, &errdef.NotFoundError{What: errdef.WhatPlatform, Name: image.FormatPlatform(*platform), In: "image " + string(desc.Digest),
			Detail: "the image is for " + image.FormatPlatform(img.ConfigFile.Platform)}
	}
	if n, m := len(img.ConfigFile.RootFS.DiffIDs), len(img.Manifest.Layers); n != m {
		return nil, fmt.Errorf("image %s: %w: config has %d diff_ids for %d layers", mdesc.Digest, errdef.ErrInvalid, n, m)
	}
	return img, nil
}
