package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/lading-oci/lading/content"
	"github.com/lading-oci/lading/content/ocilayout"
	"github.com/lading-oci/lading/errdef"
	"github.com/lading-oci/lading/image"
	"github.com/opencontainers/go-digest"
	"github.com/spf13/cobra"
)

func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}

func newManifestCmd(_ *rootOptions) *cobra.Command {
	var platform string
	cmd := &cobra.Command{
		Use:   "manifest REF",
		Short: "Print the raw manifest (or index) a reference names",
		Example: `  lading manifest oci:./images:app | jq .
  lading manifest oci:./images:multi --platform linux/arm64`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			st, desc, err := openSelected(ctx, args[0], platform)
			if err != nil {
				return err
			}
			data, err := content.ReadAll(ctx, st, desc, 0)
			if err != nil {
				return err
			}
			_, err = cmd.OutOrStdout().Write(data)
			return err
		},
	}
	cmd.Flags().StringVar(&platform, "platform", "", "from an index, print this platform's manifest")
	return cmd
}

func newConfigCmd(_ *rootOptions) *cobra.Command {
	var platform string
	cmd := &cobra.Command{
		Use:     "config REF",
		Short:   "Print an image's raw configuration",
		Example: `  lading config oci:./images:app | jq .config.Env`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			_, img, err := loadImage(cmd.Context(), args[0], platform)
			if err != nil {
				return err
			}
			_, err = cmd.OutOrStdout().Write(img.RawConfig)
			return err
		},
	}
	cmd.Flags().StringVar(&platform, "platform", "", "from an index, this platform's image")
	return cmd
}

func newBlobCmd(_ *rootOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "blob REF DIGEST",
		Short: "Write a blob's raw bytes to stdout, verified against its digest",
		Example: `  lading blob oci:./images sha256:3f1b... > layer.tar.gz
  lading blob oci:./images:app sha256:3f1b... | tar -tzf -`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := layoutRef(args[0], true)
			if err != nil {
				return err
			}
			st, err := openLayout(r, false)
			if err != nil {
				return err
			}
			d, err := digest.Parse(args[1])
			if err != nil {
				return fmt.Errorf("digest %q: %w: %v", args[1], errdef.ErrInvalid, err)
			}
			ctx := cmd.Context()
			desc, err := st.Stat(ctx, d)
			if err != nil {
				return err
			}
			rc, err := st.Fetch(ctx, desc)
			if err != nil {
				return err
			}
			defer rc.Close()
			vr := content.NewVerifyReader(rc, desc)
			if _, err := io.Copy(cmd.OutOrStdout(), vr); err != nil {
				return err
			}
			return vr.Verify()
		},
	}
}

func newDigestCmd(_ *rootOptions) *cobra.Command {
	var platform string
	cmd := &cobra.Command{
		Use:   "digest REF",
		Short: "Print the digest of the manifest or index a reference names",
		Example: `  lading digest oci:./images:app
  lading digest oci:./images:multi --platform linux/amd64`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			_, desc, err := openSelected(cmd.Context(), args[0], platform)
			if err != nil {
				return err
			}
			printf(cmd, "%s\n", desc.Digest)
			return nil
		},
	}
	cmd.Flags().StringVar(&platform, "platform", "", "from an index, this platform's manifest digest")
	return cmd
}

