package main

import (
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/lading-oci/lading/errdef"
	"github.com/lading-oci/lading/image"
	"github.com/lading-oci/lading/ref"
	"github.com/lading-oci/lading/transfer"
)

func newPullCmd(o *rootOptions) *cobra.Command {
	var (
		output    formatFlag
		platforms []string
		all       bool
	)
	cmd := &cobra.Command{
		Use:   "pull REF LAYOUT",
		Short: "Copy an image from a registry into an OCI layout (copy REF oci:LAYOUT:TAG)",
		Long: `Copy the image REF names (a registry reference: alpine, ghcr.io/org/app:1.2, localhost:5000/app@sha256:...)
into the OCI layout LAYOUT, tagged with REF's tag ("latest" when it names none, the digest's encoded part when it
names only a digest). From an index it takes the image for --platform (default linux on this machine's
architecture), or every image with --all. It is lading copy with the destination filled in.`,
		Example: `  lading pull alpine:3.20 ./images
  lading pull ghcr.io/org/app:1.2 ./images --platform linux/arm64`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := output.check(); err != nil {
				return err
			}
			r, err := parseRef(args[0])
			if err != nil {
				return err
			}
			tag := r.Tag()
			if tag == "" {
				tag = "latest"
				if r.Digest() != "" {
					tag = r.Digest().Encoded()
				}
			}
			dst := "oci:" + strings.TrimPrefix(args[1], "oci:") + ":" + tag
			opts, err := platformOptions(platforms, all)
			if err != nil {
				return err
			}
			src, err := o.openSide(cmd.Context(), r, false, srcSide)
			if err != nil {
				return err
			}
			return copyTo(cmd, o, src, dst, imageOptions(cmd, src, opts, all), &output, "")
		},
	}
	cmd.Flags().StringVarP(&output.value, "output", "o", "", `output format: "json"`)
	cmd.Flags().StringSliceVar(&platforms, "platform", nil, "from an index, the platforms to pull")
	cmd.Flags().BoolVar(&all, "all", false, "pull an index with every image it lists")
	return cmd
}

func newPushCmd(o *rootOptions) *cobra.Command {
	var output formatFlag
	cmd := &cobra.Command{
		Use:   "push SRC_REF REF",
		Short: "Copy an image or index to a registry (copy SRC_REF REF, every platform)",
		Long: `Copy what SRC_REF names (oci:DIR:TAG, an archive, another registry) to the registry reference REF, with every
platform of an index. It is lading copy --all.`,
		Example: `  lading push oci:./images:app ghcr.io/org/app:1.2
  lading push oci:./images:multi localhost:5000/app:latest`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := output.check(); err != nil {
				return err
			}
			src, err := o.open(cmd.Context(), args[0], false)
			if err != nil {
				return err
			}
			return copyTo(cmd, o, src, args[1], transfer.CopyOptions{}, &output, "")
		},
	}
	cmd.Flags().StringVarP(&output.value, "output", "o", "", `output format: "json"`)
	return cmd
}

