package main

import (
	"fmt"
	"github.com/lading-oci/lading/content"
	"github.com/lading-oci/lading/errdef"
	"github.com/lading-oci/lading/image"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/lading-oci/lading/ref"
	"github.com/lading-oci/lading/transfer"
)

func newInitCmd(o *rootOptions) *cobra.Command {
	return &cobra.Command{
		Use:     "init DIR",
		Short:   "Create an empty OCI image layout",
		Example: "  lading init ./images",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			t, err := o.openLayout(cmd.Context(), args[0], true)
			if err != nil {
				return err
			}
			info(cmd, "initialized OCI layout in %s", t.Ref.Path())
			return nil
		},
	}
}

func newLsCmd(o *rootOptions) *cobra.Command {
	var (
		format formatFlag
		tf     tagFilter
	)
	cmd := &cobra.Command{
		Use:   "ls DIR|REF",
		Short: "List the images in a layout or archive, or a registry repository's tags",
		Long: `List every entry of a layout's index.json: its tag, digest, media type, the platforms of the image (or of
each image of an index) and the image's size as docker counts it (config and layers).

--format json prints the entries (tag, digest, mediaType, size, platforms, imageSize); a Go template is applied to
each entry.

Given a registry repository (ghcr.io/org/app, localhost:5000/app), ls lists its tags, one per line (--format json: a
list), filtered with --filter REGEX and sorted with --sort lexical (the default) or semver.`,
		Example: `  lading ls ./images
  lading ls oci:./images --format json
  lading ls ./images --format '{{.Tag}} {{.Digest}}'
  lading ls ghcr.io/org/app --filter '^v1\.' --sort semver`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := format.check(); err != nil {
				return err
			}
			if isRegistryArg(args[0]) {
				return lsTags(cmd, o, args[0], tf, &format)
			}
			t, err := o.openPlace(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			entries, err := transfer.List(cmd.Context(), t)
			if err != nil {
				return err
			}
			if strings.Contains(format.value, "{{") {
				for _, e := range entries {
					if err := format.write(cmd, e, nil); err != nil {
						return err
					}
				}
				return nil
			}
			return format.write(cmd, entries, func(w io.Writer) error {
				tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "TAG\tDIGEST\tPLATFORM\tSIZE\tMEDIA TYPE")
				for _, e := range entries {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", orNone(e.Tag), e.Digest, strings.Join(e.Platforms, ","), humanSize(e.ImageSize), e.MediaType)
				}
				return tw.Flush()
			})
		},
	}
	format.register(cmd, true)
	cmd.Flags().StringVar(&tf.filter, "filter", "", "for a registry repository, only tags matching this regular expression")
	cmd.Flags().StringVar(&tf.sort, "sort", "", "for a registry repository, sort tags: lexical (default) or semver")
	return cmd
}

// isRegistryArg reports whether ls's argument names a registry repository:
// docker:// or a name that is not an existing path and has no other
// transport.
func isRegistryArg(s string) bool {
	if strings.HasPrefix(s, "docker://") {
		return true
	}
	if isTransportRef(s) || looksLikePath(s) {
		return false
	}
	r, err := ref.Parse(s)
	return err == nil && r.Scheme() == ref.SchemeRegistry
}

// lsTags lists the tags of a registry repository.
func lsTags(cmd *cobra.Command, o *rootOptions, s string, tf tagFilter, format *formatFlag) error {
	t, err := o.open(cmd.Context(), s, false)
	if err != nil {
		return err
	}
	tl, ok := t.Store.(content.TagLister)
	if !ok {
		return fmt.Errorf("ls %s: %w: the store cannot list tags", s, errdef.ErrUnsupported)
	}
	tags := []string{}
	if err := tl.Tags(cmd.Context(), func(page []string) error {
		tags = append(tags, page...)
		return nil
	}); err != nil {
		if hint := ref.LayoutHint(s); hint != "" {
			return fmt.Errorf("%w (%s)", err, hint)
		}
		return err
	}
	if tags, err = tf.apply(tags); err != nil {
		return err
	}
	if strings.Contains(format.value, "{{") {
		return usageError{fmt.Errorf("--format: %w: a registry's tags take json, not a template", errdef.ErrInvalid)}
	}
	return format.write(cmd, tags, func(w io.Writer) error {
		for _, t := range tags {
			fmt.Fprintln(w, t)
		}
		return nil
	})
}

// tagResult is what tag prints with --format json.
type tagResult struct {
	Reference string `json:"reference"`
	Digest    string `json:"digest"`
}

// copyResult is what copy prints with --format json.
type copyResult struct {
	Reference string `json:"reference"`
	Digest    string `json:"digest"`
	MediaType string `json:"mediaType"`
	// Source is the digest the source reference names; Kind says what was
	// copied of it: "index", "image", "image of the index", or "filtered
	// index" (a new index of some of the source's images).
	Source    string `json:"source"`
	Kind      string `json:"kind"`
	Referrers int    `json:"referrers"`
	Converted bool   `json:"converted"`
}

