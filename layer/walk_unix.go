//go:build linux || darwin

package layer

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"github.com/moby/patternmatcher"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/lading-oci/lading/errdef"
	digest "github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

// fileID identifies an inode, to find the names of a hard-linked file.
type fileID struct{ dev, ino uint64 }

// fsWalker walks a directory tree and writes it, or the part of it that
// differs from a base Tree, to a packer.
type fsWalker struct {
	ctx    context.Context
	root   string
	rootFd int
	p      *packer
	opts   Options
	clamp  time.Time
	diff   *DiffOptions // nil when creating a whole layer

	links map[fileID]string
	bufp  *[]byte
	xbuf  []byte
	pax   map[string]string
	hdr   tar.Header

	// pending holds the headers of the directories on the current path
	// that are unchanged; they are written only when something below them
	// is. Headers before flushed are already written.
	pending []tar.Header
	flushed int

	// excl holds Options.Exclude; nil when nothing is excluded.
	excl *patternmatcher.PatternMatcher
}

// fsEntry is one directory entry as found on disk.
type fsEntry struct {
	rel    string // path from the root, without trailing slash
	st     unix.Stat_t
	fd     int // open descriptor of a regular file or directory, else -1
	target string
	xattrs map[string]string
	// excluded marks a directory left out that is walked only for
	// exceptions below it: it is written only if one is.
	excluded bool
}

func newFSWalker(ctx context.Context, dir string, p *packer, opts Options) (*fsWalker, error) {
	fd, err := openNoEINTR(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("layer: opening directory %s: %w", dir, mapErrno(err))
	}
	w := &fsWalker{
		ctx:    ctx,
		root:   dir,
		rootFd: fd,
		p:      p,
		opts:   opts,
		links:  make(map[fileID]string),
		bufp:   copyBufPool.Get().(*[]byte),
		xbuf:   make([]byte, 1024),
	}
	if opts.Timestamp != nil {
		w.clamp = opts.Timestamp.Truncate(time.Second)
	}
	if len(opts.Exclude) > 0 {
		pm, err := patternmatcher.New(opts.Exclude)
		if err != nil {
			unix.Close(fd)
			return nil, fmt.Errorf("layer: exclude patterns: %w: %v", errdef.ErrInvalid, err)
		}
		w.excl = pm
	}
	return w, nil
}

// excluded reports whether the entry at rel is left out, and, for a
// directory, whether the walk must still look inside it for exceptions.
func (w *fsWalker) excluded(rel string, dir bool) (skip, descend bool, err error) {
	if w.excl == nil {
		return false, false, nil
	}
	m, err := w.excl.MatchesOrParentMatches(rel)
	if err != nil {
		return false, false, fmt.Errorf("layer: exclude patterns on %s: %w", rel, err)
	}
	if !m {
		return false, false, nil
	}
	return true, dir && w.excl.Exclusions(), nil
}

func (w *fsWalker) close() {
	if w.bufp != nil {
		copyBufPool.Put(w.bufp)
		w.bufp = nil
	}
	if w.rootFd >= 0 {
		unix.Close(w.rootFd)
		w.rootFd = -1
	}
}

// create writes the whole tree.
func (w *fsWalker) create() error {
	return w.walkRoot(nil)
}

// walkRoot walks from the root directory, comparing with base when set.
func (w *fsWalker) walkRoot(base *node) error {
	var st unix.Stat_t
	if err := unix.Fstat(w.rootFd, &st); err != nil {
		return fmt.Errorf("layer: stat %s: %w", w.root, err)
	}
	// The walk closes the descriptor it is given.
	fd, err := unix.Dup(w.rootFd)
	if err != nil {
		return fmt.Errorf("layer: %s: %w", w.root, err)
	}
	unix.CloseOnExec(fd)
	return w.walkDir(fd, "", w.mtime(&st), base)
}

