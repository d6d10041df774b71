package analyze

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"path"
	"strings"
	"sync"

	"github.com/lading-oci/lading/errdef"
	"github.com/lading-oci/lading/layer"
)

// maxPathLen caps an entry name, as PATH_MAX does on Linux; it also bounds
// the depth of the tree and so the recursion over it.
const maxPathLen = 4096

// maxFollows caps the symbolic links followed to resolve one path.
const maxFollows = 40

// maxDepth caps the depth of the tree, however a path is reached.
const maxDepth = maxPathLen / 2

type nodeType uint8

const (
	tFile nodeType = iota + 1
	tDir
	tSymlink
	tChar
	tBlock
	tFifo
)

// inode is the content of a regular file, shared by its hardlinks.
type inode struct {
	size  int64
	layer int    // layer that shipped it
	path  string // path it was shipped under
	links int    // paths that refer to it
	sum   [sha256.Size]byte
}

// node is one path of the filesystem.
type node struct {
	children map[string]*node // directories only
	ino      *inode           // regular files only
	link     string           // symlink target
	size     int64            // regular-file bytes this path's entry shipped
	meta
	typ      nodeType
	hardlink bool // entry was a hardlink
}

func (n *node) fileType() FileType {
	if n.hardlink {
		return TypeHardlink
	}
	return n.typ.fileType()
}

func (t nodeType) fileType() FileType {
	switch t {
	case tFile:
		return TypeFile
	case tDir:
		return TypeDir
	case tSymlink:
		return TypeSymlink
	case tChar:
		return TypeChar
	case tBlock:
		return TypeBlock
	case tFifo:
		return TypeFifo
	}
	return ""
}

type recKind uint8

const (
	recEntry recKind = iota
	recWhiteout
	recOpaque
)

// record is the part of a tar header the analysis keeps.
type record struct {
	path string // cleaned; for whiteouts the path removed, for opaque the directory
	link string // symlink target as written, or cleaned hardlink target
	size int64
	sum  *[sha256.Size]byte // when hashing regular files
	meta
	kind     recKind
	typ      nodeType
	hardlink bool
}

// meta are the attributes Compare compares besides content.
type meta struct {
	mode     uint32
	uid, gid uint32
	devMajor uint32
	devMinor uint32
}

// cleanPath confines an entry name to the root, as an applier does, and
// returns it without leading or trailing slashes; "" is the root.
func cleanPath(name string) (string, error) {
	if len(name) > maxPathLen {
		return "", fmt.Errorf("entry name of %d bytes: %w: longer than %d", len(name), errdef.ErrInvalid, maxPathLen)
	}
	return path.Clean("/" + name)[1:], nil
}

func join(dir, name string) string {
	if dir == "" {
		return name
	}
	return dir + "/" + name
}

func split(p string) (dir, name string) {
	i := strings.LastIndexByte(p, '/')
	if i < 0 {
		return "", p
	}
	return p[:i], p[i+1:]
}

// toRecord converts a tar header; ok is false for entries that do not touch
// the filesystem (global headers, whiteout metadata, unknown types).
func toRecord(hdr *tar.Header) (rec record, ok bool, err error) {
	p, err := cleanPath(hdr.Name)
	if err != nil {
		return rec, false, err
	}
	dir, base := split(p)
	if strings.HasPrefix(base, layer.WhiteoutPrefix) {
		switch {
		case base == layer.OpaqueWhiteout:
			return record{kind: recOpaque, path: dir}, true, nil
		case strings.HasPrefix(base, layer.WhiteoutMetaPrefix):
			return rec, false, nil
		}
		name := base[len(layer.WhiteoutPrefix):]
		if name == "." || name == ".." || name == "" {
			return rec, false, fmt.Errorf("whiteout %q: %w: names no entry", hdr.Name, errdef.ErrInvalid)
		}
		return record{kind: recWhiteout, path: join(dir, name)}, true, nil
	}
	rec = record{path: p, meta: meta{mode: uint32(hdr.Mode), uid: uint32(hdr.Uid), gid: uint32(hdr.Gid)}}
	switch hdr.Typeflag {
	case tar.TypeReg, tar.TypeGNUSparse, tar.TypeCont: // the reader turns TypeRegA into TypeReg
		rec.typ, rec.size = tFile, hdr.Size
	case tar.TypeDir:
		rec.typ = tDir
	case tar.TypeSymlink:
		if len(hdr.Linkname) > maxPathLen {
			return rec, false, fmt.Errorf("symlink %q: %w: target longer than %d", hdr.Name, errdef.ErrInvalid, maxPathLen)
		}
		rec.typ, rec.link = tSymlink, hdr.Linkname
	case tar.TypeLink:
		target, err := cleanPath(hdr.Linkname)
		if err != nil {
			return rec, false, err
		}
		rec.typ, rec.hardlink, rec.link = tFile, true, target
	case tar.TypeChar:
		rec.typ, rec.devMajor, rec.devMinor = tChar, uint32(hdr.Devmajor), uint32(hdr.Devminor)
	case tar.TypeBlock:
		rec.typ, rec.devMajor, rec.devMinor = tBlock, uint32(hdr.Devmajor), uint32(hdr.Devminor)
	case tar.TypeFifo:
		rec.typ = tFifo
	default:
		return rec, false, nil
	}
	if p == "" && rec.typ != tDir {
		return rec, false, nil // the root is a directory whatever the entry says
	}
	return rec, true, nil
}