// isTransportRef reports whether s names a place (a transport prefix), not
// a tag.
func isTransportRef(s string) bool {
	for _, p := range []string{"oci:", "oci-archive:", "docker-archive:", "docker://"} {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

func newTagCmd(o *rootOptions) *cobra.Command {
	var format formatFlag
	cmd := &cobra.Command{
		Use:   "tag SRC_REF TAG|DST_REF",
		Short: "Tag an image: a new name beside it, or a copy to another reference",
		Long: `Give the image SRC_REF names a new tag in the same place, or, when the second argument is a reference with a
transport prefix (oci:DIR:TAG), copy it there (as lading copy does).

A tag is letters and digits joined by single separators (- . _ : @ +, or --) and /: v1.2, team/app, 1.0-debug.`,
		Example: `  lading tag oci:./images:v1.2.0 v1.2
  lading tag oci:./images@sha256:6c3c62... latest
  lading tag oci:./images:v1 oci:./release:v1`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := format.check(); err != nil {
				return err
			}
			ctx := cmd.Context()
			src, err := o.open(ctx, args[0], false)
			if err != nil {
				return err
			}
			if isTransportRef(args[1]) {
				return copyTo(cmd, o, src, args[1], transfer.CopyOptions{}, &format, "")
			}
			desc, err := transfer.Tag(ctx, src, args[1])
			if err != nil {
				return err
			}
			res := tagResult{Reference: withTag(src.Ref, args[1]), Digest: desc.Digest.String()}
			return format.write(cmd, res, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "%s %s\n", res.Reference, res.Digest)
				return err
			})
		},
	}
	format.register(cmd, false)
	return cmd
}

// withTag renders r with tag instead of its tag or digest.
func withTag(r ref.Reference, tag string) string {
	if t, err := r.WithTag(tag); err == nil {
		return t.String()
	}
	return r.String() + ":" + tag
}

// copyTo copies what src names to the reference dst and prints the result.
func copyTo(cmd *cobra.Command, o *rootOptions, src *transfer.Target, dst string, opts transfer.CopyOptions, format *formatFlag, digestFile string) error {
	ctx := cmd.Context()
	d, err := o.destinationSide(ctx, dst, destSide)
	if err != nil {
		return err
	}
	pf, end := o.progressFor(cmd, "copy")
	opts.Progress = pf
	res, err := transfer.Copy(ctx, src, d, opts)
	end()
	if err != nil {
		return err
	}
	for _, w := range res.Warnings {
		warn(cmd, "%s", w)
	}
	if digestFile != "" {
		if err := os.WriteFile(digestFile, []byte(res.Copied.Digest.String()), 0o644); err != nil {
			return fmt.Errorf("--digestfile: %w", err)
		}
	}
	out := copyResult{Reference: d.Ref.String(), Digest: res.Copied.Digest.String(), MediaType: res.Copied.MediaType,
		Source: res.Source.Digest.String(), Kind: copyKind(res), Referrers: res.Referrers, Converted: res.Converted}
	return format.write(cmd, out, func(w io.Writer) error {
		if out.Kind == "filtered index" || out.Kind == "image of the index" {
			info(cmd, "copied the %s %s of %s", out.Kind, out.Digest, out.Source)
		}
		if out.Referrers > 0 {
			info(cmd, "copied %d referrers", out.Referrers)
		}
		_, err := fmt.Fprintf(w, "%s %s\n", out.Reference, out.Digest)
		return err
	})
}

// copyKind says what Copy copied of its source.
func copyKind(res transfer.CopyResult) string {
	switch {
	case res.Filtered:
		return "filtered index"
	case res.Copied.Digest != res.Source.Digest && image.IsIndex(res.Source.MediaType) && !image.IsIndex(res.Copied.MediaType):
		return "image of the index"
	case image.IsIndex(res.Copied.MediaType):
		return "index"
	}
	return "image"
}

