package main

import (
	"fmt"
	"io"

	"github.com/opencontainers/go-digest"
	"github.com/spf13/cobra"

	"github.com/lading-oci/lading/errdef"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/lading-oci/lading/transfer"
)

func newIndexCmd(o *rootOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "index",
		Short: "Make and change image indexes (multi-platform images)",
	}
	cmd.AddCommand(newIndexCreateCmd(o), newIndexAddCmd(o), newIndexRemoveCmd(o), newIndexAnnotateCmd(o))
	for _, c := range cmd.Commands() {
		wrapArgs(c)
		c.ValidArgsFunction = completeRef
	}
	return cmd
}

// indexResult is what the index commands print with --format json.
type indexResult struct {
	Reference string `json:"reference"`
	Digest    string `json:"digest"`
	Size      int64  `json:"size"`
}

func printIndex(cmd *cobra.Command, format *formatFlag, t *transfer.Target, desc ocispec.Descriptor) error {
	res := indexResult{Reference: t.Ref.String(), Digest: desc.Digest.String(), Size: desc.Size}
	return format.write(cmd, res, func(w io.Writer) error {
		_, err := fmt.Fprintf(w, "%s %s\n", res.Reference, res.Digest)
		return err
	})
}

// openAll opens each reference.
func (o *rootOptions) openAll(cmd *cobra.Command, refs []string) ([]*transfer.Target, error) {
	var out []*transfer.Target
	for _, r := range refs {
		t, err := o.open(cmd.Context(), r, false)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, nil
}

func newIndexCreateCmd(o *rootOptions) *cobra.Command {
	var (
		format      formatFlag
		annotations []string
	)
	cmd := &cobra.Command{
		Use:   "create DST REF...",
		Short: "Make an index of images, each listed with the platform its config names",
		Example: `  lading index create oci:./images:app oci:./images:app-amd64 oci:./images:app-arm64
  lading index create oci:./release:app oci:./build:amd64 oci:./build:arm64 --annotation org.opencontainers.image.version=1.2`,
		Args: cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := format.check(); err != nil {
				return err
			}
			ann, err := keyValues("annotation", annotations)
			if err != nil {
				return usageError{err}
			}
			srcs, err := o.openAll(cmd, args[1:])
			if err != nil {
				return err
			}
			dst, err := o.destination(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			desc, err := transfer.CreateIndex(cmd.Context(), dst, srcs, ann)
			if err != nil {
				return err
			}
			return printIndex(cmd, &format, dst, desc)
		},
	}
	cmd.Flags().StringArrayVar(&annotations, "annotation", nil, "set an annotation of the index k=v (repeatable)")
	format.register(cmd, false)
	return cmd
}

func newIndexAddCmd(o *rootOptions) *cobra.Command {
	var format formatFlag
	cmd := &cobra.Command{
		Use:     "add INDEX REF...",
		Short:   "Add images to an index (replacing the entry of the same platform)",
		Example: `  lading index add oci:./images:app oci:./images:app-riscv64`,
		Args:    cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := format.check(); err != nil {
				return err
			}
			t, err := o.open(cmd.Context(), args[0], false)
			if err != nil {
				return err
			}
			srcs, err := o.openAll(cmd, args[1:])
			if err != nil {
				return err
			}
			desc, err := transfer.EditIndex(cmd.Context(), t, transfer.IndexEdit{Add: srcs})
			if err != nil {
				return err
			}
			return printIndex(cmd, &format, t, desc)
		},
	}
	format.register(cmd, false)
	return cmd
}

func newIndexRemoveCmd(o *rootOptions) *cobra.Command {
	var (
		format    formatFlag
		platforms []string
		digests   []string
	)
	cmd := &cobra.Command{
		Use:   "remove INDEX (--platform P | --digest D)...",
		Short: "Remove entries from an index, by platform or by digest",
		Example: `  lading index remove oci:./images:app --platform linux/arm/v7
  lading index remove oci:./images:app --digest sha256:6c3c62...`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := format.check(); err != nil {
				return err
			}
			var e transfer.IndexEdit
			for _, p := range platforms {
				pl, err := parsePlatform(p)
				if err != nil {
					return err
				}
				e.RemovePlatforms = append(e.RemovePlatforms, *pl)
			}
			for _, d := range digests {
				dg, err := digest.Parse(d)
				if err != nil {
					return usageError{fmt.Errorf("--digest %q: %w: %v", d, errdef.ErrInvalid, err)}
				}
				e.RemoveDigests = append(e.RemoveDigests, dg)
			}
			if len(e.RemoveDigests)+len(e.RemovePlatforms) == 0 {
				return usageError{fmt.Errorf("index remove: %w: name entries with --platform or --digest", errdef.ErrInvalid)}
			}
			return editIndex(cmd, o, &format, args[0], e)
		},
	}
	cmd.Flags().StringArrayVar(&platforms, "platform", nil, "remove the entries of this platform (repeatable)")
	cmd.Flags().StringArrayVar(&digests, "digest", nil, "remove the entries with this digest (repeatable)")
	format.register(cmd, false)
	return cmd
}

// editIndex applies e to the index ref names and prints the result.
func editIndex(cmd *cobra.Command, o *rootOptions, format *formatFlag, ref string, e transfer.IndexEdit) error {
	t, err := o.open(cmd.Context(), ref, false)
	if err != nil {
		return err
	}
	desc, err := transfer.EditIndex(cmd.Context(), t, e)
	if err != nil {
		return err
	}
	return printIndex(cmd, format, t, desc)
}

func newIndexAnnotateCmd(o *rootOptions) *cobra.Command {
	var (
		format      formatFlag
		annotations []string
		platform    string
		dgst        string
	)
	cmd := &cobra.Command{
		Use:   "annotate INDEX --annotation k=v... [--platform P | --digest D]",
		Short: "Set annotations on an index, or on one of its entries",
		Example: `  lading index annotate oci:./images:app --annotation org.opencontainers.image.version=1.2
  lading index annotate oci:./images:app --platform linux/arm64 --annotation com.example.tuned=neoverse`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := format.check(); err != nil {
				return err
			}
			ann, err := keyValues("annotation", annotations)
			if err != nil || len(ann) == 0 {
				return usageError{fmt.Errorf("index annotate: %w: give --annotation k=v (%v)", errdef.ErrInvalid, err)}
			}
			var e transfer.IndexEdit
			switch {
			case platform != "":
				if e.EntryPlatform, err = parsePlatform(platform); err != nil {
					return err
				}
				e.EntryAnnotations = ann
			case dgst != "":
				if e.EntryDigest, err = digest.Parse(dgst); err != nil {
					return usageError{fmt.Errorf("--digest %q: %w: %v", dgst, errdef.ErrInvalid, err)}
				}
				e.EntryAnnotations = ann
			default:
				e.Annotations = ann
			}
			return editIndex(cmd, o, &format, args[0], e)
		},
	}
	cmd.Flags().StringArrayVar(&annotations, "annotation", nil, "the annotation k=v to set (repeatable)")
	cmd.Flags().StringVar(&platform, "platform", "", "annotate the entry of this platform")
	cmd.Flags().StringVar(&dgst, "digest", "", "annotate the entry with this digest")
	format.register(cmd, false)
	return cmd
}