// readLayer reads the tar headers of one layer blob, skipping bodies unless
// withSums asks for regular files to be hashed.
func readLayer(ctx context.Context, idx int, l Layer, withSums bool, maxEntries int) (recs []record, err error) {
	defer func() {
		if err != nil {
			err = fmt.Errorf("layer %d (%s): %w", idx, l.Digest, err)
		}
	}()
	if l.Open == nil {
		return nil, fmt.Errorf("%w: no Open function", errdef.ErrInvalid)
	}
	rc, err := l.Open(ctx)
	if err != nil {
		return nil, fmt.Errorf("open: %w", err)
	}
	defer rc.Close()
	dr, _, err := layer.Decompress(rc)
	if err != nil {
		return nil, err
	}
	defer dr.Close()
	tr := tar.NewReader(dr)
	var h hash.Hash
	if withSums {
		h = sha256.New()
	}
	for n := 0; ; n++ {
		if n%256 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("entry %d: %w", n, tarError(err))
		}
		rec, ok, err := toRecord(hdr)
		if err != nil {
			return nil, fmt.Errorf("entry %d: %w", n, err)
		}
		if !ok {
			continue
		}
		if h != nil && rec.kind == recEntry && rec.typ == tFile && !rec.hardlink {
			h.Reset()
			if _, err := io.Copy(h, tr); err != nil {
				return nil, fmt.Errorf("entry %q: %w", hdr.Name, tarError(err))
			}
			rec.sum = new([sha256.Size]byte)
			h.Sum(rec.sum[:0])
		}
		if len(recs) >= maxEntries {
			return nil, fmt.Errorf("%w: more than %d entries", errdef.ErrTooLarge, maxEntries)
		}
		recs = append(recs, rec)
	}
	// Read to the end so that a verifying reader from Open sees all of it.
	if _, err := io.Copy(io.Discard, dr); err != nil {
		return nil, fmt.Errorf("after the tar end: %w", err)
	}
	return recs, nil
}

// tarError marks malformed or truncated archives as errdef.ErrInvalid.
func tarError(err error) error {
	if errors.Is(err, tar.ErrHeader) || errors.Is(err, tar.ErrFieldTooLong) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: %w", errdef.ErrInvalid, err)
	}
	return err
}

// run reads up to conc layers ahead and calls apply for each in order, with
// the layer's index offset by base.
func run(ctx context.Context, layers []Layer, base int, withSums bool, conc, maxEntries int, apply func(int, []record) error) error {
	type result struct {
		recs []record
		err  error
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
	}()
	results := make([]chan result, len(layers))
	for i := range results {
		results[i] = make(chan result, 1)
	}
	slots := make(chan struct{}, max(conc, 1))
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range layers {
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				recs, err := readLayer(ctx, base+i, layers[i], withSums, maxEntries)
				results[i] <- result{recs, err}
			}()
		}
	}()
	for i := range layers {
		var r result
		select {
		case r = <-results[i]:
		case <-ctx.Done():
			return ctx.Err()
		}
		if r.err != nil {
			return r.err
		}
		if err := apply(base+i, r.recs); err != nil {
			return fmt.Errorf("layer %d (%s): %w", base+i, layers[i].Digest, err)
		}
		<-slots
	}
	return nil
}