func newCopyCmd(o *rootOptions) *cobra.Command {
	var (
		output     formatFlag
		manifests  string
		platforms  []string
		all        bool
		referrers  bool
		digestFile string
	)
	cmd := &cobra.Command{
		Use:   "copy SRC_REF DST_REF",
		Short: "Copy an image or index, with everything it references, to another reference",
		Long: `Copy the image SRC_REF names, with every blob, config and manifest it references, to DST_REF, and tag it
there. Blobs are copied before the manifests that list them, and those before their indexes, so the destination never
holds a manifest whose blobs are missing. What the destination already has is not copied again. Digests are kept.
A destination layout that does not exist is created, and removed again if the copy fails.

From an index (a multi-platform image), copy takes the image for --platform (default linux on this machine's
architecture), as skopeo does; --platform a,b takes several (the result is the original index when they are all it
has, else a new index of those, whose digest is printed); --all copies the index whole. --referrers copies the
signatures, SBOMs and attestations that refer to what is copied.

--format oci|docker converts the manifests (and indexes) between OCI and Docker schema 2, as skopeo does; configs
and layers keep their digests, the manifests get new ones. --output json prints the result as JSON.`,
		Example: `  lading copy oci:./images:app oci:./release:app
  lading copy oci:./images:multi oci:./arm:app --platform linux/arm64
  lading copy oci:./images:multi oci:./mirror:multi --all --referrers
  lading copy oci:./images:app docker-archive:app.tar:example.com/app:1.0 --format docker`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := output.check(); err != nil {
				return err
			}
			opts, err := platformOptions(platforms, all)
			if err != nil {
				return err
			}
			opts.Referrers = referrers
			switch manifests {
			case "":
			case "oci":
				opts.Format = image.FormatOCI
			case "docker", "v2s2":
				opts.Format = image.FormatDocker
			default:
				return usageError{fmt.Errorf("--format %q: %w: want oci or docker", manifests, errdef.ErrInvalid)}
			}
			sr, err := parseRef(args[0])
			if err != nil {
				return err
			}
			src, err := o.openSide(cmd.Context(), sr, false, srcSide)
			if err != nil {
				return err
			}
			opts = imageOptions(cmd, src, opts, all)
			return copyTo(cmd, o, src, args[1], opts, &output, digestFile)
		},
	}
	cmd.Flags().StringVarP(&output.value, "output", "o", "", `output format: "json"`)
	cmd.Flags().StringVar(&manifests, "format", "", "convert the manifests: oci or docker (Docker V2 schema 2)")
	cmd.Flags().StringVar(&digestFile, "digestfile", "", "also write the copied manifest's digest to this file")
	cmd.Flags().StringSliceVar(&platforms, "platform", nil, "from an index, the platforms to copy: os/arch[/variant], comma-separated or repeated")
	cmd.Flags().BoolVar(&all, "all", false, "copy an index with every image it lists")
	cmd.Flags().BoolVar(&referrers, "referrers", false, "also copy what refers to the image (signatures, SBOMs, attestations)")
	o.reg.registerSides(cmd)
	return cmd
}

// rmResult is one reference rm handled.
type rmResult struct {
	Reference string   `json:"reference"`
	Removed   []string `json:"removed"`
	Error     string   `json:"error,omitempty"`
}

func newRmCmd(o *rootOptions) *cobra.Command {
	var format formatFlag
	cmd := &cobra.Command{
		Use:   "rm REF...",
		Short: "Remove tags, or index.json entries by digest (the content stays until gc)",
		Long: `Remove each tag (oci:DIR:TAG), or every index.json entry with a digest (oci:DIR@DIGEST), saying which tags went.
Every reference is tried; the ones that could not be removed are reported and make the exit status non-zero.`,
		Example: `  lading rm oci:./images:old
  lading rm oci:./images:old oci:./images:older && lading gc ./images
  lading rm oci:./images@sha256:6c3c62...`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := format.check(); err != nil {
				return err
			}
			var results []rmResult
			var errs []error
			for _, a := range args {
				r := rmResult{Reference: a, Removed: []string{}}
				t, err := o.open(cmd.Context(), a, false)
				if err == nil {
					var tags []string
					if tags, err = transfer.Remove(cmd.Context(), t); err == nil && tags != nil {
						r.Removed = tags
					}
				}
				if err != nil {
					r.Error = err.Error()
					errs = append(errs, err)
				}
				results = append(results, r)
			}
			werr := format.write(cmd, results, func(w io.Writer) error {
				for _, r := range results {
					switch {
					case r.Error != "":
					case strings.Contains(r.Reference, "@") && len(r.Removed) == 0:
						fmt.Fprintf(w, "removed %s (untagged)\n", r.Reference)
					case strings.Contains(r.Reference, "@"):
						fmt.Fprintf(w, "removed %s (tags %s)\n", r.Reference, strings.Join(r.Removed, ", "))
					default:
						fmt.Fprintf(w, "removed %s\n", r.Reference)
					}
				}
				return nil
			})
			if werr != nil {
				return werr
			}
			switch len(errs) {
			case 0:
				return nil
			case 1:
				return errs[0]
			}
			for _, e := range errs[:len(errs)-1] {
				fmt.Fprintln(cmd.ErrOrStderr(), "lading: "+oneLine(e))
			}
			return fmt.Errorf("%d of %d references not removed; last: %w", len(errs), len(args), errs[len(errs)-1])
		},
	}
	format.register(cmd, false)
	return cmd
}

func orNone(s string) string {
	if s == "" {
		return "<none>"
	}
	return s
}
