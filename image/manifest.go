package image

import (
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// flavor says which family's rules a manifest or index is held to.
type flavor int

const (
	flavorOCI flavor = iota
	flavorDocker
)

// checkSchemaVersion reads schemaVersion, which must be 2. It reports false
// when the document is a schema 1 manifest, whose other fields are not worth
// checking.
func (c *checker) checkSchemaVersion(o *object) (int, bool) {
	v, p, ok := c.getInt(o, "", "schemaVersion", true)
	if !ok {
		return 0, true
	}
	switch v {
	case 2:
		return 2, true
	case 1:
		if c.doc == docIndex {
			break // an index has no schema 1
		}
		c.unsupported(p, "Docker image manifest schema 1 is not supported; convert the image to schema 2 or OCI")
		return 1, false
	}
	c.invalid(p, "must be 2, got %d", v)
	return int(v), true
}

// documentFlavor decides the rules for a manifest or index from the media type
// it is validated as (want, "" when the caller does not know) and its own
// mediaType field. ociType and dockerType are the two media types of the
// document kind. It reports false when the document cannot be checked
// further.
func (c *checker) documentFlavor(o *object, want, ociType, dockerType string) (flavor, string, bool) {
	mt, p, present := c.getString(o, "", "mediaType", false)
	if present && IsSchema1(mt) {
		c.unsupported(p, "Docker image manifest schema 1 (%s) is not supported; convert the image to schema 2 or OCI", mt)
		return 0, mt, false
	}
	fl := flavorOCI
	switch {
	case want == dockerType:
		fl = flavorDocker
	case want == ociType:
	case present && mt == dockerType:
		fl = flavorDocker
	case present && mt != ociType:
		if c.checkMediaType(p, mt) {
			c.invalid(p, "%q is not a %s media type (want %s or %s)", mt, c.doc, ociType, dockerType)
		}
		return fl, mt, true
	}
	wantType := ociType
	if fl == flavorDocker {
		wantType = dockerType
	}
	switch {
	case !present && fl == flavorDocker:
		if !o.has("mediaType") { // a present field of the wrong type was reported already
			c.invalid("mediaType", "required field is missing: Docker documents must carry mediaType %s", dockerType)
		}
	case present && mt != wantType:
		if c.checkMediaType(p, mt) {
			c.invalid(p, "must be %s, got %q", wantType, mt)
		}
	}
	return fl, mt, true
}

// isDockerLayer reports whether mt is a layer media type a Docker schema 2
// manifest may list.
func isDockerLayer(mt string) bool {
	switch mt {
	case MediaTypeDockerLayer, MediaTypeDockerForeignLayer, MediaTypeDockerLayerZstd, MediaTypeDockerLayerUncompressed:
		return true
	}
	return false
}

// notConfig reports whether mt is a known media type that can never describe
// a manifest's config blob.
func notConfig(mt string) bool {
	return IsLayer(mt) || IsManifest(mt) || IsIndex(mt) || IsSchema1(mt) ||
		mt == ocispec.MediaTypeLayoutHeader || mt == ocispec.MediaTypeDescriptor
}

// validateManifest checks an image manifest tree; want is the media type it
// is validated as, "" to let the document decide.
func validateManifest(c *checker, o *object, want string) *ocispec.Manifest {
	m := &ocispec.Manifest{}
	sv, ok := c.checkSchemaVersion(o)
	m.SchemaVersion = sv
	if !ok {
		return nil
	}
	fl, mt, ok := c.documentFlavor(o, want, ocispec.MediaTypeImageManifest, MediaTypeDockerManifest)
	if !ok {
		return nil
	}
	m.MediaType = mt
	if o.has("manifests") {
		c.invalid("manifests", "a manifest must not have a manifests field: the document would be ambiguous with an index")
	}
	artifactType, ap, hasArtifactType := c.getString(o, "", "artifactType", false)
	if hasArtifactType {
		if c.checkMediaType(ap, artifactType) {
			m.ArtifactType = artifactType
		}
	}

	var configOK bool
	if co, cp, present := c.getObject(o, "", "config", true); present {
		var f descriptorFields
		m.Config, f = c.parseDescriptor(co, cp)
		configOK = f.mediaType
		if configOK {
			cmt := m.Config.MediaType
			mp := joinKey(cp, "mediaType")
			switch {
			case fl == flavorDocker && cmt != MediaTypeDockerConfig && cmt != MediaTypeDockerPluginConfig:
				c.invalid(mp, "a Docker manifest's config must be %s, got %q", MediaTypeDockerConfig, cmt)
				configOK = false
			case fl == flavorOCI && notConfig(cmt):
				c.invalid(mp, "%q is not a config media type", cmt)
				configOK = false
			case fl == flavorOCI && cmt == ocispec.MediaTypeEmptyJSON && !hasArtifactType:
				c.warn("artifactType", "required when config.mediaType is %s", ocispec.MediaTypeEmptyJSON)
			}
		}
	}

	if arr, lp, present := c.getArray(o, "", "layers", true); present {
		// manifest.md says layers SHOULD have an entry (the schema's
		// minItems), but tools such as umoci create images without layers:
		// an error when validating, a warning when reading.
		if len(arr) == 0 {
			c.warn(lp, "must have at least one entry (an image without layers)")
		}
		imageConfig := configOK && IsConfig(m.Config.MediaType)
		m.Layers = make([]ocispec.Descriptor, 0, len(arr))
		for i, v := range arr {
			p := joinIndex(lp, i)
			lo, ok := v.(*object)
			if !ok {
				c.wrongType(p, "a descriptor object", v)
				continue
			}
			d, f := c.parseDescriptor(lo, p)
			m.Layers = append(m.Layers, d)
			if !f.mediaType {
				continue
			}
			mp := joinKey(p, "mediaType")
			switch {
			case fl == flavorDocker && !isDockerLayer(d.MediaType):
				c.invalid(mp, "%q is not a Docker layer media type", d.MediaType)
			case fl == flavorOCI && imageConfig && !IsLayer(d.MediaType):
				c.invalid(mp, "%q is not a layer media type, as the image config %s requires", d.MediaType, m.Config.MediaType)
			}
		}
	}

	m.Subject = c.parseSubject(o)
	m.Annotations = c.parseAnnotations(o)
	return m
}

// parseSubject reads the optional subject descriptor, which must point at a
// manifest or an index.
func (c *checker) parseSubject(o *object) *ocispec.Descriptor {
	so, sp, present := c.getObject(o, "", "subject", false)
	if !present {
		return nil
	}
	d, f := c.parseDescriptor(so, sp)
	if f.mediaType && !IsManifest(d.MediaType) && !IsIndex(d.MediaType) {
		c.invalid(joinKey(sp, "mediaType"), "a subject must be a manifest or an index, got %q", d.MediaType)
	}
	return &d
}

// parseAnnotations reads the optional top-level annotations.
func (c *checker) parseAnnotations(o *object) map[string]string {
	a, ap, present := c.getStringMap(o, "", "annotations")
	if present {
		c.checkAnnotations(ap, a)
	}
	return a
}