// state is a filesystem being built by applying layers.
type state struct {
	root     *node
	nodes    int
	maxPaths int
	layer    int   // index of the layer being applied
	live     int64 // bytes of the inodes still linked
	size     int64 // file bytes shipped by the layer being applied
	acct     *accounting
	cause    WasteCause // the action whose drops are being accounted
	stack    []frame    // reused by resolveDir
}

func newState(maxPaths int) *state {
	return &state{root: &node{typ: tDir, meta: meta{mode: 0o755}, children: map[string]*node{}}, maxPaths: maxPaths}
}

func (s *state) touch(p string, old *node) {
	if s.acct != nil {
		s.acct.touch(p, old)
	}
}

// apply applies one layer: its whiteouts first, so that they only remove
// entries of lower layers wherever they sit in the tar, then its entries.
func (s *state) apply(idx int, recs []record) error {
	s.layer, s.size = idx, 0
	for i := range recs {
		switch r := &recs[i]; r.kind {
		case recWhiteout:
			s.whiteout(r.path)
		case recOpaque:
			s.opaque(r.path)
		}
	}
	for i := range recs {
		if r := &recs[i]; r.kind == recEntry {
			if err := s.entry(r); err != nil {
				return fmt.Errorf("entry %q: %w", r.path, err)
			}
		}
	}
	if s.acct != nil {
		s.acct.rep.Layers[idx].Size = s.size
	}
	return nil
}

func (s *state) whiteout(p string) {
	dir, name := split(p)
	parent, ppath, err := s.resolveDir(dir, false)
	if err != nil || parent == nil {
		return // nothing there to remove
	}
	if old := parent.children[name]; old != nil {
		s.cause = WasteCause{Layer: s.layer, Action: CauseDeleted, Path: join(ppath, name)}
		s.drop(old, join(ppath, name))
		delete(parent.children, name)
	}
}

func (s *state) opaque(dir string) {
	d, dpath, err := s.resolveDir(dir, false)
	if err != nil || d == nil {
		return
	}
	s.cause = WasteCause{Layer: s.layer, Action: CauseOpaque, Path: dpath}
	for name, c := range d.children {
		s.drop(c, join(dpath, name))
	}
	clear(d.children)
}

func (s *state) entry(r *record) error {
	n := &node{typ: r.typ, meta: r.meta, hardlink: r.hardlink}
	if r.path == "" {
		s.root.meta = r.meta
		return nil
	}
	dir, name := split(r.path)
	parent, ppath, err := s.resolveDir(dir, true)
	if err != nil {
		return err
	}
	p := r.path
	if ppath != dir {
		p = join(ppath, name) // reached through a symlink
	}
	switch {
	case r.hardlink:
		target := s.resolveEntry(r.link)
		switch {
		case target == nil || target.typ == tDir:
			// A link to nothing (or to a directory) cannot be made; account
			// for it as an empty file.
			n.ino = &inode{layer: s.layer, path: p, links: 1, sum: emptySum}
		default:
			n.typ, n.link, n.meta, n.ino = target.typ, target.link, target.meta, target.ino
			if n.ino != nil {
				n.ino.links++ // before the old entry at p goes, which may be the target
			}
		}
	case r.typ == tFile:
		n.size = r.size
		n.ino = &inode{size: r.size, layer: s.layer, path: p, links: 1}
		if r.sum != nil {
			n.ino.sum = *r.sum
		}
		s.live += r.size
		s.size += r.size
	case r.typ == tSymlink:
		n.link = r.link
	case r.typ == tDir:
		n.children = map[string]*node{}
	}
	old := parent.children[name]
	s.touch(p, old)
	if old != nil {
		if old.typ == tDir && n.typ == tDir {
			old.meta = n.meta
			return nil
		}
		s.cause = WasteCause{Layer: s.layer, Action: CauseReplaced, Path: p}
		s.drop(old, p)
	}
	return s.put(parent, name, n)
}

func (s *state) put(parent *node, name string, n *node) error {
	if s.nodes >= s.maxPaths {
		return fmt.Errorf("%w: more than %d paths", errdef.ErrTooLarge, s.maxPaths)
	}
	parent.children[name] = n
	s.nodes++
	return nil
}

// drop releases n, found at p, and everything beneath it. The caller
// unlinks n from its parent.
func (s *state) drop(n *node, p string) {
	s.touch(p, n)
	for name, c := range n.children {
		s.drop(c, join(p, name))
	}
	if n.ino != nil {
		n.ino.links--
		if n.ino.links == 0 {
			s.live -= n.ino.size
			if s.acct != nil {
				s.acct.waste(n.ino, s.cause)
			}
		}
	}
	s.nodes--
}

