//lint:file-ignore SA1019 the deprecated non-distributable layer types are still converted

package image

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/lading-oci/lading/errdef"
	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Format is a family of image documents.
type Format int

// Formats Convert converts between.
const (
	// FormatOCI is the OCI image specification: image manifests and indexes.
	FormatOCI Format = iota + 1
	// FormatDocker is Docker's image manifest V2 schema 2 and manifest list.
	FormatDocker
)

// String returns "oci" or "docker".
func (f Format) String() string {
	switch f {
	case FormatOCI:
		return "oci"
	case FormatDocker:
		return "docker"
	}
	return fmt.Sprintf("Format(%d)", int(f))
}

// ErrSkipChild, returned by ConvertOptions.Child, drops that entry from the
// converted index (with a warning) instead of failing the conversion.
var ErrSkipChild = errors.New("skip index entry")

// ConvertOptions tunes Convert.
type ConvertOptions struct {
	// Strict refuses, with errdef.ErrUnsupported, a conversion that would
	// drop a field the target format cannot carry (annotations, subject,
	// artifactType, descriptor fields Docker has no place for), instead of
	// dropping it with a warning.
	Strict bool
	// Child converts the entry i of an index, desc, that is not in the
	// target format yet (a manifest, or a nested index): typically it
	// fetches the child, calls Convert on it, stores the result and returns
	// its descriptor. The returned media type, digest and size replace the
	// entry's; its platform is kept. Returning ErrSkipChild drops the
	// entry. Converting an index with such entries and no Child fails with
	// errdef.ErrInvalid.
	Child func(i int, desc ocispec.Descriptor) (ocispec.Descriptor, error)
}

// Converted is the result of Convert.
type Converted struct {
	// Data is the converted document; Descriptor describes it (media type,
	// sha256 digest, size).
	Data       []byte
	Descriptor ocispec.Descriptor
	// Changed is false when the document was already in the target format:
	// Data is then the input.
	Changed bool
	// Warnings lists what was dropped, one line each, naming the field.
	Warnings []string
	// Children lists the index entries that changed: the caller stores the
	// converted children (Child did) and keeps any reference to them up to
	// date. An entry dropped has a zero New.
	Children []ChildChange
}

// ChildChange is one index entry Convert replaced.
type ChildChange struct {
	Index int
	Old   ocispec.Descriptor
	New   ocispec.Descriptor
}

// Convert converts an image manifest or index (its media type and bytes)
// to the format to: OCI image manifest <-> Docker schema 2 manifest, OCI
// index <-> Docker manifest list. The input is decoded first, as
// DecodeManifest and DecodeIndex read it (tolerating what the
// specification only recommends). Only documents change: the config blob is the same in
// both formats and keeps its digest (its media type changes), and layer
// blobs keep theirs: tar and tar+gzip layers map both ways, gzip
// non-distributable OCI layers to Docker foreign layers and back, and
// Docker's zstd layer type to OCI zstd. An OCI zstd layer, an uncompressed
// non-distributable layer (Docker schema 2 defines only a gzip foreign
// type), a config that is not an image
// configuration (an artifact), a Docker plugin config and a nested index
// bound for a manifest list are refused with errdef.ErrUnsupported naming
// the object. Fields Docker cannot carry are dropped with a warning (or
// refused, with opts.Strict), as skopeo drops them (silently) when it
// converts to Docker.
func Convert(mediaType string, data []byte, to Format, opts ConvertOptions) (*Converted, error) {
	if to != FormatOCI && to != FormatDocker {
		return nil, fmt.Errorf("convert: %w: unknown target format %v", errdef.ErrInvalid, to)
	}
	if mediaType == "" {
		mediaType = MediaTypeOf(data)
	}
	var (
		out *Converted
		err error
	)
	switch {
	case IsManifest(mediaType):
		m, derr := decodeManifest(mediaType, data, nil)
		if derr != nil {
			return nil, fmt.Errorf("convert: %w", derr)
		}
		if formatOf(mediaType) == to {
			return unchanged(mediaType, data), nil
		}
		c := &converter{strict: opts.Strict}
		if to == FormatDocker {
			out, err = c.manifestToDocker(m)
		} else {
			out, err = c.manifestToOCI(m)
		}
	case IsIndex(mediaType):
		idx, derr := decodeIndex(mediaType, data, nil)
		if derr != nil {
			return nil, fmt.Errorf("convert: %w", derr)
		}
		c := &converter{strict: opts.Strict}
		out, err = c.index(idx, formatOf(mediaType), to, opts.Child)
		if err == nil && !out.Changed {
			return unchanged(mediaType, data), nil
		}
	case IsSchema1(mediaType):
		return nil, fmt.Errorf("convert %s: %w: Docker schema 1 manifests are not converted", mediaType, errdef.ErrUnsupported)
	default:
		return nil, fmt.Errorf("convert: %w: media type %q is neither a manifest nor an index", errdef.ErrUnsupported, mediaType)
	}
	if err != nil {
		return nil, fmt.Errorf("convert %s to %s: %w", mediaType, to, err)
	}
	if verr := checkConverted(out); verr != nil {
		return nil, fmt.Errorf("convert %s to %s: the result is not valid: %w", mediaType, to, verr)
	}
	return out, nil
}

