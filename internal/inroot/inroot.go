// Package inroot resolves and opens paths inside a directory tree as if that
// tree were the root of the filesystem, the way a process chrooted into it
// sees them: an absolute symbolic link target starts again at the tree's
// top, and ".." stops there. Nothing outside the tree is ever reached.
//
// It is for trees that only the caller changes while it works on them (an
// unpacked image, a container's root filesystem between runs); a tree that
// another process rewrites at the same time can swap a checked directory for
// a symbolic link between the check and the use.
package inroot

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/lading-oci/lading/errdef"
)

// maxLinks bounds the symbolic links followed while resolving one path, as
// the kernel's own limit does (ELOOP).
const maxLinks = 40

// Resolve returns the host path of name inside root, following every
// symbolic link on the way within root. name is slash-separated; absolute
// and relative names are both taken from root's top. The last element is
// followed too when it is a link; a name that does not exist resolves to
// where it would be created, its missing elements kept as they are.
func Resolve(root, name string) (string, error) {
	return resolve(root, name, true)
}

// ResolveParent is Resolve for every element of name but the last, which is
// kept as it is (not followed even when it is a symbolic link): where to
// create, replace or remove the entry itself.
func ResolveParent(root, name string) (string, error) {
	return resolve(root, name, false)
}

func resolve(root, name string, followLast bool) (string, error) {
	root = filepath.Clean(root)
	pending := splitPath(name)
	var done []string // resolved elements, all existing directories or links' ends
	links := 0
	for len(pending) > 0 {
		elem := pending[0]
		pending = pending[1:]
		switch elem {
		case ".":
			continue
		case "..":
			if len(done) > 0 {
				done = done[:len(done)-1]
			}
			continue
		}
		cur := filepath.Join(root, filepath.Join(done...), elem)
		if len(pending) == 0 && !followLast {
			done = append(done, elem)
			break
		}
		fi, err := os.Lstat(cur)
		if errors.Is(err, fs.ErrNotExist) {
			// The rest does not exist: keep it as it is.
			done = append(done, elem)
			for _, p := range pending {
				if p == ".." {
					return "", fmt.Errorf("%s: %w: \"..\" after a missing element", name, errdef.ErrInvalid)
				}
				if p != "." {
					done = append(done, p)
				}
			}
			break
		}
		if err != nil {
			return "", err
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			done = append(done, elem)
			continue
		}
		links++
		if links > maxLinks {
			return "", fmt.Errorf("%s: %w: too many levels of symbolic links", name, errdef.ErrInvalid)
		}
		target, err := os.Readlink(cur)
		if err != nil {
			return "", err
		}
		if strings.HasPrefix(target, "/") {
			done = done[:0]
		}
		pending = append(splitPath(target), pending...)
	}
	return filepath.Join(root, filepath.Join(done...)), nil
}

func splitPath(p string) []string {
	var out []string
	for _, e := range strings.Split(p, "/") {
		if e != "" {
			out = append(out, e)
		}
	}
	return out
}

// Open opens name inside root for reading, following links within root.
// The final open does not follow a link, so a link swapped in after the
// resolution is refused rather than followed.
func Open(root, name string) (*os.File, error) {
	p, err := Resolve(root, name)
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(p, os.O_RDONLY|noFollow, 0)
	if err != nil {
		return nil, fmt.Errorf("open %s in %s: %w", path.Clean("/"+name), root, err)
	}
	return f, nil
}

// Within reports whether the host path p is root or lies below it.
func Within(root, p string) bool {
	rel, err := filepath.Rel(filepath.Clean(root), filepath.Clean(p))
	return err == nil && rel != ".." && !strings.HasPrefix(rel, "../")
}
