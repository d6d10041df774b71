package layer

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"maps"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/lading-oci/lading/errdef"
	digest "github.com/opencontainers/go-digest"
)

// Entry is what a Tree knows of one path: the attributes a layer carries,
// without file content.
type Entry struct {
	// Path is relative to the root, without leading or trailing slash; the
	// root itself has the empty path.
	Path string
	// Type is the tar type flag: tar.TypeReg, TypeDir, TypeSymlink,
	// TypeChar, TypeBlock or TypeFifo. A hard link has the type of the
	// entry it links to.
	Type byte
	// Mode holds the permission bits with setuid, setgid and sticky.
	Mode     int64
	UID, GID int
	// Size is the length of a regular file's content.
	Size int64
	// Linkname is the target of a symbolic link.
	Linkname string
	// Hardlink is, for a path written as a hard link, the path it links
	// to; the other fields are copied from that entry.
	Hardlink string
	// Devmajor and Devminor are the numbers of a device node.
	Devmajor, Devminor int64
	// Digest is the sha256 digest of a regular file's content.
	Digest digest.Digest
	// Xattrs are the extended attributes, by name.
	Xattrs map[string]string
	// ModTime is the modification time written in the layer.
	ModTime time.Time
}

// Tree is an index of the filesystem that a stack of layers describes:
// metadata and content digests, never content. Apply the layers bottom
// first. A Tree is not safe for concurrent use.
type Tree struct {
	root *node
	gen  int // number of layers applied; entries remember the one that wrote them
	seq  int // index of the tar header being applied, within its layer
	size int
	// skipDigests leaves Entry.Digest empty instead of hashing content.
	skipDigests bool
}

type node struct {
	Entry
	gen      int
	seq      int              // the header that wrote the entry: gen and seq
	children map[string]*node // directories only
	// src is the header that wrote the content of a regular file: its own
	// for a file, its target's for a hard link, so the names of one inode
	// share it.
	src [2]int
}

// NewTree returns the tree of an empty root directory.
func NewTree() *Tree {
	return &Tree{root: &node{Entry: Entry{Type: tar.TypeDir, Mode: 0o755}, children: map[string]*node{}}}
}

// Len is the number of entries in the tree, the root not counted.
func (t *Tree) Len() int { return t.size }

// Lookup returns the entry at p ("a/b", "/a/b/" and "./a/b" are the same;
// "" is the root).
func (t *Tree) Lookup(p string) (Entry, bool) {
	n := t.find(cleanPath(p))
	if n == nil {
		return Entry{}, false
	}
	return n.Entry, true
}

// Children returns the names in the directory at p, sorted, or nil if p is
// not a directory of the tree.
func (t *Tree) Children(p string) []string {
	n := t.find(cleanPath(p))
	if n == nil || n.children == nil {
		return nil
	}
	return slices.Sorted(maps.Keys(n.children))
}

// Each calls fn for every entry but the root, depth first with the names
// of each directory in byte order (the order Create writes). An error from
// fn stops the walk and is returned.
func (t *Tree) Each(fn func(Entry) error) error {
	return t.root.walk(fn)
}

func (n *node) walk(fn func(Entry) error) error {
	for _, name := range slices.Sorted(maps.Keys(n.children)) {
		c := n.children[name]
		if err := fn(c.Entry); err != nil {
			return err
		}
		if c.children != nil {
			if err := c.walk(fn); err != nil {
				return err
			}
		}
	}
	return nil
}

func (t *Tree) find(p string) *node {
	n := t.root
	if p == "" {
		return n
	}
	for name := range strings.SplitSeq(p, "/") {
		if n.children == nil {
			return nil
		}
		if n = n.children[name]; n == nil {
			return nil
		}
	}
	return n
}

// cleanPath turns a tar entry name into a path relative to the root. Names
// are confined to the root: "../x" is "x".
func cleanPath(name string) string {
	return path.Clean("/" + name)[1:]
}

