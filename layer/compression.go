package layer

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"runtime"

	"github.com/klauspost/compress/zstd"
	"github.com/klauspost/pgzip"
	"github.com/lading-oci/lading/errdef"
	"github.com/lading-oci/lading/image"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Compression is the compression of a layer blob.
type Compression = image.LayerCompression

// The compressions lading reads and writes.
const (
	None = image.CompressionNone
	Gzip = image.CompressionGzip
	Zstd = image.CompressionZstd
)

var (
	gzipMagic = []byte{0x1f, 0x8b}
	zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}
)

// ParseCompression parses "gzip", "zstd" or "none" (also "uncompressed").
func ParseCompression(s string) (Compression, error) {
	switch s {
	case "gzip", "gz":
		return Gzip, nil
	case "zstd", "zst":
		return Zstd, nil
	case "none", "uncompressed", "":
		return None, nil
	}
	return image.CompressionUnknown, fmt.Errorf("compression %q: %w: want gzip, zstd or none", s, errdef.ErrUnsupported)
}

// MediaType is the OCI layer media type for a compression.
func MediaType(c Compression) string {
	switch c {
	case Gzip:
		return ocispec.MediaTypeImageLayerGzip
	case Zstd:
		return ocispec.MediaTypeImageLayerZstd
	}
	return ocispec.MediaTypeImageLayer
}

// Detect reports the compression of the stream behind br from its magic bytes
// without consuming them. Anything that is neither gzip nor zstd is None.
func Detect(br *bufio.Reader) Compression {
	head, _ := br.Peek(4)
	switch {
	case bytes.HasPrefix(head, gzipMagic):
		return Gzip
	case bytes.HasPrefix(head, zstdMagic):
		return Zstd
	}
	return None
}

// Decompress returns the uncompressed stream of a layer blob, detecting
// gzip or zstd by magic bytes. Closing it releases the decompressor, not r.
// Memory stays bounded whatever the input: zstd windows are capped.
func Decompress(r io.Reader) (io.ReadCloser, Compression, error) {
	br := bufio.NewReaderSize(r, 1<<16)
	c := Detect(br)
	switch c {
	case Gzip:
		zr, err := pgzip.NewReaderN(br, 1<<20, 4)
		if err != nil {
			return nil, c, fmt.Errorf("gzip layer: %w: %v", errdef.ErrInvalid, err)
		}
		return zr, c, nil
	case Zstd:
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(64<<20), zstd.WithDecoderLowmem(false))
		if err != nil {
			return nil, c, fmt.Errorf("zstd layer: %w: %v", errdef.ErrInvalid, err)
		}
		return zstdReadCloser{zr}, c, nil
	}
	return io.NopCloser(br), None, nil
}

type zstdReadCloser struct{ *zstd.Decoder }

func (z zstdReadCloser) Close() error { z.Decoder.Close(); return nil }

// Compress returns a writer that compresses into w with c. Gzip is
// compressed in parallel blocks on every core and is standard gzip that any
// reader accepts. Closing the writer flushes it, not w.
func Compress(w io.Writer, c Compression) (io.WriteCloser, error) {
	switch c {
	case Gzip:
		zw, err := pgzip.NewWriterLevel(w, pgzip.DefaultCompression)
		if err != nil {
			return nil, err
		}
		if err := zw.SetConcurrency(1<<20, 2*runtime.GOMAXPROCS(0)); err != nil {
			return nil, err
		}
		return zw, nil
	case Zstd:
		return zstd.NewWriter(w, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderConcurrency(runtime.GOMAXPROCS(0)))
	case None:
		return nopWriteCloser{w}, nil
	}
	return nil, fmt.Errorf("compression %v: %w", c, errdef.ErrUnsupported)
}

type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }
