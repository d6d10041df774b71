package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"text/template"
	"time"

	"github.com/lading-oci/lading/content"
	"github.com/lading-oci/lading/errdef"
	"github.com/lading-oci/lading/image"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/spf13/cobra"
)

// inspectView is what `lading inspect` shows, with docker inspect's field
// names so the same --format templates work.
type inspectView struct {
	Id           string               `json:"Id,omitempty"` //nolint:revive // docker's name
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

func newInspectCmd(_ *rootOptions) *cobra.Command {
	var format, platform string
	cmd := &cobra.Command{
		Use:   "inspect REF",
		Short: "Show an image's configuration, layers and history (like docker inspect)",
		Long: `Show an image: Id (config digest), Digest, MediaType, Created, Author, Architecture, Os, Variant, Config,
RootFS (diff_ids), Layers, History, Size (compressed layers) and Annotations. For an index, its manifests and their
platforms, unless --platform picks one.

--format takes a Go template over those fields, as docker inspect does ({{json .Config}}, {{.Architecture}}),
or "json" for the whole view.`,
		Example: `  lading inspect oci:./images:app
  lading inspect oci:./images:app --format '{{json .Config}}'
  lading inspect oci:./images:app --format '{{json .RootFS.Layers}}'
  lading inspect oci:./images:multi --platform linux/arm64 --format '{{.Architecture}}'`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			st, desc, err := openImage(ctx, args[0])
			if err != nil {
				return err
			}
			var v *inspectView
			if image.IsIndex(desc.MediaType) && platform == "" {
				if v, err = indexView(cmd, st, desc); err != nil {
					return err
				}
			} else {
				p, err := parsePlatform(platform)
				if err != nil {
					return err
				}
				img, err := content.LoadImage(ctx, st, desc, p)
				if err != nil {
					return fmt.Errorf("%s: %w", args[0], err)
				}
				v = imageView(img)
			}
			return render(cmd.OutOrStdout(), format, v, func(w io.Writer) error { return v.writeText(w) })
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "", "Go template or \"json\"")
	cmd.Flags().StringVar(&platform, "platform", "", "pick this platform's image from an index (os/arch[/variant])")
	return cmd
}

func indexView(cmd *cobra.Command, st content.Fetcher, desc ocispec.Descriptor) (*inspectView, error) {
	data, err := content.ReadAll(cmd.Context(), st, desc, 0)
	if err != nil {
		return nil, err
	}
	idx, err := image.DecodeIndex(data)
	if err != nil {
		return nil, fmt.Errorf("index %s: %w", desc.Digest, err)
	}
	v := &inspectView{Digest: desc.Digest.String(), MediaType: desc.MediaType, Annotations: idx.Annotations}
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

// render writes v as JSON ("json"), through a Go template, or as text.
func render(w io.Writer, format string, v any, text func(io.Writer) error) error {
	switch format {
	case "":
		return text(w)
	case "json":
		return writeJSON(w, v)
	}
	tmpl, err := template.New("format").Funcs(template.FuncMap{
		"json": func(v any) (string, error) {
			b, err := json.Marshal(v)
			return string(b), err
		},
		"join":  strings.Join,
		"upper": strings.ToUpper,
		"lower": strings.ToLower,
	}).Parse(format)
	if err != nil {
		return fmt.Errorf("--format: %w: %v", errdef.ErrInvalid, err)
	}
	if err := tmpl.Execute(w, v); err != nil {
		return fmt.Errorf("--format: %w", err)
	}
	_, err = fmt.Fprintln(w)
	return err
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
	if v.Manifests != nil || v.Config == nil {
		row("Size", fmt.Sprintf("%d bytes of manifests", v.Size))
		for k, a := range v.Annotations {
			row("Annotation", k+"="+a)
		}
		tw.Flush()
		fmt.Fprintln(w, "Manifests:")
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  PLATFORM\tDIGEST\tMEDIA TYPE\tSIZE")
		for _, m := range v.Manifests {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%d\n", orNone(m.Platform), m.Digest, m.MediaType, m.Size)
		}
		return tw.Flush()
	}
	row("Id", v.Id)
	row("Created", v.Created)
	row("Author", v.Author)
	plat := v.Os + "/" + v.Architecture
	if v.Variant != "" {
		plat += "/" + v.Variant
	}
	row("Platform", plat)
	row("Size", fmt.Sprintf("%d bytes in %d layers", v.Size, len(v.Layers)))
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
		fmt.Fprintf(tw, "  %d\t%s\t%s\t%s\t%d\n", i, l.Digest, diff, l.MediaType, l.Size)
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

func orNone(s string) string {
	if s == "" {
		return "<none>"
	}
	return s
}

var _ = os.Stdout
