// Package mutate makes and edits images in a store, eagerly: each function
// reads what it needs, writes every new blob to the store before it
// returns, and hands back the new manifest's descriptor. Errors surface at
// the call that caused them.
//
// It builds images from directories (Build), appends ready layer files
// (Append), commits a changed root filesystem as a layer with whiteouts
// (Commit), squashes layers (Flatten), edits configuration (Mutate), and
// unpacks an image's root filesystem into a directory (Unpack).
package mutate

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/lading-oci/lading/content"
	"github.com/lading-oci/lading/errdef"
	"github.com/lading-oci/lading/image"
	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Draft is an image being edited in memory: a manifest and a config whose
// layers are already in the store. Write stores it.
type Draft struct {
	Manifest   ocispec.Manifest
	ConfigFile ocispec.Image
}

// New starts an empty image (no layers) for platform.
func New(platform ocispec.Platform) *Draft {
	return &Draft{
		Manifest: ocispec.Manifest{
			Versioned: specs.Versioned{SchemaVersion: 2},
			MediaType: ocispec.MediaTypeImageManifest,
			Layers:    []ocispec.Descriptor{},
		},
		ConfigFile: ocispec.Image{
			Platform: ocispec.Platform{
				Architecture: platform.Architecture,
				OS:           platform.OS,
				OSVersion:    platform.OSVersion,
				OSFeatures:   platform.OSFeatures,
				Variant:      platform.Variant,
			},
			RootFS: ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{}},
		},
	}
}

// From starts an edit of an image read from a store. Docker schema 2 media
// types are converted to their OCI equivalents (the blobs are unchanged),
// since the result is an OCI manifest. The draft is built from the manifest
// and config as the image package decoded them, so it names exactly the
// blobs every other reader of the image sees. A nil image is an error
// matching errdef.ErrInvalid.
func From(img *content.LoadedImage) (*Draft, error) {
	if img == nil || img.Manifest == nil || img.ConfigFile == nil {
		return nil, fmt.Errorf("mutate: %w: no base image (a nil or unloaded LoadedImage)", errdef.ErrInvalid)
	}
	var out Draft
	// Deep copies keep the source untouched. They go through the decoded
	// structs, which hold only the fields the image package read.
	if err := deepCopy(&out.Manifest, img.Manifest); err != nil {
		return nil, fmt.Errorf("manifest %s: %w", img.Desc.Digest, err)
	}
	if err := deepCopy(&out.ConfigFile, img.ConfigFile); err != nil {
		return nil, fmt.Errorf("config %s: %w", img.Manifest.Config.Digest, err)
	}
	out.Manifest.MediaType = ocispec.MediaTypeImageManifest
	out.Manifest.Config.MediaType = ocispec.MediaTypeImageConfig
	out.Manifest.Subject = nil
	for i, l := range out.Manifest.Layers {
		out.Manifest.Layers[i].MediaType = ociLayerType(l.MediaType)
	}
	if out.Manifest.Layers == nil {
		out.Manifest.Layers = []ocispec.Descriptor{}
	}
	if out.ConfigFile.RootFS.DiffIDs == nil {
		out.ConfigFile.RootFS.DiffIDs = []digest.Digest{}
	}
	return &out, nil
}

// deepCopy copies src into dst through JSON; both are image-spec structs.
func deepCopy(dst, src any) error {
	data, err := json.Marshal(src)
	if err != nil {
		return err
	}
	return json.Unmarshal(data, dst)
}

// ociLayerType maps Docker layer media types to OCI ones. Foreign layers keep
// their Docker type: the OCI equivalent is deprecated.
func ociLayerType(mt string) string {
	switch mt {
	case image.MediaTypeDockerLayer:
		return ocispec.MediaTypeImageLayerGzip
	case image.MediaTypeDockerLayerZstd:
		return ocispec.MediaTypeImageLayerZstd
	}
	return mt
}

