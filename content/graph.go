package content

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/lading-oci/lading/errdef"
	"github.com/lading-oci/lading/image"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// ErrSkip, returned by a WalkFunc, stops the walk from descending into the
// children of the descriptor it was called with.
var ErrSkip = errors.New("skip descriptor")

// graphDoc has the fields of a manifest or an index that point at other blobs.
type graphDoc struct {
	Config    *ocispec.Descriptor  `json:"config,omitempty"`
	Layers    []ocispec.Descriptor `json:"layers,omitempty"`
	Manifests []ocispec.Descriptor `json:"manifests,omitempty"`
	Subject   *ocispec.Descriptor  `json:"subject,omitempty"`
}

// Successors returns the descriptors that desc points at: the config, layers
// and subject of a manifest; the manifests and subject of an index; nothing
// for any other media type. Metadata is read with ReadAll, so it is verified
// and capped.
func Successors(ctx context.Context, f Fetcher, desc ocispec.Descriptor) ([]ocispec.Descriptor, error) {
	if !image.IsManifest(desc.MediaType) && !image.IsIndex(desc.MediaType) {
		return nil, nil
	}
	data, err := ReadAll(ctx, f, desc, 0)
	if err != nil {
		return nil, err
	}
	return SuccessorsOf(desc, data)
}

// SuccessorsOf is Successors for a document already in memory.
func SuccessorsOf(desc ocispec.Descriptor, data []byte) ([]ocispec.Descriptor, error) {
	var doc graphDoc
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%s %s: %w: %v", desc.MediaType, desc.Digest, errdef.ErrInvalid, err)
	}
	var out []ocispec.Descriptor
	switch {
	case image.IsManifest(desc.MediaType):
		if doc.Config != nil {
			out = append(out, *doc.Config)
		}
		out = append(out, doc.Layers...)
	case image.IsIndex(desc.MediaType):
		out = append(out, doc.Manifests...)
	}
	if doc.Subject != nil {
		out = append(out, *doc.Subject)
	}
	return out, nil
}

// WalkFunc is called once for each descriptor a WalkGraph reaches. Returning
// ErrSkip keeps the walk from descending into desc's successors; any other
// error stops the walk.
type WalkFunc func(ctx context.Context, desc ocispec.Descriptor) error

// WalkGraph visits roots and everything reachable from them (depth first, each
// digest once), calling fn before reading a descriptor's successors. A
// successor that cannot be fetched stops the walk with that error unless fn
// returned ErrSkip for it.
func WalkGraph(ctx context.Context, f Fetcher, roots []ocispec.Descriptor, fn WalkFunc) error {
	seen := make(map[digest.Digest]bool)
	var visit func(desc ocispec.Descriptor) error
	visit = func(desc ocispec.Descriptor) error {
		if seen[desc.Digest] {
			return nil
		}
		seen[desc.Digest] = true
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(ctx, desc); err != nil {
			if errors.Is(err, ErrSkip) {
				return nil
			}
			return err
		}
		children, err := Successors(ctx, f, desc)
		if err != nil {
			return err
		}
		for _, c := range children {
			if err := visit(c); err != nil {
				return err
			}
		}
		return nil
	}
	for _, r := range roots {
		if err := visit(r); err != nil {
			return err
		}
	}
	return nil
}