func newValidateCmd(_ *rootOptions) *cobra.Command {
	var mediaType string
	cmd := &cobra.Command{
		Use:   "validate [--media-type MT] FILE|-",
		Short: "Validate a manifest, index, config or oci-layout file against the OCI image spec",
		Long: `Validate a JSON document strictly: the spec's schemas plus the rules they cannot express (digest syntax,
data fields, Env entries, media type consistency, ...). Without --media-type the document's own mediaType
decides. Prints "valid" and exits 0, or prints every problem, one per line, and exits 1.`,
		Example: `  lading validate manifest.json
  lading manifest oci:./images:app | lading validate -
  lading validate --media-type application/vnd.oci.image.config.v1+json config.json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var data []byte
			var err error
			if args[0] == "-" {
				data, err = io.ReadAll(io.LimitReader(cmd.InOrStdin(), content.DefaultMaxMetadataBytes+1))
			} else {
				data, err = readFileCapped(args[0], content.DefaultMaxMetadataBytes+1)
			}
			if err != nil {
				return err
			}
			if err := image.Validate(mediaType, data); err != nil {
				for _, line := range strings.Split(strings.TrimSpace(err.Error()), "\n") {
					fmt.Fprintf(cmd.ErrOrStderr(), "%s: %s\n", args[0], line)
				}
				return exitError{1}
			}
			printf(cmd, "valid\n")
			return nil
		},
	}
	cmd.Flags().StringVar(&mediaType, "media-type", "", "validate as this media type")
	return cmd
}

func readFileCapped(name string, max int64) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, max))
}

func newVerifyCmd(_ *rootOptions) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "verify DIR",
		Short: "Check a layout: every blob's digest and size, references, diff_ids, and every document's validity",
		Long: `Check a whole layout (fsck): hash every blob in parallel against its name and size, check that everything
index.json reaches is present, that each config has one diff_id per layer, and that every manifest, index and
config is valid. Every problem is reported, each naming the blob's digest and path. Exits 1 if any is found.`,
		Example: `  lading verify ./images`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := track(ocilayout.Open(context.Background(), strings.TrimPrefix(args[0], "oci:")))
			if err != nil {
				return err
			}
			rep, err := st.Verify(cmd.Context(), ocilayout.VerifyOptions{})
			if err != nil {
				return err
			}
			if format == "json" {
				if err := writeJSON(cmd.OutOrStdout(), rep); err != nil {
					return err
				}
			} else {
				for _, p := range rep.Problems {
					fmt.Fprintln(cmd.OutOrStdout(), p.String())
				}
				printf(cmd, "%d blobs, %d bytes checked, %d problems\n", rep.Blobs, rep.Bytes, len(rep.Problems))
			}
			if len(rep.Problems) > 0 {
				return exitError{1}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&format, "format", "", "output format: json")
	return cmd
}

func newGCCmd(_ *rootOptions) *cobra.Command {
	var (
		dryRun bool
		minAge time.Duration
	)
	cmd := &cobra.Command{
		Use:   "gc DIR",
		Short: "Remove blobs nothing in index.json reaches, and stale partial writes",
		Long: `Remove every blob that index.json does not reach (through indexes, manifests, configs and layers; an
artifact whose subject is reachable is kept, with what it references), and partial writes left by
interrupted processes. --dry-run lists what would be removed.

While another process is writing to the layout (a build, say), what it has written is not tagged yet,
so gc refuses to run; --min-age lets it run anyway, keeping every unreferenced blob younger than that.`,
		Example: `  lading gc ./images --dry-run
  lading rm oci:./images:old && lading gc ./images
  lading gc ./images --min-age 1h`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := track(ocilayout.Open(context.Background(), strings.TrimPrefix(args[0], "oci:")))
			if err != nil {
				return err
			}
			rep, err := st.GC(cmd.Context(), ocilayout.GCOptions{DryRun: dryRun, MinBlobAge: minAge})
			if err != nil {
				return err
			}
			verb := "removed"
			if dryRun {
				verb = "would remove"
			}
			for _, r := range rep.Blobs {
				printf(cmd, "%s blob %s (%d bytes)\n", verb, r.Digest, r.Size)
			}
			for _, r := range rep.Ingests {
				printf(cmd, "%s partial write %s (%d bytes)\n", verb, r.Path, r.Size)
			}
			printf(cmd, "%s %d blobs and %d partial writes, %d bytes; %d blobs kept\n", verb, len(rep.Blobs), len(rep.Ingests), rep.FreedBytes, rep.Kept)
			return nil
		},
	}
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "list what would be removed without removing it")
	cmd.Flags().DurationVar(&minAge, "min-age", 0, "keep unreferenced blobs younger than this (lets gc run while another process writes)")
	return cmd
}