// checkConverted decodes a result as its readers will.
func checkConverted(c *Converted) error {
	var err error
	if IsManifest(c.Descriptor.MediaType) {
		_, err = decodeManifest(c.Descriptor.MediaType, c.Data, nil)
	} else {
		_, err = decodeIndex(c.Descriptor.MediaType, c.Data, nil)
	}
	return err
}

func formatOf(mt string) Format {
	if mt == MediaTypeDockerManifest || mt == MediaTypeDockerManifestList {
		return FormatDocker
	}
	return FormatOCI
}

func unchanged(mt string, data []byte) *Converted {
	return &Converted{Data: data, Descriptor: ocispec.Descriptor{MediaType: mt, Digest: digest.FromBytes(data), Size: int64(len(data))}}
}

func done(mt string, v any, c *converter) (*Converted, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return &Converted{
		Data:       data,
		Descriptor: ocispec.Descriptor{MediaType: mt, Digest: digest.FromBytes(data), Size: int64(len(data))},
		Changed:    true,
		Warnings:   c.warnings,
		Children:   c.children,
	}, nil
}

type converter struct {
	strict   bool
	warnings []string
	children []ChildChange
}

// drop records a field the target cannot carry, or refuses it when strict.
func (c *converter) drop(path, what string) error {
	if c.strict {
		return fmt.Errorf("%s: %w: %s", path, errdef.ErrUnsupported, what)
	}
	c.warnings = append(c.warnings, path+": dropped: "+what)
	return nil
}

// dockerDescriptor has the fields of a Docker schema 2 descriptor, in the
// order Docker (and skopeo) write them.
type dockerDescriptor struct {
	MediaType string            `json:"mediaType"`
	Size      int64             `json:"size"`
	Digest    digest.Digest     `json:"digest"`
	URLs      []string          `json:"urls,omitempty"`
	Platform  *ocispec.Platform `json:"platform,omitempty"`
}

type dockerManifest struct {
	SchemaVersion int                `json:"schemaVersion"`
	MediaType     string             `json:"mediaType"`
	Config        dockerDescriptor   `json:"config"`
	Layers        []dockerDescriptor `json:"layers"`
}

type dockerList struct {
	SchemaVersion int                `json:"schemaVersion"`
	MediaType     string             `json:"mediaType"`
	Manifests     []dockerDescriptor `json:"manifests"`
}

// toDockerDescriptor keeps what a Docker descriptor has and drops the rest
// (with a warning each).
func (c *converter) toDockerDescriptor(path string, d ocispec.Descriptor, mt string, keepPlatform bool) (dockerDescriptor, error) {
	out := dockerDescriptor{MediaType: mt, Size: d.Size, Digest: d.Digest, URLs: d.URLs}
	if keepPlatform {
		out.Platform = d.Platform
	} else if d.Platform != nil {
		if err := c.drop(path+".platform", "Docker descriptors carry no platform here"); err != nil {
			return out, err
		}
	}
	if len(d.Annotations) > 0 {
		if err := c.drop(path+".annotations", "Docker descriptors have no annotations ("+keys(d.Annotations)+")"); err != nil {
			return out, err
		}
	}
	if d.ArtifactType != "" {
		if err := c.drop(path+".artifactType", "Docker descriptors have no artifactType"); err != nil {
			return out, err
		}
	}
	if d.Data != nil {
		c.warnings = append(c.warnings, path+".data: dropped: Docker descriptors embed no data (the blob is still needed)")
	}
	return out, nil
}

func keys(m map[string]string) string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return strings.Join(ks, ", ")
}

