package image

import (
	"encoding/json"
	"fmt"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/lading-oci/lading/errdef"
)

// Document names used in error messages.
const (
	docManifest   = "manifest"
	docIndex      = "index"
	docConfig     = "config"
	docLayout     = "oci-layout"
	docDescriptor = "descriptor"
	docEmpty      = "empty"
)

// DecodeOption changes how DecodeManifest, DecodeIndex, DecodeConfig and
// DecodeDescriptor treat a document.
type DecodeOption func(*checker)

// Strict gives the specification's verdict, as Validate does: rules the
// specification states as SHOULD, and the values of annotations and of
// fields lading does not act on (creation times, Env entries, ports), are
// errors. Without it a decode tolerates them, so images that other tools
// write can be read; only what breaks integrity or safety stops it.
func Strict() DecodeOption {
	return func(c *checker) { c.strict = true }
}

// Warnings appends to *w what a (non-strict) decode tolerated, so a reader
// can report it.
func Warnings(w *ValidationErrors) DecodeOption {
	return func(c *checker) { c.warnOut = w }
}

func newChecker(doc string, opts []DecodeOption) *checker {
	c := &checker{doc: doc}
	for _, o := range opts {
		o(c)
	}
	return c
}

// parse applies the size cap and parses data into a tree. A problem is
// returned as the error of c.
func parse(c *checker, data []byte) (*object, error) {
	if len(data) > MaxDocumentBytes {
		return nil, fmt.Errorf("%s: %w: document is %d bytes, the limit is %d", c.doc, errdef.ErrTooLarge, len(data), MaxDocumentBytes)
	}
	o, perr := parseDocument(data)
	if perr != nil {
		c.invalid(perr.path, "%s", perr.msg)
		return nil, c.err()
	}
	return o, nil
}

// DecodeManifest parses and validates an image manifest, OCI or Docker
// schema 2; the document's mediaType field decides which, and a document
// without one is held to the OCI rules. Keys must match the fields exactly: a
// key that differs from a field only in case is refused, so every reader of
// the document sees the same references.
//
// A decode tolerates what the specification states as SHOULD and the values
// of fields lading does not act on (annotations, creation times, Env
// entries, ports; see Strict and Warnings), so images other tools write can
// be read. A schema 1 manifest matches errdef.ErrUnsupported, input over
// MaxDocumentBytes errdef.ErrTooLarge, and any other broken rule
// errdef.ErrInvalid; rule problems come as ValidationErrors, all of them at
// once.
func DecodeManifest(data []byte, opts ...DecodeOption) (*ocispec.Manifest, error) {
	return decodeManifest("", data, opts)
}

func decodeManifest(want string, data []byte, opts []DecodeOption) (*ocispec.Manifest, error) {
	c := newChecker(docManifest, opts)
	o, err := parse(c, data)
	if err != nil {
		return nil, err
	}
	m := validateManifest(c, o, want)
	if err := c.err(); err != nil {
		return nil, err
	}
	return m, nil
}

// DecodeIndex parses and validates an image index or a Docker manifest list; the document's mediaType field decides which, and a document
// without one is held to the OCI rules. Errors are as for DecodeManifest.
func DecodeIndex(data []byte, opts ...DecodeOption) (*ocispec.Index, error) {
	return decodeIndex("", data, opts)
}

func decodeIndex(want string, data []byte, opts []DecodeOption) (*ocispec.Index, error) {
	c := newChecker(docIndex, opts)
	o, err := parse(c, data)
	if err != nil {
		return nil, err
	}
	idx := validateIndex(c, o, want)
	if err := c.err(); err != nil {
		return nil, err
	}
	return idx, nil
}

// DecodeConfig parses and validates an image configuration, OCI or Docker
// (the two share one format), tolerating what DecodeManifest tolerates. Because the Docker format omits
// rootfs.diff_ids for an image without layers, DecodeConfig accepts that
// omission; Validate with ocispec.MediaTypeImageConfig does not. Any OPTIONAL
// field may be null, which means absent. Errors are as for DecodeManifest.
func DecodeConfig(data []byte, opts ...DecodeOption) (*ocispec.Image, error) {
	return decodeConfig(false, data, opts)
}