// AddLayer appends a layer already in the store, with its diff_id and a
// history entry.
func (m *Draft) AddLayer(desc ocispec.Descriptor, diffID digest.Digest, h ocispec.History) {
	m.Manifest.Layers = append(m.Manifest.Layers, desc)
	m.ConfigFile.RootFS.DiffIDs = append(m.ConfigFile.RootFS.DiffIDs, diffID)
	m.ConfigFile.History = append(m.ConfigFile.History, h)
}

// Write stores the config and the manifest and returns the manifest's
// descriptor, carrying the config's platform.
func Write(ctx context.Context, dst content.Pusher, m *Draft) (ocispec.Descriptor, error) {
	cfg, err := json.Marshal(m.ConfigFile)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	// What is written is checked as every reader will read it. Warnings
	// (an image without layers, an annotation value inherited from a base
	// another tool wrote) do not stop a write, as they do not stop a read.
	if _, err := image.DecodeConfig(cfg); err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("new config: %w", err)
	}
	cdesc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: digest.FromBytes(cfg), Size: int64(len(cfg))}
	if err := dst.Push(ctx, cdesc, strings.NewReader(string(cfg))); err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("store config: %w", err)
	}
	m.Manifest.Config = cdesc
	if len(m.Manifest.Annotations) == 0 {
		m.Manifest.Annotations = nil
	}
	man, err := json.Marshal(m.Manifest)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	if _, err := image.DecodeManifest(man); err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("new manifest: %w", err)
	}
	mdesc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromBytes(man), Size: int64(len(man))}
	if err := dst.Push(ctx, mdesc, strings.NewReader(string(man))); err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("store manifest: %w", err)
	}
	p := m.ConfigFile.Platform
	mdesc.Platform = &ocispec.Platform{Architecture: p.Architecture, OS: p.OS, OSVersion: p.OSVersion, OSFeatures: p.OSFeatures, Variant: p.Variant}
	return mdesc, nil
}

// ConfigChanges are edits to an image's configuration and manifest
// annotations. Zero fields change nothing.
type ConfigChanges struct {
	// Entrypoint and Cmd replace the current values when non-nil; an empty,
	// non-nil slice clears them.
	Entrypoint []string
	Cmd        []string
	// Env entries KEY=VALUE set KEY, replacing an earlier value.
	Env []string
	// WorkingDir, User, StopSignal and Author replace their fields when non-nil.
	WorkingDir *string
	User       *string
	StopSignal *string
	Author     *string
	// ExposedPorts ("8080/tcp", "53/udp"; a bare port means tcp) and Volumes
	// are added.
	ExposedPorts []string
	Volumes      []string
	// Labels are set on the config; Annotations on the manifest.
	Labels      map[string]string
	Annotations map[string]string
	// RemoveEnv names variables to unset (KEY, or KEY=VALUE whose KEY is
	// taken); RemoveLabels, RemoveAnnotations, RemoveExposedPorts and
	// RemoveVolumes name entries to delete. Removals are applied before
	// additions, so a change can replace an entry. Naming an entry that is
	// not there is not an error.
	RemoveEnv          []string
	RemoveLabels       []string
	RemoveAnnotations  []string
	RemoveExposedPorts []string
	RemoveVolumes      []string
	// Platform replaces os/architecture/variant when non-nil.
	Platform *ocispec.Platform
	// Created replaces the creation time when non-nil.
	Created *time.Time
}

