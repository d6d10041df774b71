package ocilayout

import (
	"bytes"
	"context"
	"sort"

	"github.com/lading-oci/lading/content"
	"github.com/lading-oci/lading/image"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

var _ content.ReferrerLister = (*Store)(nil)

// Referrers lists the stored manifests and indexes whose subject is subject
// (artifactType "" for all), each with its artifactType (a manifest's own,
// else its config's media type) and annotations, sorted by digest. A layout
// has no referrers index: every small stored document is read.
func (s *Store) Referrers(ctx context.Context, subject ocispec.Descriptor, artifactType string) ([]ocispec.Descriptor, error) {
	out := []ocispec.Descriptor{}
	err := s.walkBlobs(ctx, func(b blobFile) error {
		if b.desc.Size > s.maxMetadata || b.desc.Size < 2 {
			return nil
		}
		data, err := readCapped(b.path, s.maxMetadata)
		if err != nil || !bytes.Contains(data, []byte(`"subject"`)) {
			return nil
		}
		desc := ocispec.Descriptor{MediaType: image.MediaTypeOf(data), Digest: b.desc.Digest, Size: b.desc.Size}
		n, err := content.DecodeNode(desc, data)
		if err != nil || n == nil || n.Subject() == nil || n.Subject().Digest != subject.Digest {
			return nil
		}
		switch {
		case n.Manifest != nil:
			desc.ArtifactType = n.Manifest.ArtifactType
			if desc.ArtifactType == "" {
				desc.ArtifactType = n.Manifest.Config.MediaType
			}
			desc.Annotations = n.Manifest.Annotations
		case n.Index != nil:
			desc.ArtifactType = n.Index.ArtifactType
			desc.Annotations = n.Index.Annotations
		}
		if artifactType == "" || desc.ArtifactType == artifactType {
			out = append(out, desc)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Digest < out[j].Digest })
	return out, nil
}