// walkDir writes the entries of the directory open at dirfd (which it
// closes), found at rel, depth first in byte order of names.
func (w *fsWalker) walkDir(dirfd int, rel string, mtime time.Time, base *node) error {
	f := os.NewFile(uintptr(dirfd), filepath.Join(w.root, rel))
	defer f.Close()
	ents, err := f.ReadDir(-1)
	if err != nil {
		return fmt.Errorf("layer: reading directory %s: %w", f.Name(), err)
	}
	slices.SortFunc(ents, func(a, b os.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	prefix := ""
	if rel != "" {
		prefix = rel + "/"
	}

	if base != nil && len(base.children) > 0 {
		var err error
		if base, err = w.whiteouts(ents, prefix, mtime, base); err != nil {
			return err
		}
	}

	for _, de := range ents {
		if err := w.ctx.Err(); err != nil {
			return err
		}
		name := de.Name()
		if w.diff != nil && strings.HasPrefix(name, WhiteoutPrefix) {
			return fmt.Errorf("layer: %s: %w: a directory compared with a base cannot hold whiteout names", filepath.Join(w.root, prefix+name), errdef.ErrInvalid)
		}
		var bc *node
		if base != nil {
			bc = base.children[name]
		}
		skip, descend, err := w.excluded(prefix+name, de.IsDir())
		if err != nil {
			return err
		}
		if skip && !descend {
			continue
		}
		e, ok, err := w.open(dirfd, de, prefix+name)
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		e.excluded = skip
		if err := w.entry(&e, bc); err != nil {
			if e.fd >= 0 {
				unix.Close(e.fd)
			}
			return err
		}
	}
	return nil
}

// entry writes e (if it is new or changed from bc) and, for a directory,
// walks it. It closes e.fd.
func (w *fsWalker) entry(e *fsEntry, bc *node) error {
	if e.st.Mode&unix.S_IFMT != unix.S_IFDIR {
		var err error
		if bc == nil || bc.Type == tar.TypeDir {
			err = w.emit(e, nil)
		} else {
			var changed bool
			if changed, err = w.changed(e, bc); err == nil && changed {
				err = w.emit(e, bc)
			}
		}
		if e.fd >= 0 {
			unix.Close(e.fd)
			e.fd = -1
		}
		return err
	}
	var sub *node
	if bc != nil && bc.Type == tar.TypeDir {
		sub = bc
	}
	hdr := w.header(e, sub)
	depth := len(w.pending)
	changed := !e.excluded
	if sub != nil && !e.excluded {
		var err error
		if changed, err = w.changed(e, sub); err != nil {
			return err
		}
	}
	if changed {
		if err := w.flush(); err != nil {
			return err
		}
		if err := w.writeHeader(hdr); err != nil {
			return err
		}
		// A written directory stands in the path as a flushed level.
		w.pending = append(w.pending, tar.Header{})
		w.flushed = len(w.pending)
	} else {
		h := *hdr
		h.PAXRecords = maps.Clone(hdr.PAXRecords)
		w.pending = append(w.pending, h)
	}
	fd := e.fd
	e.fd = -1
	err := w.walkDir(fd, e.rel, hdr.ModTime, sub)
	w.pending = w.pending[:depth]
	w.flushed = min(w.flushed, depth)
	return err
}

// flush writes the headers of the unchanged directories above an entry
// about to be written.
func (w *fsWalker) flush() error {
	for ; w.flushed < len(w.pending); w.flushed++ {
		if err := w.writeHeader(&w.pending[w.flushed]); err != nil {
			return err
		}
	}
	return nil
}

// whiteouts writes the whiteouts of a directory that exists both in the
// base and on disk, before its other entries. It returns the base to
// compare the entries with: nil after an opaque whiteout.
func (w *fsWalker) whiteouts(ents []os.DirEntry, prefix string, mtime time.Time, base *node) (*node, error) {
	var gone []string
	kept := 0
	for name, c := range base.children {
		i, found := slices.BinarySearchFunc(ents, name, func(de os.DirEntry, n string) int { return strings.Compare(de.Name(), n) })
		switch {
		case !found && w.diff.Rootless && (c.Type == tar.TypeChar || c.Type == tar.TypeBlock):
			kept++ // a rootless unpack does not make device nodes
		case !found:
			gone = append(gone, name)
		case c.Type == tar.TypeDir && !ents[i].IsDir():
			// A directory replaced by something else is removed whole
			// first, so no applier has to unlink a directory.
			gone = append(gone, name)
			kept++
		default:
			kept++
		}
	}
	if len(gone) == 0 {
		return base, nil
	}
	if err := w.flush(); err != nil {
		return nil, err
	}
	if kept == 0 && w.diff.OpaqueWhiteouts {
		return nil, w.writeWhiteout(prefix+OpaqueWhiteout, mtime)
	}
	slices.Sort(gone)
	for _, name := range gone {
		if err := w.writeWhiteout(prefix+WhiteoutPrefix+name, mtime); err != nil {
			return nil, err
		}
	}
	return base, nil
}

func (w *fsWalker) writeWhiteout(name string, mtime time.Time) error {
	return w.writeHeader(&tar.Header{
		Typeflag: tar.TypeReg,
		Name:     name,
		Mode:     0o644,
		ModTime:  mtime,
	})
}

// open finds what the directory entry de is. Regular files and
// directories are opened and stat'ed through the descriptor; other types are
// stat'ed by name. ok is false for entries that are not archived (sockets).
func (w *fsWalker) open(dirfd int, de os.DirEntry, rel string) (e fsEntry, ok bool, err error) {
	e.rel = rel
	e.fd = -1
	name := de.Name()
	t := de.Type()
	if t.IsRegular() || t.IsDir() {
		flags := unix.O_RDONLY | unix.O_NOFOLLOW | unix.O_CLOEXEC | unix.O_NONBLOCK
		if t.IsDir() {
			flags |= unix.O_DIRECTORY
		}
		fd, err := openatNoEINTR(dirfd, name, flags)
		if err == nil {
			if err := unix.Fstat(fd, &e.st); err != nil {
				unix.Close(fd)
				return e, false, w.pathErr("stat", rel, err)
			}
			typ := e.st.Mode & unix.S_IFMT
			if typ == unix.S_IFREG || typ == unix.S_IFDIR {
				e.fd = fd
			} else {
				unix.Close(fd)
			}
		} else if err != unix.ELOOP && err != unix.ENOTDIR {
			return e, false, w.pathErr("open", rel, err)
		}
	}
	if e.fd < 0 {
		// Not opened: some other type, or one that changed since the
		// directory was read.
		if err := unix.Fstatat(dirfd, name, &e.st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return e, false, w.pathErr("stat", rel, err)
		}
		switch e.st.Mode & unix.S_IFMT {
		case unix.S_IFSOCK:
			return e, false, nil
		case unix.S_IFREG, unix.S_IFDIR:
			return w.open(dirfd, statDirEntry{de, uint32(e.st.Mode)}, rel)
		case unix.S_IFLNK:
			if e.target, err = w.readlink(dirfd, name); err != nil {
				return e, false, w.pathErr("readlink", rel, err)
			}
		}
	}
	if e.xattrs, err = w.readXattrs(&e); err != nil {
		if e.fd >= 0 {
			unix.Close(e.fd)
		}
		return e, false, err
	}
	return e, true, nil
}

// statDirEntry corrects the type of a directory entry found by stat.
type statDirEntry struct {
	os.DirEntry
	mode uint32
}

func (d statDirEntry) Type() os.FileMode {
	if d.mode&unix.S_IFMT == unix.S_IFDIR {
		return os.ModeDir
	}
	return 0
}

func (w *fsWalker) pathErr(op, rel string, err error) error {
	return fmt.Errorf("layer: %s %s: %w", op, filepath.Join(w.root, rel), mapErrno(err))
}

func (w *fsWalker) readlink(dirfd int, name string) (string, error) {
	buf := w.xbuf
	for {
		n, err := unix.Readlinkat(dirfd, name, buf)
		if err != nil {
			return "", err
		}
		if n < len(buf) {
			return string(buf[:n]), nil
		}
		buf = make([]byte, 2*len(buf))
		w.xbuf = buf
	}
}

// readXattrs reads the extended attributes of e, through its descriptor
// when it has one. Filesystems without them give none.
func (w *fsWalker) readXattrs(e *fsEntry) (map[string]string, error) {
	var path string
	list := func(buf []byte) (int, error) {
		if e.fd >= 0 {
			return unix.Flistxattr(e.fd, buf)
		}
		if path == "" {
			path = filepath.Join(w.root, e.rel)
		}
		return unix.Llistxattr(path, buf)
	}
	get := func(attr string, buf []byte) (int, error) {
		if e.fd >= 0 {
			return unix.Fgetxattr(e.fd, attr, buf)
		}
		return unix.Lgetxattr(path, attr, buf)
	}
	n, err := growing(&w.xbuf, list)
	if err != nil {
		if ignoreXattrErr(err) {
			return nil, nil
		}
		return nil, w.pathErr("listxattr", e.rel, err)
	}
	if n == 0 {
		return nil, nil
	}
	names := string(w.xbuf[:n])
	xattrs := make(map[string]string)
	for attr := range strings.SplitSeq(strings.TrimSuffix(names, "\x00"), "\x00") {
		if attr == "" {
			continue
		}
		var vbuf []byte
		m, err := growing(&vbuf, func(b []byte) (int, error) { return get(attr, b) })
		if err != nil {
			if err == unix.ENODATA || ignoreXattrErr(err) {
				continue // removed since it was listed, or not readable here
			}
			return nil, w.pathErr("getxattr "+attr, e.rel, err)
		}
		xattrs[attr] = string(vbuf[:m])
	}
	return xattrs, nil
}

func ignoreXattrErr(err error) bool {
	return err == unix.ENOTSUP || err == unix.EOPNOTSUPP || err == unix.ENOSYS
}

// growing calls f with *buf, enlarging it while the result does not fit.
func growing(buf *[]byte, f func([]byte) (int, error)) (int, error) {
	if len(*buf) == 0 {
		*buf = make([]byte, 256)
	}
	for {
		n, err := f(*buf)
		if err == unix.ERANGE {
			size, err := f(nil)
			if err != nil {
				return 0, err
			}
			*buf = make([]byte, max(size, 2*len(*buf)))
			continue
		}
		return n, err
	}
}

// mtime is the modification time written for st: whole seconds, clamped.
func (w *fsWalker) mtime(st *unix.Stat_t) time.Time {
	sec, _ := st.Mtim.Unix()
	t := time.Unix(sec, 0)
	if w.opts.Timestamp != nil && t.After(w.clamp) {
		return w.clamp
	}
	return t
}

func (w *fsWalker) owner(st *unix.Stat_t) (uid, gid int) {
	uid, gid = int(st.Uid), int(st.Gid)
	if w.opts.UID != nil {
		uid = *w.opts.UID
	}
	if w.opts.GID != nil {
		gid = *w.opts.GID
	}
	return uid, gid
}

func typeflag(st *unix.Stat_t) byte {
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		return tar.TypeDir
	case unix.S_IFLNK:
		return tar.TypeSymlink
	case unix.S_IFCHR:
		return tar.TypeChar
	case unix.S_IFBLK:
		return tar.TypeBlock
	case unix.S_IFIFO:
		return tar.TypeFifo
	}
	return tar.TypeReg
}

// header fills the walker's reusable header for e, whose entry in the
// base is bc (nil if none).
func (w *fsWalker) header(e *fsEntry, bc *node) *tar.Header {
	uid, gid := w.owner(&e.st)
	if w.diff != nil && w.diff.Rootless {
		// The owners on disk are the unpacking user's, not the image's.
		uid, gid = 0, 0
		if w.opts.UID != nil {
			uid = *w.opts.UID
		}
		if w.opts.GID != nil {
			gid = *w.opts.GID
		}
		if bc != nil {
			uid, gid = bc.UID, bc.GID
		}
	}
	typ := typeflag(&e.st)
	h := tar.Header{
		Typeflag: typ,
		Name:     e.rel,
		Mode:     int64(e.st.Mode & 0o7777),
		Uid:      uid,
		Gid:      gid,
		ModTime:  w.mtime(&e.st),
	}
	switch typ {
	case tar.TypeDir:
		h.Name += "/"
	case tar.TypeReg:
		h.Size = e.st.Size
	case tar.TypeSymlink:
		h.Linkname = e.target
	case tar.TypeChar, tar.TypeBlock:
		rdev := uint64(e.st.Rdev)
		h.Devmajor = int64(unix.Major(rdev))
		h.Devminor = int64(unix.Minor(rdev))
	}
	if len(e.xattrs) > 0 {
		if w.pax == nil {
			w.pax = make(map[string]string, len(e.xattrs))
		}
		clear(w.pax)
		for k, v := range e.xattrs {
			w.pax[paxXattr+k] = v
		}
		h.PAXRecords = w.pax
	}
	w.hdr = h
	return &w.hdr
}

func (w *fsWalker) writeHeader(h *tar.Header) error {
	if err := w.p.tw.WriteHeader(h); err != nil {
		return fmt.Errorf("layer: writing header of %s: %w", h.Name, err)
	}
	return nil
}

// emit writes a non-directory entry: a hard link to a name already
// written, or the entry itself with its content.
func (w *fsWalker) emit(e *fsEntry, bc *node) error {
	if err := w.flush(); err != nil {
		return err
	}
	hdr := w.header(e, bc)
	var id fileID
	hardlinked := e.st.Nlink > 1
	if hardlinked {
		id = fileID{uint64(e.st.Dev), uint64(e.st.Ino)}
		if first, ok := w.links[id]; ok {
			hdr.Typeflag = tar.TypeLink
			hdr.Linkname = first
			hdr.Size = 0
			hdr.Devmajor, hdr.Devminor = 0, 0
			hdr.PAXRecords = nil // the inode's, written with the first name
			return w.writeHeader(hdr)
		}
	}
	if err := w.writeHeader(hdr); err != nil {
		return err
	}
	if hdr.Typeflag == tar.TypeReg {
		if err := w.copyFile(e, w.p.tw); err != nil {
			return err
		}
	}
	if hardlinked {
		w.links[id] = e.rel
	}
	return nil
}

// copyFile reads the content of the regular file e into dst, failing if
// the file is not exactly as long as it was when stat'ed.
func (w *fsWalker) copyFile(e *fsEntry, dst interface{ Write([]byte) (int, error) }) error {
	buf := *w.bufp
	remaining := e.st.Size
	for {
		// Ask for one byte more than is left: a regular file returns less
		// only at its end, so a full answer means the file grew.
		want := len(buf)
		if remaining+1 < int64(want) {
			want = int(remaining + 1)
		}
		if w.ctx != nil {
			if err := w.ctx.Err(); err != nil {
				return err
			}
		}
		n, err := readNoEINTR(e.fd, buf[:want])
		if err != nil {
			return w.pathErr("read", e.rel, err)
		}
		if n == 0 {
			if remaining > 0 {
				return fmt.Errorf("layer: %s: %w: file shrank by %d bytes while being read", filepath.Join(w.root, e.rel), errdef.ErrSizeMismatch, remaining)
			}
			return nil
		}
		if int64(n) > remaining {
			return fmt.Errorf("layer: %s: %w: file grew while being read", filepath.Join(w.root, e.rel), errdef.ErrSizeMismatch)
		}
		if _, err := dst.Write(buf[:n]); err != nil {
			return fmt.Errorf("layer: writing %s: %w", e.rel, err)
		}
		remaining -= int64(n)
		if remaining == 0 && n < want {
			return nil
		}
	}
}

// contentDigest hashes the regular file e and rewinds it.
func (w *fsWalker) contentDigest(e *fsEntry) (digest.Digest, error) {
	h := sha256.New()
	if err := w.copyFile(e, h); err != nil {
		return "", err
	}
	if _, err := unix.Seek(e.fd, 0, 0); err != nil {
		return "", w.pathErr("seek", e.rel, err)
	}
	return digest.NewDigestFromBytes(digest.SHA256, h.Sum(nil)), nil
}

// changed reports whether e differs from the base entry bc in anything a
// layer carries but the modification time.
func (w *fsWalker) changed(e *fsEntry, bc *node) (bool, error) {
	typ := typeflag(&e.st)
	if typ != bc.Type {
		return true, nil
	}
	if typ != tar.TypeSymlink && int64(e.st.Mode&0o7777) != bc.Mode&0o7777 {
		return true, nil
	}
	if !w.diff.Rootless {
		uid, gid := w.owner(&e.st)
		if uid != bc.UID || gid != bc.GID {
			return true, nil
		}
	}
	if !w.diff.IgnoreXattrs && !maps.Equal(e.xattrs, bc.Xattrs) {
		return true, nil
	}
	switch typ {
	case tar.TypeSymlink:
		return e.target != bc.Linkname, nil
	case tar.TypeChar, tar.TypeBlock:
		rdev := uint64(e.st.Rdev)
		return int64(unix.Major(rdev)) != bc.Devmajor || int64(unix.Minor(rdev)) != bc.Devminor, nil
	case tar.TypeReg:
		if e.st.Size != bc.Size {
			return true, nil
		}
		d, err := w.contentDigest(e)
		if err != nil {
			return false, err
		}
		return d != bc.Digest, nil
	}
	return false, nil
}

func openNoEINTR(path string, flags int) (int, error) {
	for {
		fd, err := unix.Open(path, flags, 0)
		if err != unix.EINTR {
			return fd, err
		}
	}
}

func openatNoEINTR(dirfd int, name string, flags int) (int, error) {
	for {
		fd, err := unix.Openat(dirfd, name, flags, 0)
		if err != unix.EINTR {
			return fd, err
		}
	}
}

func readNoEINTR(fd int, b []byte) (int, error) {
	for {
		n, err := unix.Read(fd, b)
		if err != unix.EINTR {
			return n, err
		}
	}
}

// mapErrno makes errno values match the errdef and io/fs sentinels.
func mapErrno(err error) error {
	var errno unix.Errno
	if errors.As(err, &errno) && errno == unix.ENOENT {
		return fmt.Errorf("%w%.0w", err, errdef.ErrNotFound)
	}
	return err
}