// Apply makes the changes to m after checking them; an invalid change
// (a malformed Env entry or port) is an error matching errdef.ErrInvalid and
// leaves m untouched.
func (c ConfigChanges) Apply(m *Draft) error {
	for _, e := range c.Env {
		if k, _, ok := strings.Cut(e, "="); !ok || k == "" {
			return fmt.Errorf("env %q: %w: want KEY=VALUE", e, errdef.ErrInvalid)
		}
	}
	ports := make([]string, 0, len(c.ExposedPorts))
	for _, p := range c.ExposedPorts {
		np, err := normalizePort(p)
		if err != nil {
			return err
		}
		ports = append(ports, np)
	}
	for _, v := range c.Volumes {
		if v == "" {
			return fmt.Errorf("volume %q: %w: empty path", v, errdef.ErrInvalid)
		}
	}
	removePorts := make([]string, 0, len(c.RemoveExposedPorts))
	for _, p := range c.RemoveExposedPorts {
		np, err := normalizePort(p)
		if err != nil {
			return err
		}
		removePorts = append(removePorts, np)
	}
	cfg := &m.ConfigFile.Config
	for _, e := range c.RemoveEnv {
		k, _, _ := strings.Cut(e, "=")
		cfg.Env = slices.DeleteFunc(slices.Clone(cfg.Env), func(kv string) bool {
			ek, _, _ := strings.Cut(kv, "=")
			return ek == k
		})
	}
	for _, l := range c.RemoveLabels {
		delete(cfg.Labels, l)
	}
	for _, a := range c.RemoveAnnotations {
		delete(m.Manifest.Annotations, a)
	}
	for _, p := range removePorts {
		delete(cfg.ExposedPorts, p)
	}
	for _, v := range c.RemoveVolumes {
		delete(cfg.Volumes, v)
	}
	if c.Entrypoint != nil {
		cfg.Entrypoint = slices.Clone(c.Entrypoint)
	}
	if c.Cmd != nil {
		cfg.Cmd = slices.Clone(c.Cmd)
	}
	for _, e := range c.Env {
		cfg.Env = image.SetEnv(cfg.Env, e)
	}
	if c.WorkingDir != nil {
		cfg.WorkingDir = *c.WorkingDir
	}
	if c.User != nil {
		cfg.User = *c.User
	}
	if c.StopSignal != nil {
		cfg.StopSignal = *c.StopSignal
	}
	if c.Author != nil {
		m.ConfigFile.Author = *c.Author
	}
	for _, p := range ports {
		if cfg.ExposedPorts == nil {
			cfg.ExposedPorts = map[string]struct{}{}
		}
		cfg.ExposedPorts[p] = struct{}{}
	}
	for _, v := range c.Volumes {
		if cfg.Volumes == nil {
			cfg.Volumes = map[string]struct{}{}
		}
		cfg.Volumes[v] = struct{}{}
	}
	if len(c.Labels) > 0 {
		if cfg.Labels == nil {
			cfg.Labels = map[string]string{}
		}
		maps.Copy(cfg.Labels, c.Labels)
	}
	if len(c.Annotations) > 0 {
		if m.Manifest.Annotations == nil {
			m.Manifest.Annotations = map[string]string{}
		}
		maps.Copy(m.Manifest.Annotations, c.Annotations)
	}
	if c.Platform != nil {
		m.ConfigFile.OS = c.Platform.OS
		m.ConfigFile.Architecture = c.Platform.Architecture
		m.ConfigFile.Variant = c.Platform.Variant
		if c.Platform.OSVersion != "" {
			m.ConfigFile.OSVersion = c.Platform.OSVersion
		}
	}
	if c.Created != nil {
		t := c.Created.UTC()
		m.ConfigFile.Created = &t
	}
	return nil
}

func normalizePort(p string) (string, error) {
	port, proto, ok := strings.Cut(p, "/")
	if !ok {
		proto = "tcp"
	}
	proto = strings.ToLower(proto)
	if proto != "tcp" && proto != "udp" && proto != "sctp" {
		return "", fmt.Errorf("port %q: %w: protocol must be tcp, udp or sctp", p, errdef.ErrInvalid)
	}
	var n int
	if _, err := fmt.Sscanf(port, "%d", &n); err != nil || n < 1 || n > 65535 || fmt.Sprint(n) != port {
		return "", fmt.Errorf("port %q: %w: want a number from 1 to 65535", p, errdef.ErrInvalid)
	}
	return port + "/" + proto, nil
}
