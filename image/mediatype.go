//lint:file-ignore SA1019 the deprecated non-distributable layer types are still read

package image

import (
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Docker media types, read everywhere lading reads images.
const (
	MediaTypeDockerManifest     = "application/vnd.docker.distribution.manifest.v2+json"
	MediaTypeDockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
	MediaTypeDockerConfig       = "application/vnd.docker.container.image.v1+json"
	MediaTypeDockerLayer        = "application/vnd.docker.image.rootfs.diff.tar.gzip"
	MediaTypeDockerForeignLayer = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
	MediaTypeDockerLayerZstd    = "application/vnd.docker.image.rootfs.diff.tar.zstd"
	// MediaTypeDockerLayerUncompressed is an uncompressed Docker layer, rare
	// but defined by the Docker schema 2 format.
	MediaTypeDockerLayerUncompressed = "application/vnd.docker.image.rootfs.diff.tar"
	MediaTypeDockerSchema1           = "application/vnd.docker.distribution.manifest.v1+json"
	MediaTypeDockerSchema1Signed     = "application/vnd.docker.distribution.manifest.v1+prettyjws"
	MediaTypeDockerPluginConfig      = "application/vnd.docker.plugin.v1+json"
)

// IsManifest reports whether mt is an image manifest media type (OCI or Docker schema 2).
func IsManifest(mt string) bool {
	return mt == ocispec.MediaTypeImageManifest || mt == MediaTypeDockerManifest
}

// IsIndex reports whether mt is an index media type (OCI index or Docker manifest list).
func IsIndex(mt string) bool {
	return mt == ocispec.MediaTypeImageIndex || mt == MediaTypeDockerManifestList
}

// IsSchema1 reports whether mt is a Docker schema 1 manifest, which lading refuses.
func IsSchema1(mt string) bool {
	return mt == MediaTypeDockerSchema1 || mt == MediaTypeDockerSchema1Signed
}

// IsConfig reports whether mt is an image configuration media type.
func IsConfig(mt string) bool {
	return mt == ocispec.MediaTypeImageConfig || mt == MediaTypeDockerConfig
}

// LayerCompression names how a layer blob is compressed.
type LayerCompression int

// Layer compressions.
const (
	CompressionUnknown LayerCompression = iota
	CompressionNone
	CompressionGzip
	CompressionZstd
)

// String returns "none", "gzip", "zstd" or "unknown".
func (c LayerCompression) String() string {
	switch c {
	case CompressionNone:
		return "none"
	case CompressionGzip:
		return "gzip"
	case CompressionZstd:
		return "zstd"
	}
	return "unknown"
}

// LayerMediaType reports whether mt is a filesystem layer media type and, if
// so, its compression. Docker and non-distributable layer types are included.
func LayerMediaType(mt string) (LayerCompression, bool) {
	switch mt {
	case ocispec.MediaTypeImageLayer, ocispec.MediaTypeImageLayerNonDistributable,
		MediaTypeDockerLayerUncompressed:
		return CompressionNone, true
	case ocispec.MediaTypeImageLayerGzip, ocispec.MediaTypeImageLayerNonDistributableGzip,
		MediaTypeDockerLayer, MediaTypeDockerForeignLayer:
		return CompressionGzip, true
	case ocispec.MediaTypeImageLayerZstd, ocispec.MediaTypeImageLayerNonDistributableZstd,
		MediaTypeDockerLayerZstd:
		return CompressionZstd, true
	}
	return CompressionUnknown, false
}

// IsLayer reports whether mt is a filesystem layer media type.
func IsLayer(mt string) bool {
	_, ok := LayerMediaType(mt)
	return ok
}
