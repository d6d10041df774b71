package unpack

import (
	"fmt"
	"github.com/lading-oci/lading/layer"
	"log/slog"

	"github.com/lading-oci/lading/errdef"
	"github.com/opencontainers/go-digest"
)

// Options control [Apply]. The zero value applies a layer as the current user
// with no size limit and no digest check.
type Options struct {
	// Rootless applies the layer without privileges: no chown and no
	// device nodes; modes are exact (see the package documentation).
	Rootless bool

	// DiffID, when set, is the expected digest of the uncompressed layer
	// (the config's rootfs.diff_ids entry). Every uncompressed byte,
	// including what follows the tar end marker, is hashed; a mismatch is an
	// error wrapping errdef.ErrDigestMismatch that names both digests.
	DiffID digest.Digest

	// MaxBytes caps the uncompressed size of the layer. Exceeding it stops
	// the apply with an error wrapping errdef.ErrTooLarge (decompression
	// bombs). Zero means no limit.
	MaxBytes int64

	// Lookahead is how many layers after the one being written
	// [ApplyLayers] decompresses at the same time, so that a multi-layer
	// image uses more than one core for decompression. A layer decompressed
	// ahead waits in an unnamed temporary file in the target directory (on
	// Linux, O_TMPFILE: it has no name, is freed as the writer reads it, and
	// vanishes if the process dies); where the filesystem cannot make one,
	// only a few MiB are read ahead. Zero means one layer per spare CPU
	// (GOMAXPROCS-1, at most 4); negative means none. [Apply] ignores it.
	Lookahead int

	// Logger receives debug and warning messages (skipped devices, xattrs
	// the filesystem refused). Nil discards them.
	Logger *slog.Logger
}

// Stats counts what [Apply] did.
type Stats struct {
	// Files is the number of regular files written.
	Files int
	// Dirs is the number of directory entries applied (created or merged).
	Dirs int
	// Symlinks is the number of symbolic links made.
	Symlinks int
	// Hardlinks is the number of hard links made.
	Hardlinks int
	// Whiteouts is the number of whiteout entries, opaque ones included.
	Whiteouts int
	// Specials is the number of FIFOs and device nodes made.
	Specials int
	// Skipped is the number of entries left out (devices in rootless or
	// unprivileged mode, unknown whiteout metadata).
	Skipped int
	// Bytes is the uncompressed size of the layer stream: what MaxBytes
	// caps and DiffID covers.
	Bytes int64
}

// Layer is one layer blob for [ApplyLayers]: see [layer.Blob].
type Layer = layer.Blob

// logger returns Logger, or one that discards.
func (o Options) logger() *slog.Logger {
	if o.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return o.Logger
}

// checkMaxBytes refuses a negative cap.
func (o Options) checkMaxBytes() error {
	if o.MaxBytes < 0 {
		return fmt.Errorf("max bytes %d: %w: must not be negative", o.MaxBytes, errdef.ErrInvalid)
	}
	return nil
}