// dropDocumentFields handles the top-level fields Docker documents lack.
func (c *converter) dropDocumentFields(doc string, annotations map[string]string, subject *ocispec.Descriptor, artifactType string) error {
	if len(annotations) > 0 {
		if err := c.drop(doc+".annotations", "Docker documents have no annotations ("+keys(annotations)+")"); err != nil {
			return err
		}
	}
	if subject != nil {
		if err := c.drop(doc+".subject", "Docker documents have no subject (the link to "+subject.Digest.String()+" is lost)"); err != nil {
			return err
		}
	}
	if artifactType != "" {
		if err := c.drop(doc+".artifactType", "Docker documents have no artifactType ("+artifactType+")"); err != nil {
			return err
		}
	}
	return nil
}

// ociToDockerLayer maps OCI layer media types to Docker's.
var ociToDockerLayer = map[string]string{
	ocispec.MediaTypeImageLayer:                     MediaTypeDockerLayerUncompressed,
	ocispec.MediaTypeImageLayerGzip:                 MediaTypeDockerLayer,
	ocispec.MediaTypeImageLayerNonDistributableGzip: MediaTypeDockerForeignLayer,
}

// dockerToOCILayer maps Docker layer media types to OCI's.
var dockerToOCILayer = map[string]string{
	MediaTypeDockerLayerUncompressed: ocispec.MediaTypeImageLayer,
	MediaTypeDockerLayer:             ocispec.MediaTypeImageLayerGzip,
	MediaTypeDockerForeignLayer:      ocispec.MediaTypeImageLayerNonDistributableGzip,
	MediaTypeDockerLayerZstd:         ocispec.MediaTypeImageLayerZstd,
}

func (c *converter) manifestToDocker(m *ocispec.Manifest) (*Converted, error) {
	switch m.Config.MediaType {
	case ocispec.MediaTypeImageConfig, MediaTypeDockerConfig:
	default:
		return nil, fmt.Errorf("config %s: %w: media type %q is not an image configuration (an artifact cannot be a Docker image)", m.Config.Digest, errdef.ErrUnsupported, m.Config.MediaType)
	}
	if err := c.dropDocumentFields("manifest", m.Annotations, m.Subject, m.ArtifactType); err != nil {
		return nil, err
	}
	cfg, err := c.toDockerDescriptor("manifest.config", m.Config, MediaTypeDockerConfig, false)
	if err != nil {
		return nil, err
	}
	out := dockerManifest{SchemaVersion: 2, MediaType: MediaTypeDockerManifest, Config: cfg, Layers: []dockerDescriptor{}}
	for i, l := range m.Layers {
		path := fmt.Sprintf("manifest.layers[%d]", i)
		mt, ok := ociToDockerLayer[l.MediaType]
		if !ok && isDockerLayer(l.MediaType) {
			mt, ok = l.MediaType, true
		}
		if !ok {
			if l.MediaType == ocispec.MediaTypeImageLayerNonDistributable {
				return nil, fmt.Errorf("%s %s: %w: Docker schema 2 has a foreign layer type for gzip layers only, not %s", path, l.Digest, errdef.ErrUnsupported, l.MediaType)
			}
			if comp, _ := LayerMediaType(l.MediaType); comp == CompressionZstd {
				return nil, fmt.Errorf("%s %s: %w: zstd layers (%s) have no Docker schema 2 media type; recompress the layer with gzip", path, l.Digest, errdef.ErrUnsupported, l.MediaType)
			}
			return nil, fmt.Errorf("%s %s: %w: layer media type %q has no Docker equivalent", path, l.Digest, errdef.ErrUnsupported, l.MediaType)
		}
		d, err := c.toDockerDescriptor(path, l, mt, false)
		if err != nil {
			return nil, err
		}
		out.Layers = append(out.Layers, d)
	}
	return done(MediaTypeDockerManifest, out, c)
}

