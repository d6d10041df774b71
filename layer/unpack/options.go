package unpack

import (
	"log/slog"

	"github.com/opencontainers/go-digest"
)

// Options control [Apply]. The zero value applies a layer as the current user
// with no size limit and no digest check.
type Options struct {
	// Rootless applies the layer without privileges: no chown, no device
	// nodes, and owner access forced on files and directories (see the
	// package documentation).
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
