package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/lading-oci/lading/content"
	"github.com/lading-oci/lading/content/ocilayout"
	"github.com/lading-oci/lading/mutate"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/spf13/cobra"
)

// baseImage loads the --from image and copies it into dst when it lives in
// another layout, so the new image's layers are all in dst.
func baseImage(cmd *cobra.Command, from, platform string, dst *ocilayout.Store) (*content.Image, error) {
	if from == "" {
		return nil, nil
	}
	src, img, err := loadImage(cmd.Context(), from, platform)
	if err != nil {
		return nil, err
	}
	if err := copyGraph(cmd.Context(), src, dst, img.Desc); err != nil {
		return nil, err
	}
	return img, nil
}

// tagResult tags the new image and prints its reference and digest.
func tagResult(cmd *cobra.Command, st *ocilayout.Store, tag, dst string, desc ocispec.Descriptor) error {
	if err := st.Tag(cmd.Context(), desc, tag); err != nil {
		return err
	}
	printf(cmd, "%s %s\n", dst, desc.Digest)
	return nil
}

func newBuildCmd(_ *rootOptions) *cobra.Command {
	var (
		dst, from string
		cf        configFlags
		lf        layerFlags
	)
	cmd := &cobra.Command{
		Use:   "build DIR -t DST",
		Short: "Build an image from a directory: DIR becomes one layer on top of --from (or of nothing)",
		Long: `Build an image whose root filesystem is DIR (as one new layer) on top of the image --from names, or of
nothing. The layer keeps files' owners, modes, hardlinks, symlinks, xattrs and (as root) device nodes; entries are
sorted. With --timestamp or SOURCE_DATE_EPOCH, file times are clamped and the creation time fixed, so the same
tree gives the same image digest on any machine at any time.`,
		Example: `  lading build ./rootfs -t oci:./images:app --entrypoint /app --env PORT=8080 --expose 8080
  SOURCE_DATE_EPOCH=0 lading build ./site -t oci:./images:site --from oci:./images:nginx --compression zstd
  lading build ./out -t oci:./images:tool --platform linux/arm64 --cmd '["--help"]'`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, tag, err := destination(dst)
			if err != nil {
				return err
			}
			changes, err := cf.changes(cmd)
			if err != nil {
				return err
			}
			lo, err := lf.options("lading build")
			if err != nil {
				return err
			}
			base, err := baseImage(cmd, from, cf.platform, st)
			if err != nil {
				return err
			}
			opts := mutate.BuildOptions{LayerOptions: lo, Base: base, Platform: changes.Platform, Changes: changes}
			desc, err := mutate.Build(cmd.Context(), st, args[0], opts)
			if err != nil {
				return err
			}
			return tagResult(cmd, st, tag, dst, desc)
		},
	}
	fs := cmd.Flags()
	fs.StringVarP(&dst, "tag", "t", "", "destination, oci:DIR:TAG (required)")
	fs.StringVar(&from, "from", "", "base image reference")
	cf.register(fs, true)
	lf.register(fs, true)
	_ = cmd.MarkFlagRequired("tag")
	return cmd
}

func newMutateCmd(_ *rootOptions) *cobra.Command {
	var (
		dst, platform string
		cf            configFlags
	)
	cmd := &cobra.Command{
		Use:   "mutate REF -t DST",
		Short: "Change an image's configuration and annotations without touching its layers",
		Example: `  lading mutate oci:./images:app -t oci:./images:app-debug --env DEBUG=1 --cmd '["--verbose"]'
  lading mutate oci:./images:app -t oci:./images:app --label org.opencontainers.image.version=1.2.0`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, tag, err := destination(dst)
			if err != nil {
				return err
			}
			changes, err := cf.changes(cmd)
			if err != nil {
				return err
			}
			base, err := baseImage(cmd, args[0], platform, st)
			if err != nil {
				return err
			}
			desc, err := mutate.Mutate(cmd.Context(), st, base, changes)
			if err != nil {
				return err
			}
			return tagResult(cmd, st, tag, dst, desc)
		},
	}
	fs := cmd.Flags()
	fs.StringVarP(&dst, "tag", "t", "", "destination, oci:DIR:TAG (required)")
	fs.StringVar(&platform, "from-platform", "", "from an index, the platform's image to change")
	cf.register(fs, true)
	_ = cmd.MarkFlagRequired("tag")
	return cmd
}

func newAppendCmd(_ *rootOptions) *cobra.Command {
	var (
		dst, platform string
		cf            configFlags
		lf            layerFlags
	)
	cmd := &cobra.Command{
		Use:   "append REF LAYER.tar[.gz|.zst] -t DST",
		Short: "Add a ready layer file on top of an image",
		Long: `Add a layer file (a tar, gzip'd tar or zstd'd tar, detected from its content) as it is, on top of REF.
Its diff_id is computed while it is stored. "-" reads the layer from stdin.`,
		Example: `  lading append oci:./images:base ./extra.tar.gz -t oci:./images:app
  tar -C ./files -c . | lading append oci:./images:base - -t oci:./images:app`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, tag, err := destination(dst)
			if err != nil {
				return err
			}
			changes, err := cf.changes(cmd)
			if err != nil {
				return err
			}
			lo, err := lf.options("lading append")
			if err != nil {
				return err
			}
			base, err := baseImage(cmd, args[0], platform, st)
			if err != nil {
				return err
			}
			in := cmd.InOrStdin()
			if args[1] != "-" {
				f, err := os.Open(args[1])
				if err != nil {
					return err
				}
				defer f.Close()
				in = f
			}
			desc, err := mutate.Append(cmd.Context(), st, base, in, lo, changes)
			if err != nil {
				return fmt.Errorf("append %s: %w", args[1], err)
			}
			return tagResult(cmd, st, tag, dst, desc)
		},
	}
	fs := cmd.Flags()
	fs.StringVarP(&dst, "tag", "t", "", "destination, oci:DIR:TAG (required)")
	fs.StringVar(&platform, "from-platform", "", "from an index, the platform's image to append to")
	cf.register(fs, false)
	lf.register(fs, false)
	fs.Lookup("compression").Hidden = true
	_ = cmd.MarkFlagRequired("tag")
	return cmd
}