var emptySum = sha256.Sum256(nil)

var errTooDeep = fmt.Errorf("%w: more than %d directories deep", errdef.ErrInvalid, maxDepth)

var errLinkLoop = fmt.Errorf("%w: too many levels of symbolic links", errdef.ErrInvalid)

// resolveDir finds the directory at p, following symbolic links inside the
// root, and returns it with its real path. With create it makes missing
// directories (and replaces non-directories in the way, as an applier
// unlinks them); without, a missing directory is nil.
func (s *state) resolveDir(p string, create bool) (*node, string, error) {
	stack := s.stack[:0] // the directories entered below the root
	defer func() { s.stack = stack[:0] }()
	cur, rest, follows := s.root, p, 0
	for rest != "" {
		var c string
		c, rest, _ = strings.Cut(rest, "/")
		switch c {
		case "", ".":
			continue
		case "..":
			if len(stack) > 0 {
				stack = stack[:len(stack)-1]
			}
			cur = s.root
			if len(stack) > 0 {
				cur = stack[len(stack)-1].n
			}
			continue
		}
		child := cur.children[c]
		if child != nil && child.typ == tSymlink {
			if follows++; follows > maxFollows {
				return nil, "", errLinkLoop
			}
			if strings.HasPrefix(child.link, "/") {
				stack, cur = stack[:0], s.root
			}
			if rest == "" {
				rest = child.link
			} else {
				rest = child.link + "/" + rest
			}
			continue
		}
		if child == nil || child.typ != tDir {
			if !create {
				return nil, "", nil
			}
			cp := pathOf(stack, c)
			s.touch(cp, child)
			if child != nil {
				s.cause = WasteCause{Layer: s.layer, Action: CauseReplaced, Path: cp}
				s.drop(child, cp)
				delete(cur.children, c)
			}
			child = &node{typ: tDir, meta: meta{mode: 0o755}, children: map[string]*node{}}
			if err := s.put(cur, c, child); err != nil {
				return nil, "", err
			}
		}
		if len(stack) >= maxDepth {
			return nil, "", errTooDeep
		}
		stack = append(stack, frame{child, c})
		cur = child
	}
	if follows == 0 {
		return cur, p, nil // p is clean, so it is the real path
	}
	return cur, pathOf(stack, ""), nil
}

// frame is a directory entered while resolving a path.
type frame struct {
	n    *node
	name string
}

// pathOf joins the names of the stack and then last, if not empty.
func pathOf(stack []frame, last string) string {
	var b strings.Builder
	for _, f := range stack {
		if b.Len() > 0 {
			b.WriteByte('/')
		}
		b.WriteString(f.name)
	}
	if last != "" {
		if b.Len() > 0 {
			b.WriteByte('/')
		}
		b.WriteString(last)
	}
	return b.String()
}

// resolveEntry finds the entry at p without following a final symlink, as
// link(2) does; nil if there is none.
func (s *state) resolveEntry(p string) *node {
	if p == "" {
		return s.root
	}
	dir, name := split(p)
	parent, _, err := s.resolveDir(dir, false)
	if err != nil || parent == nil {
		return nil
	}
	return parent.children[name]
}

// lookup finds the entry at the real path p, following no links.
func (s *state) lookup(p string) *node {
	n := s.root
	for p != "" {
		c, rest, _ := strings.Cut(p, "/")
		if n.children == nil {
			return nil
		}
		if n = n.children[c]; n == nil {
			return nil
		}
		p = rest
	}
	return n
}

// clone copies the filesystem, keeping hardlinked paths linked.
func (s *state) clone() *state {
	inodes := map[*inode]*inode{}
	var cp func(n *node) *node
	cp = func(n *node) *node {
		c := *n
		if n.ino != nil {
			ci, ok := inodes[n.ino]
			if !ok {
				v := *n.ino
				ci = &v
				inodes[n.ino] = ci
			}
			c.ino = ci
		}
		if n.children != nil {
			c.children = make(map[string]*node, len(n.children))
			for name, ch := range n.children {
				c.children[name] = cp(ch)
			}
		}
		return &c
	}
	return &state{root: cp(s.root), nodes: s.nodes, maxPaths: s.maxPaths, layer: s.layer, live: s.live}
}