func newCatalogCmd(o *rootOptions) *cobra.Command {
	var format formatFlag
	cmd := &cobra.Command{
		Use:   "catalog HOST",
		Short: "List a registry's repositories",
		Example: `  lading catalog localhost:5000
  lading catalog registry.example.com --format json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := format.check(); err != nil {
				return err
			}
			r, err := ref.Parse(strings.TrimSuffix(args[0], "/") + "/x")
			if err != nil {
				return usageError{fmt.Errorf("catalog %q: %w: want a registry host (host[:port])", args[0], errdef.ErrInvalid)}
			}
			c, err := o.clientFor(cmd, r, anySide)
			if err != nil {
				return err
			}
			repos := []string{}
			if err := c.Catalog(cmd.Context(), r.Host(), func(page []string) error {
				repos = append(repos, page...)
				return nil
			}); err != nil {
				return err
			}
			return format.write(cmd, repos, func(w io.Writer) error {
				for _, r := range repos {
					fmt.Fprintln(w, r)
				}
				return nil
			})
		},
	}
	format.register(cmd, false)
	return cmd
}

func newDeleteCmd(o *rootOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "delete REF",
		Short: "Delete a manifest from a registry (with every tag that points at it)",
		Long: `Delete the manifest or index REF names from its registry: by digest, or the one its tag points at (which
deletes that digest, and so every tag of it, as registries do). To remove a tag only, use lading rm.`,
		Example: `  lading delete localhost:5000/app@sha256:6c3c62...
  lading delete localhost:5000/app:old`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			t, err := o.open(cmd.Context(), args[0], false)
			if err != nil {
				return err
			}
			repo, ok := t.Repository()
			if !ok {
				return usageError{fmt.Errorf("delete %s: %w: delete works on registries; for a layout, use lading rm and lading gc", args[0], errdef.ErrInvalid)}
			}
			desc, err := t.Resolve(cmd.Context())
			if err != nil {
				return err
			}
			if err := repo.DeleteManifest(cmd.Context(), desc.Digest); err != nil {
				return err
			}
			printf(cmd, "deleted %s\n", desc.Digest)
			return nil
		},
	}
	return cmd
}

// platformOptions turns --platform and --all into copy options.
func platformOptions(platforms []string, all bool) (transfer.CopyOptions, error) {
	var opts transfer.CopyOptions
	if all && len(platforms) > 0 {
		return opts, usageError{fmt.Errorf("--all and --platform: %w: give one", errdef.ErrInvalid)}
	}
	if all {
		return opts, nil
	}
	if len(platforms) == 0 {
		platforms = []string{defaultPlatformName()}
	}
	for _, p := range platforms {
		pl, err := parsePlatform(p)
		if err != nil {
			return opts, err
		}
		opts.Platforms = append(opts.Platforms, *pl)
	}
	return opts, nil
}

// imageOptions drops the default platform choice when src names a single
// image: it is copied whatever its platform.
func imageOptions(cmd *cobra.Command, src *transfer.Target, opts transfer.CopyOptions, all bool) transfer.CopyOptions {
	if !all && !cmd.Flags().Changed("platform") {
		if d, err := src.Resolve(cmd.Context()); err == nil && !isIndex(d.MediaType) {
			opts.Platforms = nil
		}
	}
	return opts
}

// tagFilter is ls's --filter and --sort for registry tags.
type tagFilter struct {
	filter string
	sort   string
}

// apply filters and sorts tags.
func (f tagFilter) apply(tags []string) ([]string, error) {
	out := tags
	if f.filter != "" {
		re, err := regexp.Compile(f.filter)
		if err != nil {
			return nil, usageError{fmt.Errorf("--filter: %w: %v", errdef.ErrInvalid, err)}
		}
		out = slices.DeleteFunc(slices.Clone(tags), func(t string) bool { return !re.MatchString(t) })
	}
	switch f.sort {
	case "", "lexical":
		slices.Sort(out)
	case "semver":
		slices.SortStableFunc(out, compareSemver)
	default:
		return nil, usageError{fmt.Errorf("--sort %q: %w: want semver or lexical", f.sort, errdef.ErrInvalid)}
	}
	return out, nil
}

// compareSemver orders tags as versions (v1.2.10 after v1.2.9; a
// pre-release before its release), with tags that are not versions last,
// in lexical order.
func compareSemver(a, b string) int {
	va, oka := parseVersion(a)
	vb, okb := parseVersion(b)
	switch {
	case oka && !okb:
		return -1
	case !oka && okb:
		return 1
	case !oka && !okb:
		return strings.Compare(a, b)
	}
	for i := range 3 {
		if va.n[i] != vb.n[i] {
			if va.n[i] < vb.n[i] {
				return -1
			}
			return 1
		}
	}
	switch {
	case va.pre == vb.pre:
		return strings.Compare(a, b)
	case va.pre == "":
		return 1
	case vb.pre == "":
		return -1
	}
	return strings.Compare(va.pre, vb.pre)
}

type semver struct {
	n   [3]int
	pre string
}

// parseVersion reads [v]MAJOR[.MINOR[.PATCH]][-PRE][+BUILD].
func parseVersion(s string) (semver, bool) {
	var v semver
	s = strings.TrimPrefix(s, "v")
	s, _, _ = strings.Cut(s, "+")
	s, v.pre, _ = strings.Cut(s, "-")
	parts := strings.Split(s, ".")
	if len(parts) == 0 || len(parts) > 3 {
		return v, false
	}
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 {
			return v, false
		}
		v.n[i] = n
	}
	return v, true
}

func defaultPlatformName() string { return image.FormatPlatform(image.DefaultPlatform()) }

func isIndex(mt string) bool { return image.IsIndex(mt) }
