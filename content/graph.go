package content

import (
	"context"
	"errors"
	"fmt"

	"github.com/lading-oci/lading/image"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// ErrSkip, returned by a WalkFunc, stops the walk from descending into the
// children of the descriptor it was called with.
var ErrSkip = errors.New("skip descriptor")

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
	n, err := DecodeNode(desc, data)
	if err != nil || n == nil {
		return nil, err
	}
	return n.Successors(), nil
}

// Node is a manifest or an index of an image graph, decoded by the image
// package. Every reader of the graph in lading — walks, copies, garbage
// collection, verification, loading an image — goes through DecodeNode, so
// they all see exactly the references the validator sees (keys that differ
// only in case are refused, never read differently).
type Node struct {
	Desc ocispec.Descriptor
	// Exactly one of Manifest and Index is set.
	Manifest *ocispec.Manifest
	Index    *ocispec.Index
	// Warnings are the problems the decode tolerated (see image.Warnings).
	Warnings image.ValidationErrors
}

// DecodeNode decodes data as the manifest or index desc describes. It
// returns nil and no error for any other media type. A document that does
// not decode is an error naming desc and matching errdef.ErrInvalid (or
// errdef.ErrUnsupported, errdef.ErrTooLarge).
func DecodeNode(desc ocispec.Descriptor, data []byte) (*Node, error) {
	n := &Node{Desc: desc}
	var err error
	switch {
	case image.IsManifest(desc.MediaType):
		n.Manifest, err = image.DecodeManifest(data, image.Warnings(&n.Warnings))
	case image.IsIndex(desc.MediaType):
		n.Index, err = image.DecodeIndex(data, image.Warnings(&n.Warnings))
	default:
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", desc.MediaType, desc.Digest, err)
	}
	return n, nil
}

// Successors lists what the node points at: a manifest's config, layers and
// subject, or an index's manifests and subject, in document order.
func (n *Node) Successors() []ocispec.Descriptor {
	var out []ocispec.Descriptor
	var subject *ocispec.Descriptor
	switch {
	case n.Manifest != nil:
		out = make([]ocispec.Descriptor, 0, len(n.Manifest.Layers)+2)
		out = append(out, n.Manifest.Config)
		out = append(out, n.Manifest.Layers...)
		subject = n.Manifest.Subject
	case n.Index != nil:
		out = make([]ocispec.Descriptor, 0, len(n.Index.Manifests)+1)
		out = append(out, n.Index.Manifests...)
		subject = n.Index.Subject
	}
	if subject != nil {
		out = append(out, *subject)
	}
	return out
}

// Subject is the node's subject descriptor, or nil.
func (n *Node) Subject() *ocispec.Descriptor {
	if n.Manifest != nil {
		return n.Manifest.Subject
	}
	if n.Index != nil {
		return n.Index.Subject
	}
	return nil
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