func newFlattenCmd(_ *rootOptions) *cobra.Command {
	var (
		dst, platform string
		cf            configFlags
		lf            layerFlags
	)
	cmd := &cobra.Command{
		Use:     "flatten REF -t DST",
		Short:   "Squash all of an image's layers into one",
		Example: `  lading flatten oci:./images:app -t oci:./images:app-flat --compression zstd`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, tag, err := destination(dst)
			if err != nil {
				return err
			}
			changes, err := cf.changes(cmd)
			if err != nil {
				return err
			}
			lo, err := lf.options("lading flatten")
			if err != nil {
				return err
			}
			base, err := baseImage(cmd, args[0], platform, st)
			if err != nil {
				return err
			}
			desc, err := mutate.Flatten(cmd.Context(), st, base, "", lo, changes)
			if err != nil {
				return err
			}
			return tagResult(cmd, st, tag, dst, desc)
		},
	}
	fs := cmd.Flags()
	fs.StringVarP(&dst, "tag", "t", "", "destination, oci:DIR:TAG (required)")
	fs.StringVar(&platform, "from-platform", "", "from an index, the platform's image to flatten")
	cf.register(fs, false)
	lf.register(fs, false)
	_ = cmd.MarkFlagRequired("tag")
	return cmd
}

func newCommitCmd(_ *rootOptions) *cobra.Command {
	var (
		dst, from, platform string
		rootless            bool
		cf                  configFlags
		lf                  layerFlags
	)
	cmd := &cobra.Command{
		Use:   "commit DIR --from BASE -t DST",
		Short: "Record the changes made to an unpacked root filesystem as a new layer",
		Long: `DIR is a root filesystem that was unpacked from BASE (lading unpack) and then changed. commit compares
it with BASE's layers (by type, mode, owner, size, link target and content; never by time alone) and adds one layer
with the additions, changes and whiteouts for deletions. No metadata files are needed in DIR.`,
		Example: `  lading unpack oci:./images:base ./root && echo hi > ./root/hello && rm -r ./root/var/cache
  lading commit ./root --from oci:./images:base -t oci:./images:changed`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, tag, err := destination(dst)
			if err != nil {
				return err
			}
			changes, err := cf.changes(cmd)
			if err != nil {
				return err
			}
			lo, err := lf.options("lading commit")
			if err != nil {
				return err
			}
			base, err := baseImage(cmd, from, platform, st)
			if err != nil {
				return err
			}
			if !cmd.Flags().Changed("rootless") {
				rootless = os.Geteuid() != 0
			}
			desc, err := mutate.Commit(cmd.Context(), st, base, args[0], mutate.CommitOptions{LayerOptions: lo, IgnoreOwner: rootless, Changes: changes})
			if err != nil {
				return err
			}
			return tagResult(cmd, st, tag, dst, desc)
		},
	}
	fs := cmd.Flags()
	fs.StringVarP(&dst, "tag", "t", "", "destination, oci:DIR:TAG (required)")
	fs.StringVar(&from, "from", "", "the image DIR was unpacked from (required)")
	fs.StringVar(&platform, "from-platform", "", "from an index, the platform's image")
	fs.BoolVar(&rootless, "rootless", false, "DIR was unpacked without root: ignore file owners (default: true when not root)")
	cf.register(fs, false)
	lf.register(fs, true)
	_ = cmd.MarkFlagRequired("tag")
	_ = cmd.MarkFlagRequired("from")
	return cmd
}

func newUnpackCmd(opts *rootOptions) *cobra.Command {
	var (
		platform string
		rootless bool
		maxSize  int64
	)
	cmd := &cobra.Command{
		Use:   "unpack REF DIR",
		Short: "Unpack an image's root filesystem into a directory",
		Long: `Apply the image's layers in order into DIR: whiteouts, opaque whiteouts, hardlinks, modes, times and (as
root) owners and device nodes. Every layer is checked against its digest and diff_id while it streams. Nothing
outside DIR is ever created, changed or removed, whatever the layers hold.`,
		Example: `  lading unpack oci:./images:app ./rootfs
  lading unpack oci:./images:multi ./rootfs --platform linux/arm64 --rootless`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, img, err := loadImage(cmd.Context(), args[0], platform)
			if err != nil {
				return err
			}
			if !cmd.Flags().Changed("rootless") {
				rootless = os.Geteuid() != 0
			}
			return mutate.Unpack(cmd.Context(), st, img, args[1], mutate.UnpackOptions{Rootless: rootless, MaxBytes: maxSize, Logger: opts.logger})
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&platform, "platform", "", "from an index, this platform's image (default: this machine's)")
	fs.BoolVar(&rootless, "rootless", false, "do not change owners or create device nodes (default: true when not root)")
	fs.Int64Var(&maxSize, "max-layer-size", 64<<30, "refuse a layer whose uncompressed size exceeds this many bytes")
	return cmd
}

var _ = strings.TrimSpace
