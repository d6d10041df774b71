// Package dockerarchive reads and writes docker-archive files: the tar that
// `docker save` writes and `docker load` reads, named by
// docker-archive:FILE[:REPO:TAG|:@N] references.
//
// The archive's manifest.json lists its images, each as a config file, the
// layer tars in order and the tags (RepoTags). Both forms docker writes are
// read: the classic one (<id>/layer.tar, <hex>.json, often with symbolic
// links between layer files) and the OCI-layout form of Docker 25 and later
// (blobs/sha256/<hex> beside index.json and oci-layout), as is skopeo's
// (<hex>.tar, <hex>.json). manifest.json is what decides in every case.
//
// # Reading
//
// Open indexes the tar once (nothing is extracted; a gzip or zstd
// compressed archive is decompressed once into an unnamed temporary file)
// and presents each image as a Docker schema 2 manifest
// (application/vnd.docker.distribution.manifest.v2+json) that it builds
// from manifest.json: the config as application/vnd.docker.container.image.v1+json,
// the layers as the tar members are stored — uncompressed ones as
// application/vnd.docker.image.rootfs.diff.tar named by their diff_id,
// gzip (by magic bytes) as ...diff.tar.gzip and zstd as ...diff.tar.zstd,
// named by the digest of the member. The manifest's bytes, and so its
// digest, depend only on the archive's content. Every blob served is
// verified against its digest as it is read.
//
// # Writing
//
// Create writes a new archive in the form skopeo writes and every docker
// load, podman load and skopeo reads: layers as uncompressed tars named
// <diff_id hex>.tar, configs as <hex>.json, manifest.json and repositories.
// Compressed layers are decompressed while they are pushed (tools that read
// docker-archives directly, such as dive, expect plain tars, and skopeo
// decompresses them too); the compressed digest is verified on the way, and
// the diff_id computed is checked against the image's config when the
// image is tagged. The archive appears at its path only when committed, as
// for the oci-archive writer.
package dockerarchive

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/lading-oci/lading/errdef"
	"github.com/lading-oci/lading/internal/archive"
	"github.com/lading-oci/lading/ref"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

const (
	manifestFile     = "manifest.json"
	repositoriesFile = "repositories"
	// MaxManifestBytes caps manifest.json.
	MaxManifestBytes = 4 << 20
)

// ManifestItem is one image in manifest.json.
type ManifestItem struct {
	// Config is the member holding the image's configuration.
	Config string
	// RepoTags are the image's names, such as "busybox:latest" or
	// "example.com/app:v1".
	RepoTags []string
	// Layers are the members holding the layers, in order.
	Layers []string
	// Parent is the image ID of the parent image, if docker knew one.
	Parent string `json:",omitempty"`
	// LayerSources describes foreign layers by diff_id.
	LayerSources map[digest.Digest]ocispec.Descriptor `json:",omitempty"`
}

// ParseManifest parses and checks manifest.json: a JSON array (null and
// anything else are refused, as docker load refuses them) of items whose
// Config and Layers are safe member names and whose RepoTags are image
// references with a tag. Errors match errdef.ErrInvalid,
// errdef.ErrUnsafePath or errdef.ErrTooLarge and name the item and field.
func ParseManifest(data []byte) ([]ManifestItem, error) {
	if len(data) > MaxManifestBytes {
		return nil, fmt.Errorf("%s: %w: %d bytes, the limit is %d", manifestFile, errdef.ErrTooLarge, len(data), MaxManifestBytes)
	}
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 || trimmed[0] != '[' {
		return nil, fmt.Errorf("%s: %w: want a JSON array of images", manifestFile, errdef.ErrInvalid)
	}
	var items []ManifestItem
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	if err := dec.Decode(&items); err != nil {
		return nil, fmt.Errorf("%s: %w: %v", manifestFile, errdef.ErrInvalid, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%s: %w: data after the array", manifestFile, errdef.ErrInvalid)
	}
	for i, it := range items {
		where := fmt.Sprintf("%s[%d]", manifestFile, i)
		if it.Config == "" {
			return nil, fmt.Errorf("%s.Config: %w: missing", where, errdef.ErrInvalid)
		}
		if err := checkMemberName(it.Config); err != nil {
			return nil, fmt.Errorf("%s.Config: %w", where, err)
		}
		for j, l := range it.Layers {
			if err := checkMemberName(l); err != nil {
				return nil, fmt.Errorf("%s.Layers[%d]: %w", where, j, err)
			}
		}
		for j, t := range it.RepoTags {
			if _, err := ParseRepoTag(t); err != nil {
				return nil, fmt.Errorf("%s.RepoTags[%d]: %w", where, j, err)
			}
		}
	}
	return items, nil
}

func checkMemberName(name string) error {
	c, err := archive.CleanName(name)
	if err != nil {
		return err
	}
	if c == "." {
		return fmt.Errorf("member %q: %w: names the archive's root", name, errdef.ErrInvalid)
	}
	return nil
}

// ParseRepoTag parses an image name with a tag ("busybox:1.36",
// "example.com/app:v1") as docker load does, normalising it
// ("docker.io/library/busybox:1.36"). A name without a tag, or with a
// digest, is refused with errdef.ErrInvalid.
func ParseRepoTag(s string) (ref.Reference, error) {
	if strings.Contains(s, "://") {
		return ref.Reference{}, fmt.Errorf("repo tag %q: %w: not an image name", s, errdef.ErrInvalid)
	}
	r, err := ref.Parse(s)
	if err != nil {
		return ref.Reference{}, fmt.Errorf("repo tag %q: %w", s, err)
	}
	if r.Scheme() != ref.SchemeRegistry || r.Digest() != "" {
		return ref.Reference{}, fmt.Errorf("repo tag %q: %w: want NAME:TAG", s, errdef.ErrInvalid)
	}
	name := s
	if i := strings.LastIndexByte(s, '/'); i >= 0 {
		name = s[i+1:]
	}
	if !strings.Contains(name, ":") {
		return ref.Reference{}, fmt.Errorf("repo tag %q: %w: no tag", s, errdef.ErrInvalid)
	}
	return r, nil
}

// fullName is the normalised form of a repo tag: registry/repository:tag.
func fullName(r ref.Reference) string {
	return r.Name() + ":" + r.Tag()
}

// familiarName is the short form docker writes: without docker.io/ and
// library/ for Docker Hub images.
func familiarName(r ref.Reference) string {
	name := r.Name()
	if r.Registry() == ref.DefaultRegistry {
		name = strings.TrimPrefix(r.Repository(), "library/")
		if strings.Contains(name, "/") && strings.HasPrefix(r.Repository(), "library/") {
			name = r.Repository()
		}
	}
	return name + ":" + r.Tag()
}