// Apply reads one layer from r (a tar, plain or compressed with gzip or
// zstd) and applies it to the tree: whiteouts (".wh.NAME") and opaque whiteouts (".wh..wh..opq") hide
// what the layers below had, wherever in the layer they appear, and the
// other entries are added or replace what was there (a directory over a
// directory keeps its children). The content of regular files is hashed as
// it streams by. Malformed layers yield an error wrapping errdef.ErrInvalid;
// the tree then holds part of the layer.
func (t *Tree) Apply(ctx context.Context, r io.Reader) error {
	rc, _, err := Decompress(r)
	if err != nil {
		return err
	}
	defer rc.Close()
	t.gen++
	t.seq = -1
	tr := tar.NewReader(rc)
	bufp := copyBufPool.Get().(*[]byte)
	defer copyBufPool.Put(bufp)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		t.seq++
		hdr, err := tr.Next()
		if err == io.EOF {
			// Read what follows the end marker too, so a compressed
			// stream's trailer (its checksum) is checked.
			if _, err := io.CopyBuffer(io.Discard, rc, *bufp); err != nil {
				return fmt.Errorf("layer: after the end of the archive: %w", err)
			}
			return nil
		}
		if err != nil {
			return fmt.Errorf("layer: reading tar entry: %w", readFailure(err))
		}
		p := cleanPath(hdr.Name)
		dir, base := path.Split(p)
		dir = strings.TrimSuffix(dir, "/")
		if strings.HasPrefix(base, WhiteoutPrefix) {
			if err := t.whiteout(dir, base, hdr.Name); err != nil {
				return err
			}
			continue
		}
		e := Entry{
			Path:     p,
			Type:     hdr.Typeflag,
			Mode:     hdr.Mode & 0o7777,
			UID:      hdr.Uid,
			GID:      hdr.Gid,
			ModTime:  hdr.ModTime,
			Devmajor: hdr.Devmajor,
			Devminor: hdr.Devminor,
		}
		for k, v := range hdr.PAXRecords {
			if name, ok := strings.CutPrefix(k, paxXattr); ok {
				if e.Xattrs == nil {
					e.Xattrs = map[string]string{}
				}
				e.Xattrs[name] = v
			}
		}
		src := [2]int{t.gen, t.seq}
		switch hdr.Typeflag {
		case tar.TypeReg, tar.TypeCont, tar.TypeGNUSparse: // the reader turns the old TypeRegA into TypeReg
			e.Type = tar.TypeReg
			var h hash.Hash = discard{}
			if !t.skipDigests {
				h = sha256.New()
			}
			n, err := io.CopyBuffer(h, tr, *bufp)
			if err != nil {
				return fmt.Errorf("layer: reading %s: %w", hdr.Name, readFailure(err))
			}
			e.Size = n
			if !t.skipDigests {
				e.Digest = digest.NewDigestFromBytes(digest.SHA256, h.Sum(nil))
			}
		case tar.TypeDir, tar.TypeFifo:
		case tar.TypeChar, tar.TypeBlock:
		case tar.TypeSymlink:
			e.Linkname = hdr.Linkname
		case tar.TypeLink:
			target := t.find(cleanPath(hdr.Linkname))
			if target == nil || target.Type == tar.TypeDir {
				return fmt.Errorf("layer: hard link %s: %w: target %q is not a file of the tree", hdr.Name, errdef.ErrInvalid, hdr.Linkname)
			}
			link := target.Entry
			link.Path = p
			link.Hardlink = target.Path
			link.Xattrs = maps.Clone(link.Xattrs)
			e = link
			src = target.src
		default:
			return fmt.Errorf("layer: entry %s: %w: tar type %q", hdr.Name, errdef.ErrUnsupported, hdr.Typeflag)
		}
		if err := t.put(e, src); err != nil {
			return err
		}
	}
}

// discard is a hash.Hash that hashes nothing, for a Tree that skips
// digests.
type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
func (discard) Sum(b []byte) []byte         { return b }
func (discard) Reset()                      {}
func (discard) Size() int                   { return 0 }
func (discard) BlockSize() int              { return 1 }

// readFailure classifies an error met reading a layer's tar stream: an
// error that already has a category (a corrupt compressed stream, a digest
// mismatch found by a verifying reader, a cancelled context) keeps it; any
// other (a malformed or truncated archive) is errdef.ErrInvalid.
func readFailure(err error) error {
	for _, cat := range []error{errdef.ErrInvalid, errdef.ErrDigestMismatch, errdef.ErrSizeMismatch, errdef.ErrTooLarge,
		errdef.ErrUnsupported, errdef.ErrNotFound, context.Canceled, context.DeadlineExceeded} {
		if errors.Is(err, cat) {
			return err
		}
	}
	return fmt.Errorf("%w: %w", errdef.ErrInvalid, err)
}

// whiteout applies the whiteout named base in directory dir.
func (t *Tree) whiteout(dir, base, name string) error {
	var victim string
	switch {
	case base == OpaqueWhiteout:
	case strings.HasPrefix(base, WhiteoutMetaPrefix):
		return nil // other metadata entries carry nothing for the tree
	default:
		victim = strings.TrimPrefix(base, WhiteoutPrefix)
		if victim == "" || victim == "." || victim == ".." {
			return fmt.Errorf("layer: whiteout %s: %w: no name to delete", name, errdef.ErrInvalid)
		}
	}
	d := t.find(dir)
	if d == nil || d.children == nil {
		return nil
	}
	if victim == "" {
		t.prune(d)
		return nil
	}
	if c := d.children[victim]; c != nil && !t.prune(c) {
		delete(d.children, victim)
		t.size--
	}
	return nil
}

// prune removes from n's subtree what layers below the current one wrote,
// keeping what the current layer wrote and the directories that lead to
// it, so whiteouts act on lower layers only, wherever they appear in their
// layer. It reports whether n itself stays.
func (t *Tree) prune(n *node) bool {
	for name, c := range n.children {
		if !t.prune(c) {
			delete(n.children, name)
			t.size--
		}
	}
	return n.gen == t.gen || len(n.children) > 0
}

// put adds or replaces the entry e, whose content came from the header
// src, creating missing parent directories.
func (t *Tree) put(e Entry, src [2]int) error {
	if e.Path == "" {
		if e.Type != tar.TypeDir {
			return fmt.Errorf("layer: root entry: %w: type %q is not a directory", errdef.ErrInvalid, e.Type)
		}
		t.root.Entry = e
		t.root.gen, t.root.seq = t.gen, t.seq
		return nil
	}
	parent := t.root
	rest := e.Path
	for {
		name, after, more := strings.Cut(rest, "/")
		if !more {
			rest = name
			break
		}
		c := parent.children[name]
		switch {
		case c == nil:
			dirPath := strings.TrimSuffix(e.Path[:len(e.Path)-len(after)], "/")
			c = &node{Entry: Entry{Path: dirPath, Type: tar.TypeDir, Mode: 0o755}, gen: t.gen, children: map[string]*node{}}
			parent.children[name] = c
			t.size++
		case c.Type != tar.TypeDir:
			return fmt.Errorf("layer: entry %s: %w: parent %s is not a directory", e.Path, errdef.ErrInvalid, c.Path)
		}
		parent, rest = c, after
	}
	old := parent.children[rest]
	if old != nil && old.Type == tar.TypeDir && e.Type == tar.TypeDir {
		old.Entry = e
		old.gen, old.seq = t.gen, t.seq
		return nil
	}
	n := &node{Entry: e, gen: t.gen, seq: t.seq, src: src}
	if e.Type == tar.TypeDir {
		n.children = map[string]*node{}
	}
	t.size++
	if old != nil {
		t.size -= old.count()
	}
	parent.children[rest] = n
	return nil
}

// count is the number of entries in n's subtree, n included.
func (n *node) count() int {
	c := 1
	for _, ch := range n.children {
		c += ch.count()
	}
	return c
}
