package layer

import (
	"context"
	"io"
)

// DiffOptions control CreateDiff.
type DiffOptions struct {
	// Options control the output as for Create.
	Options
	// Rootless is for a dir that a rootless unpack made from base (see
	// unpack.Options.Rootless): what such an unpack cannot reproduce is not
	// a change. Owners are not compared, and a written entry keeps the owner
	// base gives it (an entry new to the tree gets Options.UID and GID, else
	// 0:0, as the unprivileged user is root inside the container); a
	// character or block device of base that dir lacks is not a deletion.
	Rootless bool
	// IgnoreXattrs compares entries without their extended attributes, for
	// trees unpacked where those could not be set or where the filesystem
	// adds its own (such as security labels).
	IgnoreXattrs bool
	// OpaqueWhiteouts writes a single opaque whiteout (".wh..wh..opq") in a
	// directory that exists in both the base and the directory but keeps
	// none of the names it had in the base, instead of one whiteout per
	// name. Image-spec recommends explicit whiteouts, the default.
	OpaqueWhiteouts bool
}

// CreateDiff writes to w, as one layer, the changes that turn the filesystem
// described by base into the tree under dir; a nil base is the empty tree,
// for which CreateDiff writes the same layer as Create.
//
// Entries that are new or changed are written as Create writes them. An
// entry is changed when its type, mode, owner, extended attributes, symbolic
// link target, device numbers, size or content (hashed and compared with
// the base's digest when the sizes match) differ; modification times alone
// never make a change. The unchanged directories above a written entry are
// written too, so the layer carries their attributes and an applier never
// creates them with defaults.
//
// A name the base has and dir has not gets one whiteout ".wh.NAME" in its
// directory, however much lies below it. A directory replaced by another
// type also gets a whiteout, so that it is removed whole before its
// replacement is written. A non-directory replaced by a directory is written
// as a new directory with all its contents. The whiteouts of a directory
// are written before its other entries.
//
// Hard links are written as links only to names written in the same layer;
// a new name for a file the layer does not carry is written as a copy.
// Names in dir that begin with ".wh." are refused with errdef.ErrInvalid.
// On error, w may have received part of a layer.
func CreateDiff(ctx context.Context, base *Tree, dir string, w io.Writer, opts DiffOptions) (Result, error) {
	p, err := newPacker(w, opts.Options)
	if err != nil {
		return Result{}, err
	}
	fw, err := newFSWalker(ctx, dir, p, opts.Options)
	if err != nil {
		p.abort()
		return Result{}, err
	}
	defer fw.close()
	fw.diff = &opts
	var root *node
	if base != nil {
		root = base.root
	}
	if err := fw.walkRoot(root); err != nil {
		p.abort()
		return Result{}, err
	}
	return p.finish()
}
