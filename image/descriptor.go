package image

import (
	"encoding/base64"
	"fmt"
	"net/url"
	"strings"

	// Register the hashes go-digest verifies embedded data with.
	_ "crypto/sha256"
	_ "crypto/sha512"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/lading-oci/lading/errdef"
)

// EmptyJSONDigest is the digest of the two bytes `{}`, the content of the
// empty descriptor (ocispec.DescriptorEmptyJSON).
const EmptyJSONDigest digest.Digest = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"

// ValidMediaType reports whether mt is a media type as descriptors require:
// RFC 6838 type "/" subtype with restricted-name characters, each part at most
// 127 characters and starting with a letter or digit. Parameters are not
// allowed.
func ValidMediaType(mt string) bool {
	typ, sub, ok := strings.Cut(mt, "/")
	return ok && restrictedName(typ) && restrictedName(sub)
}

// restrictedName matches [A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}.
func restrictedName(s string) bool {
	if len(s) == 0 || len(s) > 127 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case i > 0 && strings.IndexByte("!#$&^_.+-", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// ValidateDigest checks d against the digest grammar of the image
// specification and the encoding rules of its algorithm: sha256 needs 64 and
// sha512 128 lowercase hexadecimal characters. A well-formed digest of
// another algorithm (blake3 included, which lading cannot verify) matches
// errdef.ErrUnsupported; a malformed one matches errdef.ErrInvalid.
func ValidateDigest(d digest.Digest) error {
	if rule, sentinel := digestProblem(string(d), false); rule != "" {
		return &ValidationError{Document: "digest", Rule: rule, Err: sentinel}
	}
	return nil
}

// digestProblem returns "" for a digest lading accepts, else the rule it
// breaks and its category. In a document (inDocument), a digest of an
// algorithm lading does not know is accepted when it matches the grammar:
// descriptor.md says implementations SHOULD allow such digests, and only
// fetching or verifying the content needs the algorithm.
func digestProblem(s string, inDocument bool) (string, error) {
	alg, enc, ok := strings.Cut(s, ":")
	if !ok {
		return fmt.Sprintf("invalid digest %q: want algorithm:encoded", s), errdef.ErrInvalid
	}
	if !validAlgorithm(alg) {
		return fmt.Sprintf("invalid digest %q: algorithm must be lowercase letters and digits, optionally joined by one of +._-", s), errdef.ErrInvalid
	}
	if !validEncoded(enc) {
		return fmt.Sprintf("invalid digest %q: encoded part must be non-empty and use only [a-zA-Z0-9=_-]", s), errdef.ErrInvalid
	}
	var n int
	switch alg {
	case "sha256":
		n = 64
	case "sha512":
		n = 128
	case "blake3":
		if !lowerHex(enc, 64) {
			return fmt.Sprintf("invalid blake3 digest %q: encoded part must be 64 lowercase hexadecimal characters", s), errdef.ErrInvalid
		}
		if inDocument {
			return "", nil
		}
		return fmt.Sprintf("digest %q: blake3 digests are not supported", s), errdef.ErrUnsupported
	default:
		if inDocument {
			return "", nil
		}
		return fmt.Sprintf("digest %q: unsupported digest algorithm %q", s, alg), errdef.ErrUnsupported
	}
	if !lowerHex(enc, n) {
		return fmt.Sprintf("invalid %s digest %q: encoded part must be %d lowercase hexadecimal characters", alg, s, n), errdef.ErrInvalid
	}
	return "", nil
}

// validAlgorithm matches [a-z0-9]+([+._-][a-z0-9]+)*.
func validAlgorithm(s string) bool {
	if s == "" {
		return false
	}
	prevSep := true // a separator may not start the name
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9':
			prevSep = false
		case c == '+' || c == '.' || c == '_' || c == '-':
			if prevSep {
				return false
			}
			prevSep = true
		default:
			return false
		}
	}
	return !prevSep
}

