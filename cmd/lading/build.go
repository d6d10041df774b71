package main

import (
	"fmt"
	"io"
	"os"

	"github.com/lading-oci/lading/content"
	"github.com/lading-oci/lading/errdef"
	"github.com/lading-oci/lading/mutate"
	"github.com/lading-oci/lading/transfer"
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
	quiet         bool
	digestFile    string
	format        formatFlag
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
	fs.BoolVarP(&e.quiet, "quiet", "q", false, "print only the new image's digest")
	fs.StringVar(&e.digestFile, "digestfile", "", "also write the new image's digest to this file")
	e.format.long = true // -f is build's Containerfile
	e.format.register(cmd, false)
	_ = cmd.MarkFlagRequired("tag")
	e.createdBy = "lading " + cmd.Name()
}

// editJob is what a command that writes an image works with.
type editJob struct {
	dst     *transfer.Target
	store   content.IngestStorage
	base    *content.LoadedImage
	changes mutate.ConfigChanges
	layer   mutate.LayerOptions
}

// prepare parses the flags, opens the destination and loads the base image
// (from; "" for none), copying it into the destination when it lives
// elsewhere, so the new image's layers are all in one place.
func (e *editFlags) prepare(cmd *cobra.Command, o *rootOptions, from string) (*editJob, error) {
	if err := e.format.check(); err != nil {
		return nil, err
	}
	j := &editJob{}
	var err error
	if j.changes, err = e.cf.changes(cmd); err != nil {
		return nil, usageError{err}
	}
	if j.layer, err = e.lf.options(e.createdBy); err != nil {
		return nil, usageError{err}
	}
	ctx := cmd.Context()
	var src *transfer.Target
	if from != "" {
		platform := e.cf.platform // build: --platform picks the base and sets the new image's
		if e.fromPlatform {
			platform = e.platform
		}
		if src, j.base, err = o.loadImage(cmd, from, platform); err != nil {
			return nil, err
		}
	}
	if j.dst, err = o.destination(ctx, e.dst); err != nil {
		return nil, err
	}
	st, ok := j.dst.Store.(content.IngestStorage)
	if !ok {
		return nil, fmt.Errorf("%s: %w: images cannot be written there", e.dst, errdef.ErrUnsupported)
	}
	j.store = st
	if src != nil && !transfer.SameStore(src, j.dst) {
		if err := transfer.CopyGraph(ctx, src.Store, j.dst.Store, j.base.Desc, transfer.CopyOptions{}); err != nil {
			j.dst.Abandon()
			return nil, fmt.Errorf("copy the base image into %s: %w", e.dst, err)
		}
	}
	return j, nil
}

// editResult is what an edit command prints with --format json.
type editResult struct {
	Reference string `json:"reference"`
	Digest    string `json:"digest"`
	MediaType string `json:"mediaType"`
	Size      int64  `json:"size"`
}

// finish tags the new image (or, on failure, removes a layout prepare
// created) and prints its reference and digest.
func (j *editJob) finish(cmd *cobra.Command, o *rootOptions, e *editFlags, desc ocispec.Descriptor, err error) error {
	if err == nil {
		o.log().Debug("wrote image", "manifest", desc.Digest.String(), "size", desc.Size)
		err = j.dst.Store.Tag(cmd.Context(), desc, j.dst.Tag())
	}
	if err != nil {
		j.dst.Abandon()
		return err
	}
	if e.digestFile != "" {
		if err := os.WriteFile(e.digestFile, []byte(desc.Digest.String()), 0o644); err != nil {
			return fmt.Errorf("--digestfile: %w", err)
		}
	}
	res := editResult{Reference: j.dst.Ref.String(), Digest: desc.Digest.String(), MediaType: desc.MediaType, Size: desc.Size}
	return e.format.write(cmd, res, func(w io.Writer) error {
		if e.quiet {
			_, err := fmt.Fprintln(w, res.Digest)
			return err
		}
		_, err := fmt.Fprintf(w, "%s %s\n", res.Reference, res.Digest)
		return err
	})
}

// withProgress runs a long step with the command's progress display.
func withProgress[T any](cmd *cobra.Command, o *rootOptions, what string, lo *mutate.LayerOptions, f func() (T, error)) (T, error) {
	pf, end := o.progressFor(cmd, what)
	lo.Progress = pf
	v, err := f()
	end()
	return v, err
}

