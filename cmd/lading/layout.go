package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/lading-oci/lading/content"
	"github.com/lading-oci/lading/content/ocilayout"
	"github.com/lading-oci/lading/errdef"
	"github.com/lading-oci/lading/image"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/spf13/cobra"
)

func newInitCmd(_ *rootOptions) *cobra.Command {
	return &cobra.Command{
		Use:     "init DIR",
		Short:   "Create an empty OCI image layout",
		Example: "  lading init ./images",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := strings.TrimPrefix(args[0], "oci:")
			if _, err := track(ocilayout.Init(context.Background(), dir)); err != nil {
				return err
			}
			printf(cmd, "initialized OCI layout in %s\n", dir)
			return nil
		},
	}
}

// lsEntry is one line of `lading ls`.
type lsEntry struct {
	Tag       string   `json:"tag,omitempty"`
	Digest    string   `json:"digest"`
	MediaType string   `json:"mediaType"`
	Size      int64    `json:"size"`
	Platforms []string `json:"platforms,omitempty"`
}

func newLsCmd(_ *rootOptions) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "ls DIR",
		Short: "List the images in a layout: tags, digests, media types, platforms",
		Example: `  lading ls ./images
  lading ls oci:./images --format json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := track(ocilayout.Open(context.Background(), strings.TrimPrefix(args[0], "oci:")))
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			idx, err := st.Index(ctx)
			if err != nil {
				return err
			}
			var entries []lsEntry
			for _, d := range idx.Manifests {
				e := lsEntry{Tag: d.Annotations[ocispec.AnnotationRefName], Digest: d.Digest.String(), MediaType: d.MediaType, Size: d.Size}
				e.Platforms = platformsOf(ctx, st, d)
				entries = append(entries, e)
			}
			sort.SliceStable(entries, func(i, j int) bool { return entries[i].Tag < entries[j].Tag })
			return writeJSONOrText(cmd, format, entries, func(w io.Writer) error {
				tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "TAG\tDIGEST\tMEDIA TYPE\tSIZE\tPLATFORM")
				for _, e := range entries {
					tag := e.Tag
					if tag == "" {
						tag = "<none>"
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\n", tag, e.Digest, e.MediaType, e.Size, strings.Join(e.Platforms, ","))
				}
				return tw.Flush()
			})
		},
	}
	cmd.Flags().StringVar(&format, "format", "", "output format: json")
	return cmd
}

// platformsOf names the platforms of what d points at: the descriptor's own
// platform, the platforms an index lists, or a manifest's config platform.
func platformsOf(ctx context.Context, st *ocilayout.Store, d ocispec.Descriptor) []string {
	if d.Platform != nil {
		return []string{image.FormatPlatform(*d.Platform)}
	}
	switch {
	case image.IsIndex(d.MediaType):
		data, err := content.ReadAll(ctx, st, d, 0)
		if err != nil {
			return []string{"?"}
		}
		idx, err := image.DecodeIndex(data)
		if err != nil {
			return []string{"?"}
		}
		var out []string
		for _, m := range idx.Manifests {
			if m.Platform != nil {
				out = append(out, image.FormatPlatform(*m.Platform))
			}
		}
		return out
	case image.IsManifest(d.MediaType):
		img, err := content.LoadImage(ctx, st, d, nil)
		if err != nil {
			return nil
		}
		return []string{image.FormatPlatform(img.ConfigFile.Platform)}
	}
	return nil
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// writeJSONOrText writes v as indented JSON for --format json, or with text
// without --format; any other format is refused.
func writeJSONOrText(cmd *cobra.Command, format string, v any, text func(io.Writer) error) error {
	switch format {
	case "json":
		return writeJSON(cmd.OutOrStdout(), v)
	case "":
		return text(cmd.OutOrStdout())
	}
	return fmt.Errorf("--format %q: %w: want json", format, errdef.ErrInvalid)
}

func newTagCmd(_ *rootOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "tag SRC_REF DST_TAG",
		Short: "Tag an image: a new name in the same layout, or a copy into another layout",
		Example: `  lading tag oci:./images:v1.2.0 v1.2
  lading tag oci:./images@sha256:6c3c62... latest
  lading tag oci:./images:v1 oci:./release:v1`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			src, desc, err := openImage(ctx, args[0])
			if err != nil {
				return err
			}
			dst, tag := src, args[1]
			if strings.Contains(args[1], ":") {
				if dst, tag, err = destination(args[1]); err != nil {
					return err
				}
				if err := copyGraph(ctx, src, dst, desc); err != nil {
					return err
				}
			}
			if err := dst.Tag(ctx, desc, tag); err != nil {
				return err
			}
			printf(cmd, "%s %s\n", tag, desc.Digest)
			return nil
		},
	}
}

// copyGraph copies desc and everything it references from src into dst,
// unless both are the same layout.
func copyGraph(ctx context.Context, src, dst *ocilayout.Store, desc ocispec.Descriptor) error {
	if sameDir(src.Dir(), dst.Dir()) {
		return nil
	}
	return content.WalkGraph(ctx, src, []ocispec.Descriptor{desc}, func(ctx context.Context, d ocispec.Descriptor) error {
		if err := content.Copy(ctx, src, dst, d); err != nil {
			return fmt.Errorf("copy %s: %w", d.Digest, err)
		}
		return nil
	})
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

func sameDir(a, b string) bool {
	aa, err1 := filepath.Abs(a)
	bb, err2 := filepath.Abs(b)
	return err1 == nil && err2 == nil && filepath.Clean(aa) == filepath.Clean(bb)
}

func newRmCmd(_ *rootOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "rm REF...",
		Short: "Remove tags (the content stays until gc)",
		Example: `  lading rm oci:./images:old
  lading rm oci:./images:old oci:./images:older && lading gc ./images`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			for _, a := range args {
				r, err := layoutRef(a, false)
				if err != nil {
					return err
				}
				st, err := openLayout(r, false)
				if err != nil {
					return err
				}
				switch {
				case r.Tag() != "":
					if err := st.Untag(ctx, r.Tag()); err != nil {
						return err
					}
				case r.Digest() != "":
					removed := 0
					if err := st.UpdateIndex(ctx, func(idx *ocispec.Index) error {
						kept := idx.Manifests[:0]
						for _, m := range idx.Manifests {
							if m.Digest == r.Digest() {
								removed++
								continue
							}
							kept = append(kept, m)
						}
						idx.Manifests = kept
						return nil
					}); err != nil {
						return err
					}
					if removed == 0 {
						return fmt.Errorf("%s: %w: no index.json entry has that digest", a, errdef.ErrNotFound)
					}
				default:
					return fmt.Errorf("%s: %w: name a tag or a digest to remove", a, errdef.ErrInvalid)
				}
				printf(cmd, "removed %s\n", a)
			}
			return nil
		},
	}
}
