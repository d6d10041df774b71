// Package image is lading's model of OCI and Docker images: it parses and
// strictly validates manifests, indexes, configurations, descriptors and
// oci-layout headers, classifies media types, and parses and matches
// platforms. The types are image-spec's (specs-go/v1); this package only
// decides whether a document is acceptable.
//
// # Validation
//
// Rules are written by hand from the image specification and its JSON
// schemas: required fields, JSON types (a size of "12" is refused, as is 12.0),
// schemaVersion 2, RFC 6838 media types, digests per algorithm, RFC 3986 URLs,
// base64 embedded data that must match size and digest, the empty descriptor,
// platforms, artifact manifests, and the image configuration's rootfs, Env,
// ExposedPorts, Volumes, history and RFC 3339 times. Docker schema 2
// manifests and manifest lists are checked by their own rules; schema 1 is
// refused with errdef.ErrUnsupported.
//
// Every problem in a document is reported, not only the first, as a
// ValidationErrors whose entries name the document, the JSON path of the
// field and the rule broken:
//
//	manifest.layers[2].digest: invalid sha256 digest "sha256:abc": encoded part must be 64 lowercase hexadecimal characters
//
// Unknown fields are ignored, as the specification requires. Duplicate keys
// are refused, since parsers disagree on which value wins, and so are a
// "manifests" field in a manifest and "config" or "layers" in an index, which
// would make the document ambiguous. Decoded structs are filled from keys that
// match exactly; encoding/json's case-insensitive matching is not used.
//
// Digests of algorithms other than sha256 and sha512 are refused with
// errdef.ErrUnsupported (the specification lets implementations accept them,
// but lading could not verify the content they name). Documents larger than
// MaxDocumentBytes are refused with errdef.ErrTooLarge before parsing.
package image
