package main

import (
	"strings"
	"sync"

	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/lading-oci/lading/content"
	"github.com/lading-oci/lading/content/ocilayout"
	"github.com/lading-oci/lading/errdef"
	"github.com/lading-oci/lading/image"
	"github.com/lading-oci/lading/ref"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// layoutRef parses an image reference that names an OCI layout. A bare
// directory path is taken as oci:PATH when allowBare is set.
func layoutRef(s string, allowBare bool) (ref.Reference, error) {
	r, err := ref.Parse(s)
	if err != nil && allowBare {
		if r2, err2 := ref.Parse("oci:" + s); err2 == nil {
			return r2, nil
		}
	}
	if err != nil {
		return r, err
	}
	if r.Scheme() != ref.SchemeOCI {
		if allowBare && r.Scheme() == ref.SchemeRegistry {
			if r2, err2 := ref.Parse("oci:" + s); err2 == nil {
				return r2, nil
			}
		}
		return r, fmt.Errorf("reference %q: %w: only oci:DIR[:TAG|@DIGEST] references are supported so far", s, errdef.ErrUnsupported)
	}
	return r, nil
}

// stores are the layouts the running command has opened; closeStores
// closes them when it ends, releasing the writers' lock that a write takes
// (which keeps gc in other processes from collecting untagged blobs).
var stores struct {
	mu   sync.Mutex
	list []*ocilayout.Store
}

// track records a store just opened, to be closed by closeStores.
func track(st *ocilayout.Store, err error) (*ocilayout.Store, error) {
	if err == nil {
		stores.mu.Lock()
		stores.list = append(stores.list, st)
		stores.mu.Unlock()
	}
	return st, err
}

// closeStores closes every store the command opened.
func closeStores() {
	stores.mu.Lock()
	defer stores.mu.Unlock()
	for _, st := range stores.list {
		st.Close()
	}
	stores.list = nil
}

// openLayout opens (or, with create, initialises) the layout r names.
func openLayout(r ref.Reference, create bool) (*ocilayout.Store, error) {
	if create {
		return track(ocilayout.Init(context.Background(), r.Path()))
	}
	return track(ocilayout.Open(context.Background(), r.Path()))
}

// resolveRef resolves r in st: its digest, its tag, or, with neither, the
// only image in the layout (or the one tagged latest).
func resolveRef(ctx context.Context, st *ocilayout.Store, r ref.Reference) (ocispec.Descriptor, error) {
	if d := r.Digest(); d != "" {
		return st.Resolve(ctx, d.String())
	}
	if t := r.Tag(); t != "" {
		return st.Resolve(ctx, t)
	}
	idx, err := st.Index(ctx)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	switch len(idx.Manifests) {
	case 0:
		return ocispec.Descriptor{}, fmt.Errorf("%s: %w: the layout holds no images", r, errdef.ErrNotFound)
	case 1:
		return idx.Manifests[0], nil
	}
	if d, err := st.Resolve(ctx, "latest"); err == nil {
		return d, nil
	}
	return ocispec.Descriptor{}, fmt.Errorf("%s: %w: the layout holds %d images; name one with :TAG or @DIGEST", r, errdef.ErrInvalid, len(idx.Manifests))
}

// openImage opens the layout s names and resolves its image.
func openImage(ctx context.Context, s string) (*ocilayout.Store, ocispec.Descriptor, error) {
	r, err := layoutRef(s, false)
	if err != nil {
		return nil, ocispec.Descriptor{}, err
	}
	st, err := openLayout(r, false)
	if err != nil {
		return nil, ocispec.Descriptor{}, err
	}
	desc, err := resolveRef(ctx, st, r)
	if err != nil {
		return nil, ocispec.Descriptor{}, err
	}
	return st, desc, nil
}

// openSelected opens s and resolves it; with a platform, an index is
// followed to that platform's manifest.
func openSelected(ctx context.Context, s, platform string) (*ocilayout.Store, ocispec.Descriptor, error) {
	st, desc, err := openImage(ctx, s)
	if err != nil || platform == "" {
		return st, desc, err
	}
	p, err := parsePlatform(platform)
	if err != nil {
		return nil, desc, err
	}
	desc, err = content.SelectManifest(ctx, st, desc, p)
	return st, desc, err
}

// loadImage opens s and loads its image for platform ("" for this machine's).
func loadImage(ctx context.Context, s, platform string) (*ocilayout.Store, *content.LoadedImage, error) {
	p, err := parsePlatform(platform)
	if err != nil {
		return nil, nil, err
	}
	st, desc, err := openImage(ctx, s)
	if err != nil {
		return nil, nil, err
	}
	img, err := content.LoadImage(ctx, st, desc, p)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", s, err)
	}
	return st, img, nil
}

func parsePlatform(s string) (*ocispec.Platform, error) {
	if s == "" {
		return nil, nil
	}
	p, err := image.ParsePlatform(s)
	if err != nil {
		return nil, err
	}
	return &p, nil
}

// destination parses a writable reference: oci:DIR:TAG (the layout is
// created if needed). It returns the store and the tag to set.
func destination(s string) (*ocilayout.Store, string, error) {
	r, err := layoutRef(s, false)
	if err != nil {
		return nil, "", err
	}
	if r.Tag() == "" {
		return nil, "", fmt.Errorf("destination %q: %w: name a tag (oci:DIR:TAG)", s, errdef.ErrInvalid)
	}
	st, err := openLayout(r, true)
	if err != nil {
		return nil, "", err
	}
	return st, r.Tag(), nil
}

// completeRef completes image references for the shell: the tags of the
// layout named so far (oci:DIR:TAG), or the oci: prefix.
func completeRef(cmd *cobra.Command, _ []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	rest, ok := strings.CutPrefix(toComplete, "oci:")
	if !ok {
		return []string{"oci:"}, cobra.ShellCompDirectiveNoSpace
	}
	dir := rest
	if i := strings.LastIndex(rest, ":"); i >= 0 {
		dir = rest[:i]
	}
	st, err := track(ocilayout.Open(context.Background(), dir))
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var out []string
	_ = st.Tags(cmd.Context(), func(tags []string) error {
		for _, t := range tags {
			out = append(out, "oci:"+dir+":"+t)
		}
		return nil
	})
	return out, cobra.ShellCompDirectiveNoFileComp
}
