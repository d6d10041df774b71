package main

import (
	"context"
	"io"

	"github.com/lading-oci/lading/content"
	"github.com/lading-oci/lading/layer/analyze"
	"github.com/spf13/cobra"
)

// analyzeLayers turns an image's layers into analysis inputs whose streams
// are verified against their descriptors.
func analyzeLayers(ctx context.Context, f content.Fetcher, img *content.LoadedImage) []analyze.Layer {
	out := make([]analyze.Layer, len(img.Manifest.Layers))
	for i, l := range img.Manifest.Layers {
		out[i] = analyze.Layer{Digest: l.Digest, Open: func() (io.ReadCloser, error) {
			rc, err := f.Fetch(ctx, l)
			if err != nil {
				return nil, err
			}
			return struct {
				io.Reader
				io.Closer
			}{content.NewVerifyReader(rc, l), rc}, nil
		}}
	}
	return out
}

func newLayersCmd(_ *rootOptions) *cobra.Command {
	var (
		platform, format string
		files            bool
		top              int
	)
	cmd := &cobra.Command{
		Use:   "layers REF",
		Short: "Per layer: files added, changed and removed, and wasted bytes; the image's efficiency",
		Long: `Account for every byte an image ships, from the layers' tar headers: per layer the files it adds, changes
and removes, and its wasted bytes — files that a later layer overwrites or deletes (including everything under a
deleted directory and everything an opaque whiteout hides), which are shipped but never seen. Efficiency is the
share of shipped file bytes that reach the final filesystem.`,
		Example: `  lading layers oci:./images:app
  lading layers oci:./images:app --format json | jq .wastedBytes
  lading layers oci:./images:app --files --top 50`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			st, img, err := loadImage(ctx, args[0], platform)
			if err != nil {
				return err
			}
			rep, err := analyze.Analyze(ctx, analyzeLayers(ctx, st, img), analyze.Options{Files: files})
			if err != nil {
				return err
			}
			return writeJSONOrText(cmd, format, rep, func(w io.Writer) error {
				return rep.WriteText(w, analyze.TextOptions{Top: top, Changes: files})
			})
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&platform, "platform", "", "from an index, this platform's image")
	fs.StringVar(&format, "format", "", "output format: json")
	fs.BoolVar(&files, "files", false, "list every change of every layer")
	fs.IntVar(&top, "top", 20, "how many wasted files to list")
	return cmd
}

func newDiffCmd(_ *rootOptions) *cobra.Command {
	var platform, format string
	cmd := &cobra.Command{
		Use:   "diff REF1 REF2",
		Short: "Files added, removed and changed between two images' filesystems",
		Example: `  lading diff oci:./images:v1 oci:./images:v2
  lading diff oci:./images:v1 oci:./images:v2 --format json`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			sa, a, err := loadImage(ctx, args[0], platform)
			if err != nil {
				return err
			}
			sb, b, err := loadImage(ctx, args[1], platform)
			if err != nil {
				return err
			}
			rep, err := analyze.Compare(ctx, analyzeLayers(ctx, sa, a), analyzeLayers(ctx, sb, b), analyze.CompareOptions{})
			if err != nil {
				return err
			}
			return writeJSONOrText(cmd, format, rep, rep.WriteText)
		},
	}
	cmd.Flags().StringVar(&platform, "platform", "", "from indexes, this platform's images")
	cmd.Flags().StringVar(&format, "format", "", "output format: json")
	return cmd
}
