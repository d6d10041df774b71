package main

import (
	"fmt"
	"os"

	"github.com/lading-oci/lading/content"
	"github.com/lading-oci/lading/content/ocilayout"
	"github.com/lading-oci/lading/errdef"
	"github.com/lading-oci/lading/mutate"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// editFlags are the flags of every command that writes a new image: the
// destination, the config changes and, for those that write a layer, the
// layer options.
type editFlags struct {
	dst, platform string
	fromPlatform  bool // the base is picked by --from-platform, not --platform
	cf            configFlags
	lf            layerFlags
	createdBy     string
}

// register adds the flags; platformFlag names the flag that picks the base
// image from an index ("" when --platform, which also sets the new image's
// platform, does).
func (e *editFlags) register(cmd *cobra.Command, platformFlag string, layers, owners bool) {
	fs := cmd.Flags()
	fs.StringVarP(&e.dst, "tag", "t", "", "destination, oci:DIR:TAG (required)")
	e.cf.register(fs, true)
	if platformFlag != "" {
		e.fromPlatform = true
		fs.StringVar(&e.platform, platformFlag, "", "from an index, the platform's image to start from")
	}
	if layers {
		e.lf.register(fs, owners)
	}
	_ = cmd.MarkFlagRequired("tag")
	e.createdBy = "lading " + cmd.Name()
}

// outside refuses a destination layout inside dir, the directory a layer is
// made from: the layer would contain the layout being written.
func (e *editFlags) outside(dir string) error {
	if r, err := layoutRef(e.dst, false); err == nil && within(r.Path(), dir) {
		return fmt.Errorf("%s: %w: the destination layout %s is inside the directory the layer is made from; write it elsewhere",
			dir, errdef.ErrInvalid, r.Path())
	}
	return nil
}

// editJob is what a command that writes an image works with.
type editJob struct {
	st      *ocilayout.Store
	tag     string
	base    *content.LoadedImage
	changes mutate.ConfigChanges
	layer   mutate.LayerOptions
}

// prepare opens the destination, parses the flags and loads the base image
// (from; "" for none), copying it into the destination layout when it lives
// in another one, so the new image's layers are all in one place.
func (e *editFlags) prepare(cmd *cobra.Command, from string) (*editJob, error) {
	st, tag, err := destination(e.dst)
	if err != nil {
		return nil, err
	}
	j := &editJob{st: st, tag: tag}
	if j.changes, err = e.cf.changes(cmd); err != nil {
		return nil, err
	}
	if j.layer, err = e.lf.options(e.createdBy); err != nil {
		return nil, err
	}
	if from == "" {
		return j, nil
	}
	platform := e.cf.platform // build: --platform picks the base and sets the new image's
	if e.fromPlatform {
		platform = e.platform
	}
	src, img, err := loadImage(cmd.Context(), from, platform)
	if err != nil {
		return nil, err
	}
	if err := copyGraph(cmd.Context(), src, st, img.Desc); err != nil {
		return nil, err
	}
	j.base = img
	return j, nil
}

// finish tags the new image and prints its reference and digest.
func (j *editJob) finish(cmd *cobra.Command, e *editFlags, desc ocispec.Descriptor, err error) error {
	if err != nil {
		return err
	}
	if err := j.st.Tag(cmd.Context(), desc, j.tag); err != nil {
		return err
	}
	printf(cmd, "%s %s\n", e.dst, desc.Digest)
	return nil
}

func newBuildCmd(_ *rootOptions) *cobra.Command {
	var (
		e    editFlags
		from string
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
			if err := e.outside(args[0]); err != nil {
				return err
			}
			j, err := e.prepare(cmd, from)
			if err != nil {
				return err
			}
			desc, err := mutate.Build(cmd.Context(), j.st, args[0], mutate.BuildOptions{
				LayerOptions: j.layer, Base: j.base, Platform: j.changes.Platform, Changes: j.changes,
			})
			return j.finish(cmd, &e, desc, err)
		},
	}
	cmd.Flags().StringVar(&from, "from", "", "base image reference")
	e.register(cmd, "", true, true)
	return cmd
}

func newMutateCmd(_ *rootOptions) *cobra.Command {
	var e editFlags
	cmd := &cobra.Command{
		Use:   "mutate REF -t DST",
		Short: "Change an image's configuration and annotations without touching its layers",
		Example: `  lading mutate oci:./images:app -t oci:./images:app-debug --env DEBUG=1 --cmd '["--verbose"]'
  lading mutate oci:./images:app -t oci:./images:app --label org.opencontainers.image.version=1.2.0`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			j, err := e.prepare(cmd, args[0])
			if err != nil {
				return err
			}
			desc, err := mutate.Mutate(cmd.Context(), j.st, j.base, mutate.MutateOptions{Changes: j.changes})
			return j.finish(cmd, &e, desc, err)
		},
	}
	e.register(cmd, "from-platform", false, false)
	return cmd
}

