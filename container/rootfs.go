package container

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/lading-oci/lading/layer/unpack"
)

// RootfsMode says how a container gets a writable root filesystem from a
// cached, read-only tree.
type RootfsMode int

const (
	// RootfsAuto uses an overlay when it can mount one (as root, where the
	// kernel allows an overlay on the cache's filesystem) and a copy
	// otherwise.
	RootfsAuto RootfsMode = iota
	// RootfsOverlay mounts an overlay: the cached tree below, the
	// container's changes in a directory of its own above. It starts at
	// once whatever the image's size.
	RootfsOverlay
	// RootfsCopy copies the cached tree (reflinks where the filesystem has
	// them), owners, modes, times, links and extended attributes included.
	RootfsCopy
)

// String names the mode as --rootfs takes it.
func (m RootfsMode) String() string {
	switch m {
	case RootfsOverlay:
		return "overlay"
	case RootfsCopy:
		return "copy"
	}
	return "auto"
}

// ParseRootfsMode parses "auto", "overlay" or "copy".
func ParseRootfsMode(s string) (RootfsMode, error) {
	switch s {
	case "", "auto":
		return RootfsAuto, nil
	case "overlay":
		return RootfsOverlay, nil
	case "copy":
		return RootfsCopy, nil
	}
	return RootfsAuto, fmt.Errorf("rootfs mode %q: want auto, overlay or copy", s)
}

// Rootfs is a writable root filesystem made from a cached tree for one
// container. Release it when the container is gone.
type Rootfs struct {
	// Path is the tree the container runs on.
	Path string
	// Mode is how it was made: RootfsOverlay or RootfsCopy.
	Mode RootfsMode
	// dir holds the tree and, for an overlay, its upper and work
	// directories.
	dir     string
	mounted bool
}

// NewRootfs makes a writable tree at dir/rootfs from the read-only tree
// lower, by mode. With RootfsAuto, an overlay that cannot be mounted falls
// back to a copy.
func NewRootfs(ctx context.Context, lower, dir string, mode RootfsMode) (*Rootfs, error) {
	r := &Rootfs{Path: filepath.Join(dir, "rootfs"), dir: dir}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	if mode != RootfsCopy {
		err := r.mountOverlay(lower)
		if err == nil {
			r.Mode = RootfsOverlay
			return r, nil
		}
		if mode == RootfsOverlay {
			return nil, err
		}
		_ = os.RemoveAll(filepath.Join(dir, "upper"))
		_ = os.RemoveAll(filepath.Join(dir, "work"))
		_ = os.Remove(r.Path)
	}
	r.Mode = RootfsCopy
	if err := copyTree(ctx, lower, r.Path); err != nil {
		unpack.RemoveAll(r.Path)
		return nil, fmt.Errorf("copy %s: %w", lower, err)
	}
	return r, nil
}

func (r *Rootfs) mountOverlay(lower string) error {
	upper, work := filepath.Join(r.dir, "upper"), filepath.Join(r.dir, "work")
	for _, p := range []string{lower, upper, work, r.Path} {
		if strings.ContainsAny(p, ",:") {
			return fmt.Errorf("overlay: path %q has a comma or colon", p)
		}
	}
	for _, p := range []string{upper, work, r.Path} {
		if err := os.MkdirAll(p, 0o755); err != nil {
			return err
		}
	}
	if err := mountOverlay(lower, upper, work, r.Path); err != nil {
		return err
	}
	r.mounted = true
	return nil
}

// Release unmounts an overlay; the tree's files stay until the directory
// is removed.
func (r *Rootfs) Release() error {
	if !r.mounted {
		return nil
	}
	if err := unmount(r.Path); err != nil {
		return fmt.Errorf("unmount %s: %w", r.Path, err)
	}
	r.mounted = false
	return nil
}
