package image

// THIS FILE IS A PLACEHOLDER: the image helper replaces it with the real
// implementation (same signatures) and deletes it.

import (
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// DecodeManifest parses and strictly validates an image manifest (OCI or Docker schema 2).
func DecodeManifest(data []byte) (*ocispec.Manifest, error) { panic("todo") }

// DecodeIndex parses and strictly validates an index (OCI index or Docker manifest list).
func DecodeIndex(data []byte) (*ocispec.Index, error) { panic("todo") }

// DecodeConfig parses and strictly validates an image configuration.
func DecodeConfig(data []byte) (*ocispec.Image, error) { panic("todo") }

// Validate validates a document of the given media type; "" means the document's own mediaType field decides.
func Validate(mediaType string, data []byte) error { panic("todo") }

// ValidateLayoutHeader validates the content of an oci-layout file.
func ValidateLayoutHeader(data []byte) error { panic("todo") }

// ValidateDescriptor validates one descriptor; path prefixes error messages ("index.manifests[0]").
func ValidateDescriptor(path string, d ocispec.Descriptor) error { panic("todo") }
