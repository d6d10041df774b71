// Package layer reads and writes filesystem changesets: the tar layers of
// image-spec layer.md. It creates layers from directories (reproducibly),
// computes the changeset between a base filesystem and a directory with
// whiteouts, and compresses and decompresses layers (gzip, zstd, none).
//
// The package works on streams and directories only; it knows nothing of
// stores or registries.
package layer

// Whiteout names from image-spec layer.md.
const (
	// WhiteoutPrefix marks a deleted entry: ".wh.NAME" deletes NAME.
	WhiteoutPrefix = ".wh."
	// WhiteoutMetaPrefix is reserved for whiteout metadata entries.
	WhiteoutMetaPrefix = ".wh..wh."
	// OpaqueWhiteout in a directory hides every entry of the lower layers in it.
	OpaqueWhiteout = ".wh..wh..opq"
)
