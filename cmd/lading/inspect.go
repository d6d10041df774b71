package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/lading-oci/lading/content"
	"github.com/lading-oci/lading/image"
	"github.com/lading-oci/lading/transfer"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/spf13/cobra"
)

// inspectView is what `lading inspect` shows, with docker inspect's field
// names so the same --format templates work.
type inspectView struct {
	Id           string               `json:"Id,omitempty"` //nolint:revive // docker's name
	RepoTags     []string             `json:"RepoTags"`
	RepoDigests  []string             `json:"RepoDigests"`
	Digest       string               `json:"Digest"`
	MediaType    string               `json:"MediaType"`
	Created      string               `json:"Created,omitempty"`
	Author       string               `json:"Author,omitempty"`
	Architecture string               `json:"Architecture,omitempty"`
	Os           string               `json:"Os,omitempty"`
	Variant      string               `json:"Variant,omitempty"`
	Config       *ocispec.ImageConfig `json:"Config,omitempty"`
	RootFS       *rootFSView          `json:"RootFS,omitempty"`
	Layers       []layerView          `json:"Layers,omitempty"`
	History      []ocispec.History    `json:"History,omitempty"`
	Size         int64                `json:"Size"`
	Annotations  map[string]string    `json:"Annotations,omitempty"`
	Manifests    []manifestView       `json:"Manifests,omitempty"`
}

type rootFSView struct {
	Type   string   `json:"Type"`
	Layers []string `json:"Layers"`
}

type layerView struct {
	Digest    string `json:"Digest"`
	MediaType string `json:"MediaType"`
	Size      int64  `json:"Size"`
}

type manifestView struct {
	Digest    string `json:"Digest"`
	MediaType string `json:"MediaType"`
	Size      int64  `json:"Size"`
	Platform  string `json:"Platform,omitempty"`
}

func imageView(img *content.LoadedImage) *inspectView {
	c := img.ConfigFile
	v := &inspectView{
		Id:           img.Manifest.Config.Digest.String(),
		Digest:       img.Desc.Digest.String(),
		MediaType:    img.Desc.MediaType,
		Author:       c.Author,
		Architecture: c.Architecture,
		Os:           c.OS,
		Variant:      c.Variant,
		Config:       &c.Config,
		RootFS:       &rootFSView{Type: c.RootFS.Type, Layers: []string{}},
		Layers:       []layerView{},
		History:      c.History,
		Annotations:  img.Manifest.Annotations,
		Size:         img.Manifest.Config.Size,
	}
	if c.Created != nil {
		v.Created = c.Created.UTC().Format(time.RFC3339Nano)
	}
	for _, d := range c.RootFS.DiffIDs {
		v.RootFS.Layers = append(v.RootFS.Layers, d.String())
	}
	for _, l := range img.Manifest.Layers {
		v.Layers = append(v.Layers, layerView{Digest: l.Digest.String(), MediaType: l.MediaType, Size: l.Size})
		v.Size += l.Size
	}
	return v
}

func newInspectCmd(o *rootOptions) *cobra.Command {
	var platform string
	var format formatFlag
	cmd := &cobra.Command{
		Use:   "inspect REF",
		Short: "Show an image's configuration, layers and history (like docker inspect)",
		Long: `Show an image: Id (config digest), RepoTags, RepoDigests, Digest, MediaType, Created, Author, Architecture,
Os, Variant, Config, RootFS (diff_ids), Layers, History, Size (config and compressed layers) and Annotations.

For an index, the text view lists its manifests and their platforms; --format picks the image for --platform (by
default linux on this machine's architecture), as unpack and config do, and fails naming the platforms the index
offers when there is none.

--format takes a Go template over those fields, as docker inspect does ({{json .Config}}, {{.Architecture}}),
or "json" for the whole view (docker's field names).`,
		Example: `  lading inspect oci:./images:app
  lading inspect oci:./images:app --format '{{json .Config}}'
  lading inspect oci:./images:app --format '{{json .RootFS.Layers}}'
  lading inspect oci:./images:multi --platform linux/arm64 --format '{{.Architecture}}'`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := format.check(); err != nil {
				return err
			}
			ctx := cmd.Context()
			p, err := parsePlatform(platform)
			if err != nil {
				return err
			}
			t, err := o.open(ctx, args[0], false)
			if err != nil {
				return err
			}
			desc, err := t.Resolve(ctx)
			if err != nil {
				return err
			}
			var v *inspectView
			if image.IsIndex(desc.MediaType) && p == nil && format.value == "" {
				if v, err = indexView(ctx, t.Store, desc); err != nil {
					return err
				}
			} else {
				img, err := content.LoadImage(ctx, t.Store, desc, p)
				if err != nil {
					return fmt.Errorf("%s: %w", args[0], err)
				}
				warnImage(cmd, img)
				v = imageView(img)
			}
			v.RepoTags, v.RepoDigests = repoNames(ctx, t, v.Digest)
			return format.write(cmd, v, v.writeText)
		},
	}
	format.register(cmd, true)
	cmd.Flags().StringVar(&platform, "platform", "", "pick this platform's image from an index (os/arch[/variant])")
	return cmd
}