func newBuildCmd(o *rootOptions) *cobra.Command {
	var (
		e       editFlags
		from    string
		exclude []string
		cf      containerfileFlags
	)
	cmd := &cobra.Command{
		Use:   "build DIR -t DST",
		Short: "Build an image from a directory: DIR becomes one layer on top of --from (or of nothing)",
		Long: `Build an image whose root filesystem is DIR (as one new layer) on top of the image --from names, or of
nothing. The layer keeps files' owners, modes, hardlinks, symlinks, xattrs and (as root) device nodes; entries are
sorted. With --timestamp or SOURCE_DATE_EPOCH, file times are clamped and the creation time fixed, so the same
tree gives the same image digest on any machine at any time.

DIR's .containerignore (or .dockerignore) and --exclude leave paths out, with docker's matching rules. A
destination layout inside DIR is refused. The default platform is linux on this machine's architecture.`,
		Example: `  lading build ./rootfs -t oci:./images:app --entrypoint /app --env PORT=8080 --expose 8080
  SOURCE_DATE_EPOCH=0 lading build ./site -t oci:./images:site --from oci:./images:nginx --compression zstd
  lading build ./out -t oci:./images:tool --platform linux/arm64 --cmd '["--help"]' --exclude '**/*.log'
  lading build ./rootfs -t oci:./images:app -q --digestfile app.digest`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if cf.file != "" {
				return buildFromContainerfile(cmd, o, &cf, &e, args[0])
			}
			j, err := e.prepare(cmd, o, from)
			if err != nil {
				return err
			}
			desc, err := withProgress(cmd, o, "build", &j.layer, func() (ocispec.Descriptor, error) {
				return mutate.Build(cmd.Context(), j.store, args[0], mutate.BuildOptions{
					LayerOptions: j.layer, Base: j.base, Platform: j.changes.Platform, Changes: j.changes, Exclude: exclude,
				})
			})
			return j.finish(cmd, o, &e, desc, err)
		},
	}
	cmd.Flags().StringVar(&from, "from", "", "base image reference")
	cmd.Flags().StringArrayVar(&exclude, "exclude", nil, "leave out paths matching this .dockerignore pattern (repeatable)")
	e.register(cmd, "", true, true)
	cf.register(cmd.Flags())
	return cmd
}

func newMutateCmd(o *rootOptions) *cobra.Command {
	var e editFlags
	cmd := &cobra.Command{
		Use:   "mutate REF -t DST",
		Short: "Change an image's configuration and annotations without touching its layers",
		Example: `  lading mutate oci:./images:app -t oci:./images:app-debug --env DEBUG=1 --cmd '["--verbose"]'
  lading mutate oci:./images:app -t oci:./images:app --label org.opencontainers.image.version=1.2.0
  lading mutate oci:./images:app -t oci:./images:slim --unset-env DEBUG --unset-expose 9090`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			j, err := e.prepare(cmd, o, args[0])
			if err != nil {
				return err
			}
			desc, err := mutate.Mutate(cmd.Context(), j.store, j.base, mutate.MutateOptions{Changes: j.changes})
			return j.finish(cmd, o, &e, desc, err)
		},
	}
	e.register(cmd, "from-platform", false, false)
	return cmd
}

func newAppendCmd(o *rootOptions) *cobra.Command {
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
			in := cmd.InOrStdin()
			if args[1] != "-" {
				f, err := os.Open(args[1])
				if err != nil {
					return err
				}
				defer f.Close()
				in = f
			}
			j, err := e.prepare(cmd, o, args[0])
			if err != nil {
				return err
			}
			desc, err := mutate.Append(cmd.Context(), j.store, j.base, in, mutate.AppendOptions{LayerOptions: j.layer, Changes: j.changes})
			if err != nil {
				err = fmt.Errorf("append %s: %w", args[1], err)
			}
			return j.finish(cmd, o, &e, desc, err)
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

func newFlattenCmd(o *rootOptions) *cobra.Command {
	var (
		e       editFlags
		maxSize = sizeFlag(mutate.DefaultMaxLayerBytes)
	)
	cmd := &cobra.Command{
		Use:   "flatten REF -t DST",
		Short: "Squash all of an image's layers into one",
		Long: `Merge an image's layers into one layer holding the filesystem they describe, whiteouts applied. The layers'
tar streams are merged without writing files to disk, so owners, modes, device nodes and times stay as the layers
record them whoever runs it.`,
		Example: `  lading flatten oci:./images:app -t oci:./images:app-flat --compression zstd`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			j, err := e.prepare(cmd, o, args[0])
			if err != nil {
				return err
			}
			desc, err := withProgress(cmd, o, "flatten", &j.layer, func() (ocispec.Descriptor, error) {
				return mutate.Flatten(cmd.Context(), j.store, j.base, mutate.FlattenOptions{LayerOptions: j.layer, Changes: j.changes, MaxBytes: int64(maxSize)})
			})
			return j.finish(cmd, o, &e, desc, err)
		},
	}
	e.register(cmd, "from-platform", true, false)
	cmd.Flags().Var(&maxSize, "max-layer-size", "refuse a layer whose uncompressed size exceeds this (1G, 512MiB, 10GB)")
	return cmd
}