func newAppendCmd(_ *rootOptions) *cobra.Command {
	var e editFlags
	cmd := &cobra.Command{
		Use:   "append REF LAYER.tar[.gz|.zst] -t DST",
		Short: "Add a ready layer file on top of an image",
		Long: `Add a layer file (a tar, gzip'd tar or zstd'd tar, detected from its content) as it is, on top of REF.
Its diff_id is computed while it is stored. "-" reads the layer from stdin.`,
		Example: `  lading append oci:./images:base ./extra.tar.gz -t oci:./images:app
  tar -C ./files -c . | lading append oci:./images:base - -t oci:./images:app`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			j, err := e.prepare(cmd, args[0])
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
			desc, err := mutate.Append(cmd.Context(), j.st, j.base, in, mutate.AppendOptions{LayerOptions: j.layer, Changes: j.changes})
			if err != nil {
				err = fmt.Errorf("append %s: %w", args[1], err)
			}
			return j.finish(cmd, &e, desc, err)
		},
	}
	e.register(cmd, "from-platform", true, false)
	hide(cmd.Flags(), "compression") // the file is stored as it is
	return cmd
}

func hide(fs *pflag.FlagSet, name string) {
	if f := fs.Lookup(name); f != nil {
		f.Hidden = true
	}
}

func newFlattenCmd(_ *rootOptions) *cobra.Command {
	var e editFlags
	cmd := &cobra.Command{
		Use:     "flatten REF -t DST",
		Short:   "Squash all of an image's layers into one",
		Example: `  lading flatten oci:./images:app -t oci:./images:app-flat --compression zstd`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			j, err := e.prepare(cmd, args[0])
			if err != nil {
				return err
			}
			desc, err := mutate.Flatten(cmd.Context(), j.st, j.base, mutate.FlattenOptions{LayerOptions: j.layer, Changes: j.changes})
			return j.finish(cmd, &e, desc, err)
		},
	}
	e.register(cmd, "from-platform", true, false)
	return cmd
}

func newCommitCmd(_ *rootOptions) *cobra.Command {
	var (
		e        editFlags
		from     string
		rootless bool
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
			if err := e.outside(args[0]); err != nil {
				return err
			}
			j, err := e.prepare(cmd, from)
			if err != nil {
				return err
			}
			if !cmd.Flags().Changed("rootless") {
				rootless = os.Geteuid() != 0
			}
			desc, err := mutate.Commit(cmd.Context(), j.st, j.base, args[0], mutate.CommitOptions{
				LayerOptions: j.layer, Rootless: rootless, Changes: j.changes,
			})
			return j.finish(cmd, &e, desc, err)
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&from, "from", "", "the image DIR was unpacked from (required)")
	fs.BoolVar(&rootless, "rootless", false, "DIR was unpacked without root: ignore file owners (default: true when not root)")
	e.register(cmd, "from-platform", true, true)
	_ = cmd.MarkFlagRequired("from")
	return cmd
}

func newUnpackCmd(opts *rootOptions) *cobra.Command {
	var (
		platform string
		rootless bool
		force    bool
		maxSize  int64
	)
	cmd := &cobra.Command{
		Use:   "unpack REF DIR",
		Short: "Unpack an image's root filesystem into a directory",
		Long: `Apply the image's layers in order into DIR: whiteouts, opaque whiteouts, hardlinks, modes, times and (as
root) owners and device nodes. Every layer is checked against its digest and diff_id while it streams. Nothing
outside DIR is ever created, changed or removed, whatever the layers hold.

The unpack is all or nothing: the layers are applied into a new directory beside DIR that replaces DIR
only once every layer has been checked; a failure leaves DIR as it was. DIR must not exist or be empty;
--force merges the image into a directory that has content (in place, as layers merge).`,
		Example: `  lading unpack oci:./images:app ./rootfs
  lading unpack oci:./images:multi ./rootfs --platform linux/arm64 --rootless`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, img, err := loadImage(cmd.Context(), args[0], platform)
			if err != nil {
				return err
			}
			if within(args[1], st.Dir()) {
				return fmt.Errorf("unpack into %s: %w: the directory is inside the layout %s", args[1], errdef.ErrInvalid, st.Dir())
			}
			if !cmd.Flags().Changed("rootless") {
				rootless = os.Geteuid() != 0
			}
			return mutate.Unpack(cmd.Context(), st, img, args[1], mutate.UnpackOptions{Rootless: rootless, MaxBytes: maxSize, Force: force, Logger: opts.logger})
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&platform, "platform", "", "from an index, this platform's image (default: this machine's)")
	fs.BoolVar(&rootless, "rootless", false, "do not change owners or create device nodes (default: true when not root)")
	fs.BoolVar(&force, "force", false, "merge into a directory that is not empty")
	fs.Int64Var(&maxSize, "max-layer-size", 64<<30, "refuse a layer whose uncompressed size exceeds this many bytes")
	return cmd
}