func (c *converter) manifestToOCI(m *ocispec.Manifest) (*Converted, error) {
	out := *m
	out.MediaType = ocispec.MediaTypeImageManifest
	switch m.Config.MediaType {
	case MediaTypeDockerConfig, ocispec.MediaTypeImageConfig:
		out.Config.MediaType = ocispec.MediaTypeImageConfig
	default:
		return nil, fmt.Errorf("config %s: %w: media type %q has no OCI image equivalent", m.Config.Digest, errdef.ErrUnsupported, m.Config.MediaType)
	}
	out.Layers = make([]ocispec.Descriptor, len(m.Layers))
	for i, l := range m.Layers {
		mt, ok := dockerToOCILayer[l.MediaType]
		if !ok {
			if comp, ok := LayerMediaType(l.MediaType); !ok || comp == CompressionUnknown || isDockerLayer(l.MediaType) {
				return nil, fmt.Errorf("manifest.layers[%d] %s: %w: layer media type %q has no OCI equivalent", i, l.Digest, errdef.ErrUnsupported, l.MediaType)
			}
			mt = l.MediaType
		}
		out.Layers[i] = l
		out.Layers[i].MediaType = mt
	}
	return done(ocispec.MediaTypeImageManifest, out, c)
}

// index converts an index or manifest list; entries not in the target
// format go through child.
func (c *converter) index(idx *ocispec.Index, from, to Format, child func(int, ocispec.Descriptor) (ocispec.Descriptor, error)) (*Converted, error) {
	wantManifest, wantIndex := ocispec.MediaTypeImageManifest, ocispec.MediaTypeImageIndex
	if to == FormatDocker {
		wantManifest, wantIndex = MediaTypeDockerManifest, ""
	}
	changed := from != to
	var entries []ocispec.Descriptor
	var positions []int // of entries in idx.Manifests
	for i, e := range idx.Manifests {
		path := fmt.Sprintf("index.manifests[%d]", i)
		if e.MediaType == wantManifest || (wantIndex != "" && e.MediaType == wantIndex) {
			entries, positions = append(entries, e), append(positions, i)
			continue
		}
		if to == FormatDocker && IsIndex(e.MediaType) {
			return nil, fmt.Errorf("%s %s: %w: a Docker manifest list cannot hold an index", path, e.Digest, errdef.ErrUnsupported)
		}
		if !IsManifest(e.MediaType) && !IsIndex(e.MediaType) {
			return nil, fmt.Errorf("%s %s: %w: media type %q cannot be converted to %s", path, e.Digest, errdef.ErrUnsupported, e.MediaType, to)
		}
		if child == nil {
			return nil, fmt.Errorf("%s %s: %w: the entry is a %s and must be converted too; set ConvertOptions.Child", path, e.Digest, errdef.ErrInvalid, e.MediaType)
		}
		nd, err := child(i, e)
		if errors.Is(err, ErrSkipChild) {
			c.warnings = append(c.warnings, fmt.Sprintf("%s %s: dropped: the entry was skipped", path, e.Digest))
			c.children = append(c.children, ChildChange{Index: i, Old: e})
			changed = true
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", path, e.Digest, err)
		}
		if nd.MediaType != wantManifest && (wantIndex == "" || nd.MediaType != wantIndex) {
			return nil, fmt.Errorf("%s %s: %w: converted entry has media type %q", path, e.Digest, errdef.ErrInvalid, nd.MediaType)
		}
		ne := e
		ne.MediaType, ne.Digest, ne.Size = nd.MediaType, nd.Digest, nd.Size
		c.children = append(c.children, ChildChange{Index: i, Old: e, New: ne})
		entries, positions = append(entries, ne), append(positions, i)
		changed = true
	}
	if !changed {
		return &Converted{}, nil
	}
	if to == FormatOCI {
		out := ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex,
			ArtifactType: idx.ArtifactType, Manifests: entries, Subject: idx.Subject, Annotations: idx.Annotations}
		if out.Manifests == nil {
			out.Manifests = []ocispec.Descriptor{}
		}
		return done(ocispec.MediaTypeImageIndex, out, c)
	}
	if err := c.dropDocumentFields("index", idx.Annotations, idx.Subject, idx.ArtifactType); err != nil {
		return nil, err
	}
	out := dockerList{SchemaVersion: 2, MediaType: MediaTypeDockerManifestList, Manifests: []dockerDescriptor{}}
	for k, e := range entries {
		path := fmt.Sprintf("index.manifests[%d]", positions[k])
		if e.Platform == nil {
			return nil, fmt.Errorf("%s %s: %w: a Docker manifest list entry must name its platform", path, e.Digest, errdef.ErrUnsupported)
		}
		d, err := c.toDockerDescriptor(path, e, e.MediaType, true)
		if err != nil {
			return nil, err
		}
		out.Manifests = append(out.Manifests, d)
	}
	return done(MediaTypeDockerManifestList, out, c)
}