// validEncoded matches [a-zA-Z0-9=_-]+.
func validEncoded(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '=' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

func lowerHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// checkDigest reports a digest problem at p.
func (c *checker) checkDigest(p string, d string) bool {
	if rule, sentinel := digestProblem(d, true); rule != "" {
		c.add(sentinel, p, "%s", rule)
		return false
	}
	return true
}

func (c *checker) checkMediaType(p, mt string) bool {
	if !ValidMediaType(mt) {
		c.invalid(p, "invalid media type %q: want type/subtype per RFC 6838", mt)
		return false
	}
	return true
}

// validURI reports whether s is an absolute URI per RFC 3986: a scheme, a
// colon, and only characters the URI grammar allows, with well-formed
// percent-escapes.
func validURI(s string) bool {
	scheme, _, ok := strings.Cut(s, ":")
	if !ok || scheme == "" {
		return false
	}
	for i := 0; i < len(scheme); i++ {
		c := scheme[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || i > 0 && ('0' <= c && c <= '9' || c == '+' || c == '-' || c == '.')) {
			return false
		}
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("-._~:/?#[]@!$&'()*+,;=", c) >= 0:
		case c == '%':
			if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
				return false
			}
			i += 2
		default:
			return false
		}
	}
	_, err := url.Parse(s)
	return err == nil
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// checkAnnotations applies the rules for the pre-defined keys whose values
// have a defined syntax. Other keys and values are free-form. Annotation
// values are warnings when reading: tools write broken ones (buildah writes
// an empty base digest into every image it builds), and nothing lading does
// depends on them.
func (c *checker) checkAnnotations(p string, m map[string]string) {
	if v, ok := m[ocispec.AnnotationCreated]; ok && !validRFC3339(v) {
		c.warn(joinKey(p, ocispec.AnnotationCreated), "%q is not an RFC 3339 date-time", v)
	}
	if v, ok := m[ocispec.AnnotationBaseImageDigest]; ok {
		if rule, _ := digestProblem(v, true); rule != "" {
			c.warn(joinKey(p, ocispec.AnnotationBaseImageDigest), "%s", rule)
		}
	}
}

// descriptorFields records which fields of a descriptor were well typed, so
// that cross-field rules run only on trustworthy values.
type descriptorFields struct {
	mediaType, digest, size bool
	// platformChecked is set when the platform was checked while parsing.
	platformChecked bool
}

// checkDescriptor applies the rules of a descriptor that do not depend on where
// it appears. ok says which fields passed their type checks; fields that
// break a rule here are cleared from it.
func (c *checker) checkDescriptor(p string, d *ocispec.Descriptor, ok *descriptorFields) {
	if ok.mediaType {
		ok.mediaType = c.checkMediaType(joinKey(p, "mediaType"), d.MediaType)
	}
	if ok.digest {
		ok.digest = c.checkDigest(joinKey(p, "digest"), string(d.Digest))
	}
	if ok.size && d.Size < 0 {
		c.invalid(joinKey(p, "size"), "must not be negative, got %d", d.Size)
		ok.size = false
	}
	for i, u := range d.URLs {
		if !validURI(u) {
			c.warn(joinIndex(joinKey(p, "urls"), i), "%q is not an absolute URI (RFC 3986)", u)
		}
	}
	if d.ArtifactType != "" {
		c.checkMediaType(joinKey(p, "artifactType"), d.ArtifactType)
	}
	c.checkAnnotations(joinKey(p, "annotations"), d.Annotations)
	if d.Platform != nil && !ok.platformChecked {
		c.checkPlatform(joinKey(p, "platform"), d.Platform)
	}
	if d.Data != nil && ok.size && ok.digest && d.Digest.Algorithm().Available() {
		dp := joinKey(p, "data")
		if int64(len(d.Data)) != d.Size {
			c.invalid(dp, "embedded data is %d bytes but size is %d", len(d.Data), d.Size)
		} else if got := d.Digest.Algorithm().FromBytes(d.Data); got != d.Digest {
			c.invalid(dp, "embedded data hashes to %s, not %s", got, d.Digest)
		}
	}
	if ok.mediaType && d.MediaType == ocispec.MediaTypeEmptyJSON {
		if ok.size && d.Size != 2 {
			c.invalid(joinKey(p, "size"), "the empty descriptor (%s) must have size 2, got %d", ocispec.MediaTypeEmptyJSON, d.Size)
		}
		if ok.digest && d.Digest.Algorithm().Available() {
			if want := d.Digest.Algorithm().FromString("{}"); d.Digest != want {
				c.invalid(joinKey(p, "digest"), "the empty descriptor (%s) must have the digest of {}, %s", ocispec.MediaTypeEmptyJSON, want)
			}
		}
	}
}

