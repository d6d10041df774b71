package main

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/lading-oci/lading/content"
	"github.com/lading-oci/lading/errdef"
	"github.com/lading-oci/lading/image"
	"github.com/lading-oci/lading/ref"
	"github.com/lading-oci/lading/transfer"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// parseRef parses an image reference given on the command line. Strings
// that look like a path of a layout, not an image name, get a message
// saying how to name it.
func parseRef(s string) (ref.Reference, error) {
	r, err := ref.Parse(s)
	if looksLikePath(s) && (err != nil || r.Scheme() == ref.SchemeRegistry) {
		return r, usageError{fmt.Errorf("%q is a path, not an image reference: to name the OCI layout there, write oci:%s (or oci:%s:TAG)", s, s, s)}
	}
	if err != nil {
		return r, usageError{err}
	}
	return r, nil
}

// looksLikePath reports whether s names a path rather than an image: it
// starts with ./, ../, / or ~, or is an existing directory.
func looksLikePath(s string) bool {
	if strings.Contains(s, "://") || strings.HasPrefix(s, "oci:") || strings.HasPrefix(s, "oci-archive:") || strings.HasPrefix(s, "docker-archive:") {
		return false
	}
	for _, p := range []string{"./", "../", "/", "~", "."} {
		if s == p || strings.HasPrefix(s, p) && p != "." {
			return true
		}
	}
	fi, err := os.Stat(s)
	return err == nil && fi.IsDir()
}

// layoutArg parses the argument of a command that takes a layout
// directory: DIR or oci:DIR (a tag or digest is refused).
func layoutArg(s string) (ref.Reference, error) {
	in := s
	if !strings.HasPrefix(s, "oci:") {
		s = "oci:" + s
	}
	r, err := ref.Parse(s)
	if err != nil {
		return r, usageError{err}
	}
	if r.Tag() != "" || r.Digest() != "" {
		return r, usageError{fmt.Errorf("%q: %w: name a layout directory, without :TAG or @DIGEST", in, errdef.ErrInvalid)}
	}
	return r, nil
}

// open parses s and opens what it names; with create, a missing layout is
// made (a destination).
func (o *rootOptions) open(ctx context.Context, s string, create bool) (*transfer.Target, error) {
	r, err := parseRef(s)
	if err != nil {
		return nil, err
	}
	return o.openRef(ctx, r, create)
}

func (o *rootOptions) openRef(ctx context.Context, r ref.Reference, create bool) (*transfer.Target, error) {
	return o.openSide(ctx, r, create, anySide)
}

// openSide opens r as one side of a copy (for copy's per-side flags).
func (o *rootOptions) openSide(ctx context.Context, r ref.Reference, create bool, sd side) (*transfer.Target, error) {
	o.log().Debug("open", "reference", r.String(), "create", create)
	var opts transfer.OpenOptions
	opts.Create = create
	if r.Scheme() == ref.SchemeRegistry {
		c, err := o.clientFor(o.cmd, r, sd)
		if err != nil {
			return nil, err
		}
		opts.Client = c
	}
	t, err := transfer.Open(ctx, r, opts)
	if err != nil {
		return nil, err
	}
	return o.track(t), nil
}

// openPlace opens what a command that lists or checks a place takes: a
// reference with a transport prefix, or a layout directory.
func (o *rootOptions) openPlace(ctx context.Context, s string) (*transfer.Target, error) {
	if isTransportRef(s) && !strings.HasPrefix(s, "oci:") {
		return o.open(ctx, s, false)
	}
	return o.openLayout(ctx, s, false)
}

// openLayout opens the layout a DIR or oci:DIR argument names.
func (o *rootOptions) openLayout(ctx context.Context, s string, create bool) (*transfer.Target, error) {
	r, err := layoutArg(s)
	if err != nil {
		return nil, err
	}
	return o.openRef(ctx, r, create)
}

// destination opens a reference an image is written to: oci:DIR:TAG, the
// layout made if needed.
func (o *rootOptions) destination(ctx context.Context, s string) (*transfer.Target, error) {
	return o.destinationSide(ctx, s, anySide)
}

func (o *rootOptions) destinationSide(ctx context.Context, s string, sd side) (*transfer.Target, error) {
	r, err := parseRef(s)
	if err != nil {
		return nil, err
	}
	if r.Tag() == "" {
		switch r.Scheme() {
		case ref.SchemeOCI:
			return nil, usageError{fmt.Errorf("destination %q: %w: name a tag (oci:DIR:TAG)", s, errdef.ErrInvalid)}
		case ref.SchemeOCIArchive:
			return nil, usageError{fmt.Errorf("destination %q: %w: name a tag (oci-archive:FILE:TAG)", s, errdef.ErrInvalid)}
		case ref.SchemeDockerArchive:
			return nil, usageError{fmt.Errorf("destination %q: %w: name the image (docker-archive:FILE:REPO:TAG)", s, errdef.ErrInvalid)}
		}
	}
	return o.openSide(ctx, r, true, sd)
}

// loadImage opens s and loads its image for platform ("" for linux on this
// machine's architecture), warning of what reading it tolerated.
func (o *rootOptions) loadImage(cmd *cobra.Command, s, platform string) (*transfer.Target, *content.LoadedImage, error) {
	p, err := parsePlatform(platform)
	if err != nil {
		return nil, nil, err
	}
	t, err := o.open(cmd.Context(), s, false)
	if err != nil {
		return nil, nil, err
	}
	img, err := t.Image(cmd.Context(), p)
	if err != nil {
		return nil, nil, err
	}
	o.log().Debug("loaded image", "reference", s, "manifest", img.Desc.Digest.String(), "config", img.Manifest.Config.Digest.String(),
		"layers", len(img.Manifest.Layers))
	warnImage(cmd, img)
	return t, img, nil
}

// warnImage prints what reading img tolerated.
func warnImage(cmd *cobra.Command, img *content.LoadedImage) {
	for _, w := range img.Warnings {
		warn(cmd, "image %s: %s", img.Desc.Digest, w)
	}
}

func parsePlatform(s string) (*ocispec.Platform, error) {
	if s == "" {
		return nil, nil
	}
	p, err := image.ParsePlatform(s)
	if err != nil {
		return nil, usageError{fmt.Errorf("--platform: %w", err)}
	}
	return &p, nil
}

// completeRef completes image references for the shell: the tags of the
// layout named so far (oci:DIR:TAG), or the oci: prefix.
func completeRef(cmd *cobra.Command, _ []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	rest, ok := strings.CutPrefix(toComplete, "oci:")
	if !ok {
		return []string{"oci:"}, cobra.ShellCompDirectiveNoSpace
	}
	dir := rest
	if i := strings.IndexByte(rest, ':'); i >= 0 {
		dir = rest[:i]
	}
	r, err := ref.Parse("oci:" + dir)
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	t, err := transfer.Open(cmd.Context(), r, transfer.OpenOptions{})
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	defer t.Close()
	entries, err := transfer.List(cmd.Context(), t)
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var out []string
	for _, e := range entries {
		if e.Tag != "" {
			out = append(out, "oci:"+dir+":"+e.Tag)
		}
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}
