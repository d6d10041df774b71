package image

import (
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// validateIndex checks an image index or Docker manifest list tree; want is
// the media type it is validated as, "" to let the document decide.
func validateIndex(c *checker, o *object, want string) *ocispec.Index {
	idx := &ocispec.Index{}
	sv, ok := c.checkSchemaVersion(o)
	idx.SchemaVersion = sv
	if !ok {
		return nil
	}
	fl, mt, ok := c.documentFlavor(o, want, ocispec.MediaTypeImageIndex, MediaTypeDockerManifestList)
	if !ok {
		return nil
	}
	idx.MediaType = mt
	for _, k := range []string{"config", "layers"} {
		if o.has(k) {
			c.invalid(k, "an index must not have a %s field: the document would be ambiguous with a manifest", k)
		}
	}
	if at, ap, present := c.getString(o, "", "artifactType", false); present && c.checkMediaType(ap, at) {
		idx.ArtifactType = at
	}
	if arr, mp, present := c.getArray(o, "", "manifests", true); present {
		idx.Manifests = make([]ocispec.Descriptor, 0, len(arr))
		for i, v := range arr {
			p := joinIndex(mp, i)
			do, ok := v.(*object)
			if !ok {
				c.wrongType(p, "a descriptor object", v)
				continue
			}
			d, f := c.parseDescriptor(do, p)
			idx.Manifests = append(idx.Manifests, d)
			if fl != flavorDocker {
				continue
			}
			if f.mediaType && !IsManifest(d.MediaType) {
				c.invalid(joinKey(p, "mediaType"), "a Docker manifest list may only list image manifests, got %q", d.MediaType)
			}
			if d.Platform == nil && !do.has("platform") {
				c.warn(joinKey(p, "platform"), "required field is missing: Docker manifest list entries must name their platform")
			}
		}
	}
	idx.Subject = c.parseSubject(o)
	idx.Annotations = c.parseAnnotations(o)
	return idx
}