func decodeConfig(requireDiffIDs bool, data []byte, opts []DecodeOption) (*ocispec.Image, error) {
	c := newChecker(docConfig, opts)
	c.nullIsAbsent = true
	o, err := parse(c, data)
	if err != nil {
		return nil, err
	}
	img := validateConfig(c, o, requireDiffIDs)
	if err := c.err(); err != nil {
		return nil, err
	}
	return img, nil
}

// DecodeDescriptor parses and validates a standalone descriptor (media type
// application/vnd.oci.descriptor.v1+json).
func DecodeDescriptor(data []byte, opts ...DecodeOption) (ocispec.Descriptor, error) {
	c := newChecker(docDescriptor, opts)
	o, err := parse(c, data)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	d, _ := c.parseDescriptor(o, "")
	if err := c.err(); err != nil {
		return ocispec.Descriptor{}, err
	}
	return d, nil
}

// ValidateLayoutHeader validates the content of an oci-layout file: a JSON
// object whose imageLayoutVersion is "1.0.0". Other fields are allowed.
func ValidateLayoutHeader(data []byte) error {
	c := &checker{doc: docLayout, strict: true}
	o, err := parse(c, data)
	if err != nil {
		return err
	}
	validateLayout(c, o)
	return c.err()
}

func validateLayout(c *checker, o *object) {
	if v, p, ok := c.getString(o, "", "imageLayoutVersion", true); ok && v != ocispec.ImageLayoutVersion {
		c.invalid(p, "must be %q, got %q", ocispec.ImageLayoutVersion, v)
	}
}

// Validate validates a document of the given media type strictly, giving the
// specification's verdict (rules stated as SHOULD are errors too; see
// Strict): an OCI or Docker manifest, index or manifest list, an image
// configuration (OCI or Docker), a descriptor, an oci-layout header, or the
// empty JSON blob `{}`.
//
// With mediaType "", the document decides: its mediaType field if it has one,
// otherwise its shape ("digest" and "size" without "schemaVersion" mean a
// descriptor, "manifests" an index, "config" and "layers" a manifest,
// "rootfs" a configuration, "imageLayoutVersion" an oci-layout header). A configuration recognised by shape is held to the rules shared by
// the OCI and Docker formats, as in DecodeConfig.
//
// A digest of an algorithm lading does not know is valid when it matches the
// digest grammar (descriptor.md says implementations SHOULD allow it);
// fetching or verifying such content is what lading refuses, with
// errdef.ErrUnsupported. A media type lading cannot validate, or a schema 1
// manifest, matches errdef.ErrUnsupported. Broken rules come as ValidationErrors matching
// errdef.ErrInvalid.
//
// Unknown fields are ignored, as the specification requires, except that a
// manifest may not carry "manifests" and an index may not carry "config" or
// "layers", which would make the document ambiguous. Duplicate keys are
// refused everywhere: JSON parsers disagree on which value wins.
func Validate(mediaType string, data []byte) error {
	switch {
	case mediaType == "":
		return validateSniffed(data)
	case IsManifest(mediaType):
		_, err := decodeManifest(mediaType, data, strict)
		return err
	case IsIndex(mediaType):
		_, err := decodeIndex(mediaType, data, strict)
		return err
	case mediaType == ocispec.MediaTypeImageConfig:
		_, err := decodeConfig(true, data, strict)
		return err
	case mediaType == MediaTypeDockerConfig:
		_, err := decodeConfig(false, data, strict)
		return err
	case mediaType == ocispec.MediaTypeDescriptor:
		_, err := DecodeDescriptor(data, strict...)
		return err
	case mediaType == ocispec.MediaTypeLayoutHeader:
		return ValidateLayoutHeader(data)
	case mediaType == ocispec.MediaTypeEmptyJSON:
		return validateEmpty(data)
	case IsSchema1(mediaType):
		return fmt.Errorf("%s: %w: Docker image manifest schema 1 is not supported; convert the image to schema 2 or OCI", mediaType, errdef.ErrUnsupported)
	}
	return fmt.Errorf("validate %s: %w: no rules for this media type", mediaType, errdef.ErrUnsupported)
}

