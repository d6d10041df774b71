package layer

import (
	"context"
	"errors"
	"fmt"
	"io"

	digest "github.com/opencontainers/go-digest"
)

// Blob is one layer blob to be read, for functions that read an image's
// layers in order (Flatten, unpack.ApplyLayers).
type Blob struct {
	// Open returns the layer blob: gzip, zstd or plain tar. It is read to
	// its end, so a reader that verifies the blob's digest when it reaches
	// the end (content.VerifyReader) does so, and an error it returns there
	// fails the layer. It is closed once the layer has been read. A
	// function that reads the layers twice (Flatten) opens each twice.
	Open func(ctx context.Context) (io.ReadCloser, error)

	// DiffID, when set, is the expected digest of the uncompressed layer
	// (the config's rootfs.diff_ids entry); every uncompressed byte,
	// including what follows the tar end marker, is hashed.
	DiffID digest.Digest

	// Name identifies the layer in errors (a digest, say); errors always
	// give its index.
	Name string
}

// Fail names the layer, i of an image, in err: "layer 1 (sha256:…): …", or,
// for a stream that does not decompress, "layer 1 (sha256:…) is corrupt:
// …". The result wraps err.
func (b Blob) Fail(i int, err error) error {
	name := fmt.Sprintf("layer %d", i)
	if b.Name != "" {
		name += " (" + b.Name + ")"
	}
	var ce *CorruptError
	if errors.As(err, &ce) {
		return &layerError{msg: fmt.Sprintf("%s is corrupt: %v stream: %v", name, ce.Compression, ce.Err), err: err}
	}
	return fmt.Errorf("%s: %w", name, err)
}

// layerError is an error with its own message that wraps another.
type layerError struct {
	msg string
	err error
}

func (e *layerError) Error() string { return e.msg }
func (e *layerError) Unwrap() error { return e.err }
