package main

import (
	"fmt"
	"github.com/lading-oci/lading/transfer"
	"io"
	"os"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/spf13/cobra"

	"github.com/lading-oci/lading/content"
	"github.com/lading-oci/lading/content/ocilayout"
	"github.com/lading-oci/lading/errdef"
	"github.com/lading-oci/lading/image"
)

func newManifestCmd(o *rootOptions) *cobra.Command {
	var platform string
	cmd := &cobra.Command{
		Use:   "manifest REF",
		Short: "Print the raw manifest (or index) a reference names",
		Example: `  lading manifest oci:./images:app | jq .
  lading manifest oci:./images:multi --platform linux/arm64`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := parsePlatform(platform)
			if err != nil {
				return err
			}
			t, err := o.open(cmd.Context(), args[0], false)
			if err != nil {
				return err
			}
			desc, err := t.Select(cmd.Context(), p)
			if err != nil {
				return err
			}
			data, err := content.ReadAll(cmd.Context(), t.Store, desc, 0)
			if err != nil {
				return err
			}
			_, err = cmd.OutOrStdout().Write(data)
			return err
		},
	}
	cmd.Flags().StringVar(&platform, "platform", "", "from an index, print this platform's manifest (os/arch[/variant])")
	return cmd
}

func newConfigCmd(o *rootOptions) *cobra.Command {
	var platform string
	cmd := &cobra.Command{
		Use:     "config REF",
		Short:   "Print an image's raw configuration",
		Example: `  lading config oci:./images:app | jq .config.Env`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			_, img, err := o.loadImage(cmd, args[0], platform)
			if err != nil {
				return err
			}
			_, err = cmd.OutOrStdout().Write(img.RawConfig)
			return err
		},
	}
	cmd.Flags().StringVar(&platform, "platform", "", "from an index, this platform's image (default linux on this machine's architecture)")
	return cmd
}

func newBlobCmd(o *rootOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "blob REF DIGEST",
		Short: "Write a blob's raw bytes to stdout, verified against its digest",
		Example: `  lading blob oci:./images sha256:3f1b... > layer.tar.gz
  lading blob ./images sha256:3f1b... | tar -tzf -
  lading blob ghcr.io/org/app sha256:3f1b... | tar -tzf -`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			d, err := digest.Parse(args[1])
			if err != nil {
				return usageError{fmt.Errorf("digest %q: %w: %v", args[1], errdef.ErrInvalid, err)}
			}
			ctx := cmd.Context()
			var t *transfer.Target
			if isRegistryArg(args[0]) || isTransportRef(args[0]) && !strings.HasPrefix(args[0], "oci:") {
				t, err = o.open(ctx, args[0], false)
			} else {
				dir := args[0]
				if r, err := parseRef(dir); err == nil && r.Path() != "" {
					dir = "oci:" + r.Path() // the tag or digest of the reference does not matter
				}
				t, err = o.openLayout(ctx, dir, false)
			}
			if err != nil {
				return err
			}
			st, ok := t.Store.(content.Stater)
			if !ok {
				return fmt.Errorf("blob %s: %w: the store cannot look blobs up by digest", args[0], errdef.ErrUnsupported)
			}
			desc, err := st.Stat(ctx, d)
			if err != nil {
				return err
			}
			rc, err := t.Store.Fetch(ctx, desc)
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

// digestResult is what digest prints with --format json.
type digestResult struct {
	Reference string `json:"reference"`
	Digest    string `json:"digest"`
	MediaType string `json:"mediaType"`
	Size      int64  `json:"size"`
}

func newDigestCmd(o *rootOptions) *cobra.Command {
	var platform string
	var format formatFlag
	cmd := &cobra.Command{
		Use:   "digest REF",
		Short: "Print the digest of the manifest or index a reference names",
		Example: `  lading digest oci:./images:app
  lading digest oci:./images:multi --platform linux/amd64`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := format.check(); err != nil {
				return err
			}
			p, err := parsePlatform(platform)
			if err != nil {
				return err
			}
			t, err := o.open(cmd.Context(), args[0], false)
			if err != nil {
				return err
			}
			desc, err := t.Select(cmd.Context(), p)
			if err != nil {
				return err
			}
			res := digestResult{Reference: args[0], Digest: desc.Digest.String(), MediaType: desc.MediaType, Size: desc.Size}
			return format.write(cmd, res, func(w io.Writer) error {
				_, err := fmt.Fprintln(w, res.Digest)
				return err
			})
		},
	}
	cmd.Flags().StringVar(&platform, "platform", "", "from an index, this platform's manifest digest")
	format.register(cmd, false)
	return cmd
}

func newValidateCmd(_ *rootOptions) *cobra.Command {
	var mediaType string
	cmd := &cobra.Command{
		Use:   "validate [--media-type MT] FILE|-",
		Short: "Validate a manifest, index, config or oci-layout file against the OCI image spec",
		Long: `Validate a JSON document strictly: the spec's schemas plus the rules they cannot express (digest syntax,
data fields, Env entries, media type consistency, ...), including what the spec states as SHOULD, which reading
an image only warns about. Without --media-type the document's own mediaType decides. Prints "valid" and exits 0,
or prints every problem, one per line, to stderr and exits 1.`,
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
				return exitError{exitFailure}
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

// verifyResult is what verify prints with --format json.
type verifyResult struct {
	Blobs     int64          `json:"blobs"`
	Bytes     int64          `json:"bytes"`
	Documents int            `json:"documents"`
	Problems  []problemEntry `json:"problems"`
	Warnings  []problemEntry `json:"warnings"`
}

type problemEntry struct {
	Path    string `json:"path"`
	Digest  string `json:"digest,omitempty"`
	Parent  string `json:"parent,omitempty"`
	Message string `json:"message"`
}

func problems(ps []ocilayout.Problem) []problemEntry {
	out := make([]problemEntry, 0, len(ps))
	for _, p := range ps {
		out = append(out, problemEntry{Path: p.Path, Digest: string(p.Digest), Parent: p.Parent, Message: oneLine(p.Err)})
	}
	return out
}

func newVerifyCmd(o *rootOptions) *cobra.Command {
	var format formatFlag
	cmd := &cobra.Command{
		Use:   "verify DIR",
		Short: "Check a layout: every blob's digest and size, references, diff_ids, and every document",
		Long: `Check a whole layout (fsck): hash every blob in parallel against its name and size, check that everything
index.json reaches is present, that each config has one diff_id per layer, and that every manifest, index and
config can be read. Every problem is reported, each naming the blob's digest and path; what reading tolerates (a
rule the spec states as SHOULD, an annotation value) is reported as a warning. Exits 4 if any problem is found.`,
		Example: `  lading verify ./images
  lading verify ./images --format json | jq .problems`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := format.check(); err != nil {
				return err
			}
			t, err := o.openLayout(cmd.Context(), args[0], false)
			if err != nil {
				return err
			}
			lay, _ := t.Layout()
			pf, end := o.progressFor(cmd, "verify")
			rep, err := lay.Verify(cmd.Context(), ocilayout.VerifyOptions{Progress: pf})
			end()
			if err != nil {
				return err
			}
			res := verifyResult{Blobs: rep.Blobs, Bytes: rep.Bytes, Documents: rep.Documents, Problems: problems(rep.Problems), Warnings: problems(rep.Warnings)}
			if err := format.write(cmd, res, func(w io.Writer) error {
				for _, p := range rep.Problems {
					fmt.Fprintln(w, oneLineString(p.String()))
				}
				for _, p := range rep.Warnings {
					fmt.Fprintln(w, "warning: "+oneLineString(p.String()))
				}
				_, err := fmt.Fprintf(w, "%d blobs, %s checked, %d problems, %d warnings\n", rep.Blobs, humanSize(rep.Bytes), len(rep.Problems), len(rep.Warnings))
				return err
			}); err != nil {
				return err
			}
			if len(rep.Problems) > 0 {
				return exitError{exitVerify}
			}
			return nil
		},
	}
	format.register(cmd, false)
	return cmd
}

// gcResult is what gc prints with --format json.
type gcResult struct {
	DryRun     bool      `json:"dryRun"`
	Blobs      []removed `json:"blobs"`
	Partial    []removed `json:"partialWrites"`
	FreedBytes int64     `json:"freedBytes"`
	Kept       int       `json:"kept"`
}

type removed struct {
	Digest string `json:"digest,omitempty"`
	Path   string `json:"path"`
	Size   int64  `json:"size"`
}

func newGCCmd(o *rootOptions) *cobra.Command {
	var (
		dryRun bool
		minAge time.Duration
		format formatFlag
	)
	cmd := &cobra.Command{
		Use:   "gc DIR",
		Short: "Remove blobs nothing in index.json reaches, and stale partial writes",
		Long: `Remove every blob that index.json does not reach (through indexes, manifests, configs and layers; an
artifact whose subject is reachable is kept, with what it references), and partial writes left by
interrupted processes. --dry-run lists what would be removed.

While another process is writing to the layout (a build, say), what it has written is not tagged yet,
so gc refuses to run (exit 6); --min-age lets it run anyway, keeping every unreferenced blob younger than that.`,
		Example: `  lading gc ./images --dry-run
  lading rm oci:./images:old && lading gc ./images
  lading gc ./images --min-age 1h`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := format.check(); err != nil {
				return err
			}
			t, err := o.openLayout(cmd.Context(), args[0], false)
			if err != nil {
				return err
			}
			lay, _ := t.Layout()
			rep, err := lay.GC(cmd.Context(), ocilayout.GCOptions{DryRun: dryRun, MinBlobAge: minAge})
			if err != nil {
				return err
			}
			res := gcResult{DryRun: dryRun, Blobs: []removed{}, Partial: []removed{}, FreedBytes: rep.FreedBytes, Kept: rep.Kept}
			for _, r := range rep.Blobs {
				res.Blobs = append(res.Blobs, removed{Digest: r.Digest.String(), Path: r.Path, Size: r.Size})
			}
			for _, r := range rep.Ingests {
				res.Partial = append(res.Partial, removed{Path: r.Path, Size: r.Size})
			}
			return format.write(cmd, res, func(w io.Writer) error {
				verb := "removed"
				if dryRun {
					verb = "would remove"
				}
				for _, r := range rep.Blobs {
					fmt.Fprintf(w, "%s blob %s (%s)\n", verb, r.Digest, humanSize(r.Size))
				}
				for _, r := range rep.Ingests {
					fmt.Fprintf(w, "%s partial write %s (%s)\n", verb, r.Path, humanSize(r.Size))
				}
				_, err := fmt.Fprintf(w, "%s %d blobs and %d partial writes, %s; %d blobs kept\n", verb, len(rep.Blobs), len(rep.Ingests), humanSize(rep.FreedBytes), rep.Kept)
				return err
			})
		},
	}
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "list what would be removed without removing it")
	cmd.Flags().DurationVar(&minAge, "min-age", 0, "keep unreferenced blobs younger than this (lets gc run while another process writes)")
	format.register(cmd, false)
	return cmd
}