func newCommitCmd(o *rootOptions) *cobra.Command {
	var (
		e          editFlags
		from       string
		rootless   bool
		allowEmpty bool
	)
	cmd := &cobra.Command{
		Use:   "commit DIR --from BASE -t DST",
		Short: "Record the changes made to an unpacked root filesystem as a new layer",
		Long: `DIR is a root filesystem that was unpacked from BASE (lading unpack) and then changed. commit compares
it with BASE's layers (by type, mode, owner, size, link target and content; never by time alone) and adds one layer
with the additions, changes and whiteouts for deletions. No metadata files are needed in DIR.

When DIR has no changes, no layer is added (the new image is BASE with the config changes) unless --allow-empty.`,
		Example: `  lading unpack oci:./images:base ./root && echo hi > ./root/hello && rm -r ./root/var/cache
  lading commit ./root --from oci:./images:base -t oci:./images:changed`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			j, err := e.prepare(cmd, o, from)
			if err != nil {
				return err
			}
			desc, err := withProgress(cmd, o, "commit", &j.layer, func() (ocispec.Descriptor, error) {
				return mutate.Commit(cmd.Context(), j.store, j.base, args[0], mutate.CommitOptions{
					LayerOptions: j.layer, Rootless: rootless, Changes: j.changes, AllowEmpty: allowEmpty,
				})
			})
			if err == nil && !allowEmpty {
				if committed, lerr := content.LoadImage(cmd.Context(), j.store, desc, nil); lerr == nil && !mutate.Committed(j.base, committed) {
					info(cmd, "no changes in %s: no layer added", args[0])
				}
			}
			return j.finish(cmd, o, &e, desc, err)
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&from, "from", "", "the image DIR was unpacked from (required)")
	fs.BoolVar(&rootless, "rootless", false, "DIR was unpacked without root: ignore file owners and skipped devices (always so when not root)")
	fs.BoolVar(&allowEmpty, "allow-empty", false, "add a layer even when DIR has no changes")
	e.register(cmd, "from-platform", true, true)
	_ = cmd.MarkFlagRequired("from")
	return cmd
}

func newUnpackCmd(o *rootOptions) *cobra.Command {
	var (
		platform string
		rootless bool
		force    bool
		maxSize  = sizeFlag(mutate.DefaultMaxLayerBytes)
	)
	cmd := &cobra.Command{
		Use:   "unpack REF DIR",
		Short: "Unpack an image's root filesystem into a directory (Linux)",
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
			t, img, err := o.loadImage(cmd, args[0], platform)
			if err != nil {
				return err
			}
			pf, end := o.progressFor(cmd, "unpack")
			err = mutate.Unpack(cmd.Context(), t.Store, img, args[1], mutate.UnpackOptions{
				Rootless: rootless, MaxBytes: int64(maxSize), Force: force, Logger: o.log(), Progress: pf,
			})
			end()
			return err
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&platform, "platform", "", "from an index, this platform's image (default linux on this machine's architecture)")
	fs.BoolVar(&rootless, "rootless", false, "do not change owners or create device nodes (always so when not root)")
	fs.BoolVar(&force, "force", false, "merge into a directory that is not empty")
	fs.Var(&maxSize, "max-layer-size", "refuse a layer whose uncompressed size exceeds this (1G, 512MiB, 10GB)")
	return cmd
}