// validateEmpty checks the content of the empty descriptor: the empty JSON
// object.
func validateEmpty(data []byte) error {
	c := &checker{doc: docEmpty, strict: true}
	o, err := parse(c, data)
	if err != nil {
		return err
	}
	if len(o.keys) != 0 {
		c.invalid("", "the content of %s must be the empty object {}", ocispec.MediaTypeEmptyJSON)
	}
	return c.err()
}

// strict is the option list of Validate.
var strict = []DecodeOption{Strict()}

// kind is what a document was recognised as.
type kind int

const (
	kindUnknown kind = iota
	kindManifest
	kindIndex
	kindConfig
	kindLayout
	kindSchema1
	kindDescriptor
)

// sniff recognises a parsed document by its mediaType field, else its shape,
// and returns the media type it implies.
func sniff(o *object) (kind, string) {
	// Manifests and indexes have no top-level digest or size; a descriptor
	// does, and its mediaType names what it points at.
	if o.has("digest") && o.has("size") && !o.has("schemaVersion") {
		return kindDescriptor, ocispec.MediaTypeDescriptor
	}
	if mt, ok := o.fields["mediaType"].(string); ok {
		switch {
		case IsManifest(mt):
			return kindManifest, mt
		case IsIndex(mt):
			return kindIndex, mt
		case IsSchema1(mt):
			return kindSchema1, mt
		}
		return kindUnknown, mt
	}
	if n, ok := o.fields["schemaVersion"].(json.Number); ok && n == "1" {
		return kindSchema1, MediaTypeDockerSchema1
	}
	switch {
	case o.has("manifests"):
		return kindIndex, ocispec.MediaTypeImageIndex
	case o.has("config") && o.has("layers"):
		return kindManifest, ocispec.MediaTypeImageManifest
	case o.has("rootfs"):
		return kindConfig, ocispec.MediaTypeImageConfig
	case o.has("imageLayoutVersion"):
		return kindLayout, ocispec.MediaTypeLayoutHeader
	}
	return kindUnknown, ""
}

func validateSniffed(data []byte) error {
	c := &checker{doc: "document", strict: true}
	o, err := parse(c, data)
	if err != nil {
		return err
	}
	k, mt := sniff(o)
	switch k {
	case kindManifest:
		c.doc = docManifest
		validateManifest(c, o, "")
	case kindIndex:
		c.doc = docIndex
		validateIndex(c, o, "")
	case kindConfig:
		c.doc, c.nullIsAbsent = docConfig, true
		validateConfig(c, o, false)
	case kindLayout:
		c.doc = docLayout
		validateLayout(c, o)
	case kindDescriptor:
		c.doc = docDescriptor
		c.parseDescriptor(o, "")
	case kindSchema1:
		c.unsupported("", "Docker image manifest schema 1 is not supported; convert the image to schema 2 or OCI")
	default:
		if mt != "" {
			c.unsupported("mediaType", "no rules for media type %q", mt)
		} else {
			c.invalid("", "cannot tell what the document is: no mediaType field and none of manifests, config and layers, rootfs, imageLayoutVersion")
		}
	}
	return c.err()
}

// MediaTypeOf returns the media type data declares in its mediaType field or,
// failing that, the one its shape implies (see Validate); "" when it is not a
// JSON object of a recognisable kind. It does not validate the document.
func MediaTypeOf(data []byte) string {
	if len(data) > MaxDocumentBytes {
		return ""
	}
	o, perr := parseDocument(data)
	if perr != nil {
		return ""
	}
	_, mt := sniff(o)
	return mt
}