// checkPlatform applies the platform rules: os and architecture are
// required.
func (c *checker) checkPlatform(p string, pl *ocispec.Platform) {
	if pl.OS == "" {
		c.invalid(joinKey(p, "os"), "must not be empty")
	}
	if pl.Architecture == "" {
		c.invalid(joinKey(p, "architecture"), "must not be empty")
	}
}

// ValidateDescriptor checks one descriptor strictly: a valid media type, a
// digest that matches the grammar (and its algorithm's encoding when lading
// knows the algorithm), a non-negative size, absolute URIs, embedded data
// that matches size and digest, a valid artifactType, and a platform with os
// and architecture. path prefixes the messages ("index.manifests[0]"); ""
// means "descriptor". The error is a ValidationErrors.
func ValidateDescriptor(path string, d ocispec.Descriptor) error {
	if path == "" {
		path = "descriptor"
	}
	c := &checker{doc: path, strict: true}
	ok := descriptorFields{mediaType: true, digest: true, size: true}
	if d.MediaType == "" {
		c.invalid("mediaType", "required field is missing")
		ok.mediaType = false
	}
	if d.Digest == "" {
		c.invalid("digest", "required field is missing")
		ok.digest = false
	}
	c.checkDescriptor("", &d, &ok)
	return c.err()
}

// parseDescriptor reads a descriptor object at p and applies the rules that
// hold wherever a descriptor appears.
func (c *checker) parseDescriptor(o *object, p string) (ocispec.Descriptor, descriptorFields) {
	var d ocispec.Descriptor
	var ok descriptorFields
	d.MediaType, _, ok.mediaType = c.getString(o, p, "mediaType", true)
	var dg string
	dg, _, ok.digest = c.getString(o, p, "digest", true)
	d.Digest = digest.Digest(dg)
	d.Size, _, ok.size = c.getInt(o, p, "size", true)
	d.URLs, _, _ = c.getStrings(o, p, "urls", false)
	d.Annotations, _, _ = c.getStringMap(o, p, "annotations")
	if s, dp, present := c.getString(o, p, "data", false); present {
		if strings.ContainsAny(s, "\r\n") {
			c.invalid(dp, "must be standard base64 without line breaks")
		} else if b, err := base64.StdEncoding.Strict().DecodeString(s); err != nil {
			c.invalid(dp, "must be standard padded base64: %v", err)
		} else {
			d.Data = b
		}
	}
	if at, ap, present := c.getString(o, p, "artifactType", false); present {
		if at == "" {
			c.invalid(ap, "must not be empty when present")
		}
		d.ArtifactType = at
	}
	if po, pp, present := c.getObject(o, p, "platform", false); present {
		d.Platform = c.parsePlatform(po, pp)
		ok.platformChecked = true
	}
	c.checkDescriptor(p, &d, &ok)
	return d, ok
}

// parsePlatform reads and checks a platform object.
func (c *checker) parsePlatform(o *object, p string) *ocispec.Platform {
	var pl ocispec.Platform
	var ap, op string
	var osOK, archOK bool
	pl.Architecture, ap, archOK = c.getString(o, p, "architecture", true)
	pl.OS, op, osOK = c.getString(o, p, "os", true)
	pl.OSVersion, _, _ = c.getString(o, p, "os.version", false)
	pl.OSFeatures, _, _ = c.getStrings(o, p, "os.features", false)
	pl.Variant, _, _ = c.getString(o, p, "variant", false)
	// features is reserved; its type is still checked.
	c.getStrings(o, p, "features", false)
	if archOK && pl.Architecture == "" {
		c.invalid(ap, "must not be empty")
	}
	if osOK && pl.OS == "" {
		c.invalid(op, "must not be empty")
	}
	return &pl
}
