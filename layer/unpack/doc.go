// Package unpack applies OCI layer changesets (image-spec layer.md) to a
// directory: it extracts the tar, honours whiteouts and opaque whiteouts,
// the replacement rules for existing paths, hardlinks, ownership, modes,
// times and extended attributes, and keeps every change inside the target
// directory whatever the archive holds.
//
// # Confinement
//
// Every filesystem call goes through an [os.Root] opened on the target
// directory (or a sub-Root opened through it), so the kernel-level symlink
// resolution of [os.Root] keeps each operation beneath the target. On top of
// that, parent directories of every entry are resolved by the package itself
// with chroot semantics: an absolute symlink inside the tree ("lib64 ->
// /usr/lib64") resolves relative to the target, and ".." in a symlink
// target stops at the target, exactly as the container would see the tree
// at run time. The last component of an entry's name is never followed: an
// existing symlink there is replaced, not written through.
//
// Entry names are checked before anything is touched:
//   - A name with a ".." component ("../x", "a/../../x") is refused with an
//     error wrapping [errdef.ErrUnsafePath] that names the entry. Such names
//     never appear in layers produced by image builders, and a clear error
//     tells the user the layer is hostile or broken rather than silently
//     placing files somewhere they did not ask for.
//   - A leading "/" is stripped ("/etc/passwd" is "etc/passwd"), as GNU tar
//     does by default: an absolute name is unambiguous inside an image root.
//   - The same rules apply to hardlink targets. Symlink targets are data and
//     are stored as they are; they are only ever resolved confined.
//
// # Rootless mode
//
// With [Options.Rootless] no ownership is changed, character and block
// devices are skipped (logged at warning level; FIFOs are still made), and
// extended attributes in the trusted.* and security.* namespaces that the
// kernel refuses are skipped with a debug log. Modes are exactly those the
// layers record, 0000 files and directories included, as with umoci: a file
// is written with owner read and write access and given its mode once its
// content and xattrs are in; a directory's mode is set at the end of the
// layer, deepest first. Where the process is unprivileged, a directory of an
// earlier layer whose mode denies its owner access (0555, 0000) is given
// u+rwx while a later layer writes into or through it, and its mode is put
// back at the end of that layer. Such a tree can hold directories its owner
// cannot write into; [RemoveAll] removes it.
//
// umoci's "unpack --rootless" differs in two documented ways: it replaces a
// device node with an empty regular file of mode 0000, where Unpack makes
// nothing (a placeholder would be taken for real content when the tree is
// diffed into a new layer; layer.DiffOptions.Rootless does not take a
// missing device for a deletion), and it records owners in a
// "user.rootlesscontainers" xattr, which Unpack does not.
//
// # Streams
//
// The blob may be gzip, zstd or plain tar (detected by magic bytes). It is
// decompressed on one goroutine while entries are written on another, in
// bounded buffers: memory does not grow with the size of the layer, only
// with the number of entries (a set of the paths written by the layer is
// kept to apply opaque whiteouts correctly, like every whiteout-aware
// extractor). [Options.MaxBytes] caps the uncompressed size and
// [Options.DiffID] verifies it; since the tree is written while the stream is
// read, a diff_id mismatch is reported after the entries were applied, and a
// caller that must not keep unverified content applies into a scratch
// directory.
//
// # Several layers
//
// [ApplyLayers] applies an image's layers in order, and decompresses the
// next layers (one per spare CPU) while the current one is written, since
// decompressing one gzip stream cannot use more than one core. A layer
// decompressed ahead of its turn waits in an unnamed O_TMPFILE in the target
// directory, at most 1 GiB of it (64 MiB on tmpfs, where it would be memory);
// its blocks are punched out as the writer reads them back, the file has no
// name that could be seen or left behind, and the kernel frees it if the
// process dies. Where the filesystem has no O_TMPFILE only a few MiB are
// read ahead. The entries themselves are still written by one goroutine,
// strictly in layer order, with each layer's diff_id and blob checked as
// [Apply] checks them; a layer that was read to its end before its turn
// (a small one, or any when the writer is the slower side) is checked
// before any of it is written, so a corrupt one leaves nothing behind.
package unpack