// repoNames lists the references that name the manifest or index dgst in
// t's store: its tags (oci:DIR:TAG), and its digest reference.
func repoNames(ctx context.Context, t *transfer.Target, dgst string) (tags, digests []string) {
	tags = []string{}
	if entries, err := transfer.List(ctx, t); err == nil {
		for _, e := range entries {
			if e.Tag != "" && e.Digest == dgst {
				tags = append(tags, withTag(t.Ref, e.Tag))
			}
		}
	}
	base := t.Ref
	if d, err := base.WithDigest(digest.Digest(dgst)); err == nil {
		return tags, []string{d.String()}
	}
	return tags, []string{}
}

func indexView(ctx context.Context, st content.Fetcher, desc ocispec.Descriptor) (*inspectView, error) {
	data, err := content.ReadAll(ctx, st, desc, 0)
	if err != nil {
		return nil, err
	}
	idx, err := image.DecodeIndex(data)
	if err != nil {
		return nil, fmt.Errorf("index %s: %w", desc.Digest, err)
	}
	v := &inspectView{Digest: desc.Digest.String(), MediaType: desc.MediaType, Annotations: idx.Annotations, Manifests: []manifestView{}}
	for _, m := range idx.Manifests {
		mv := manifestView{Digest: m.Digest.String(), MediaType: m.MediaType, Size: m.Size}
		if m.Platform != nil {
			mv.Platform = image.FormatPlatform(*m.Platform)
		}
		v.Manifests = append(v.Manifests, mv)
		v.Size += m.Size
	}
	return v, nil
}

func (v *inspectView) writeText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	row := func(k string, val any) {
		if s := fmt.Sprint(val); s != "" && s != "[]" && s != "map[]" {
			fmt.Fprintf(tw, "%s:\t%s\n", k, s)
		}
	}
	row("Digest", v.Digest)
	row("MediaType", v.MediaType)
	for _, t := range v.RepoTags {
		row("RepoTag", t)
	}
	if v.Manifests != nil || v.Config == nil {
		row("Size", humanSize(v.Size)+" of manifests")
		for k, a := range v.Annotations {
			row("Annotation", k+"="+a)
		}
		tw.Flush()
		fmt.Fprintln(w, "Manifests:")
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  PLATFORM\tDIGEST\tMEDIA TYPE\tSIZE")
		for _, m := range v.Manifests {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", orNone(m.Platform), m.Digest, m.MediaType, humanSize(m.Size))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		_, err := fmt.Fprintln(w, "(pick an image with --platform os/arch[/variant])")
		return err
	}
	row("Id", v.Id)
	row("Created", v.Created)
	row("Author", v.Author)
	plat := v.Os + "/" + v.Architecture
	if v.Variant != "" {
		plat += "/" + v.Variant
	}
	row("Platform", plat)
	row("Size", fmt.Sprintf("%s in %d layers", humanSize(v.Size), len(v.Layers)))
	c := v.Config
	row("Entrypoint", quoteList(c.Entrypoint))
	row("Cmd", quoteList(c.Cmd))
	row("WorkingDir", c.WorkingDir)
	row("User", c.User)
	for _, e := range c.Env {
		row("Env", e)
	}
	for _, p := range sortedKeys(c.ExposedPorts) {
		row("ExposedPort", p)
	}
	for _, p := range sortedKeys(c.Volumes) {
		row("Volume", p)
	}
	for _, k := range sortedKeys(c.Labels) {
		row("Label", k+"="+c.Labels[k])
	}
	row("StopSignal", c.StopSignal)
	for _, k := range sortedKeys(v.Annotations) {
		row("Annotation", k+"="+v.Annotations[k])
	}
	tw.Flush()
	fmt.Fprintln(w, "Layers:")
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  #\tDIGEST\tDIFF ID\tMEDIA TYPE\tSIZE")
	for i, l := range v.Layers {
		diff := ""
		if i < len(v.RootFS.Layers) {
			diff = v.RootFS.Layers[i]
		}
		fmt.Fprintf(tw, "  %d\t%s\t%s\t%s\t%s\n", i, l.Digest, diff, l.MediaType, humanSize(l.Size))
	}
	tw.Flush()
	if len(v.History) > 0 {
		fmt.Fprintln(w, "History:")
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  CREATED\tCREATED BY\tCOMMENT\tEMPTY LAYER")
		for _, h := range v.History {
			created := ""
			if h.Created != nil {
				created = h.Created.UTC().Format(time.RFC3339)
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%v\n", created, h.CreatedBy, h.Comment, h.EmptyLayer)
		}
		tw.Flush()
	}
	return nil
}

func quoteList(s []string) string {
	if s == nil {
		return ""
	}
	b, _ := json.Marshal(s)
	return string(b)
}
