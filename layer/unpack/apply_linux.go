package unpack

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/lading-oci/lading/errdef"
	"github.com/lading-oci/lading/layer"
	"github.com/opencontainers/go-digest"
)

// Apply applies the layer blob r (gzip, zstd or plain tar) to the directory
// root, creating root if it does not exist, as image-spec layer.md
// describes: additions and modifications are extracted, ".wh.NAME" removes
// NAME from lower layers, ".wh..wh..opq" removes every lower-layer child of
// its directory (wherever it appears in the archive; entries of the same
// layer stay), a directory over a directory merges and takes the entry's
// attributes, and anything else over an existing path replaces it.
//
// Nothing outside root is ever created, changed or removed (see the package
// documentation for how names are checked and symlinks resolved). Errors
// name the layer entry and the reason and wrap an errdef category:
// ErrUnsafePath for a refused name, ErrInvalid for a malformed or truncated
// archive, ErrTooLarge when MaxBytes is exceeded, ErrDigestMismatch when the
// stream does not hash to DiffID. On error, root holds the entries applied
// so far.
//
// Ownership is applied when the process runs as root and opts.Rootless is
// false; device nodes are made only then too. Directory modes and times are
// applied once the whole layer is written, so that writing their contents
// does not disturb them.
func Apply(ctx context.Context, root string, r io.Reader, opts Options) (Stats, error) {
	var st Stats
	if err := checkDiffID(opts.DiffID); err != nil {
		return st, err
	}
	if err := opts.checkMaxBytes(); err != nil {
		return st, err
	}
	rt, err := openRoot(root)
	if err != nil {
		return st, err
	}
	defer rt.Close()

	dr, _, err := layer.Decompress(r)
	if err != nil {
		return st, err
	}
	var alg digest.Algorithm
	if opts.DiffID != "" {
		alg = opts.DiffID.Algorithm()
	}
	src := source{r: dr, close: func() { dr.Close() }}
	s := newStream(ctx, func() (source, error) { return src, nil }, opts.MaxBytes, alg, nil, 0)
	defer s.stop()
	return applyStream(ctx, rt, s, opts)
}

// openRoot makes root if needed and opens it.
func openRoot(root string) (*os.Root, error) {
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, fmt.Errorf("apply layer: %w", err)
	}
	rt, err := os.OpenRoot(root)
	if err != nil {
		return nil, fmt.Errorf("apply layer: %w", err)
	}
	return rt, nil
}

// applyStream writes the layer read by s into rt and checks its diff_id.
func applyStream(ctx context.Context, rt *os.Root, s *stream, opts Options) (Stats, error) {
	a := newApplier(rt, opts)
	defer a.close()
	if err := a.run(ctx, tar.NewReader(s)); err != nil {
		s.stop() // the producer writes total until it has stopped
		a.st.Bytes = s.total
		return a.st, err
	}
	if err := s.drain(); err != nil {
		a.st.Bytes = s.total
		return a.st, err
	}
	a.st.Bytes = s.total
	if opts.DiffID != "" && s.sum != opts.DiffID {
		return a.st, diffIDMismatch(opts.DiffID, s.sum)
	}
	return a.st, nil
}

// checkDiffID refuses a malformed expected diff_id; empty means none.
func checkDiffID(d digest.Digest) error {
	if d == "" {
		return nil
	}
	if err := d.Validate(); err != nil {
		return fmt.Errorf("diff_id %q: %w: %v", d, errdef.ErrInvalid, err)
	}
	return nil
}

// diffIDMismatch is the error for a layer that does not hash to its diff_id.
func diffIDMismatch(want, got digest.Digest) error {
	return fmt.Errorf("layer diff_id: %w: expected %s, got %s", errdef.ErrDigestMismatch, want, got)
}

// maxHandles bounds the directory handles kept open.
const maxHandles = 128

// maxSymlinks bounds symlink expansions while resolving one path, like the
// kernel's ELOOP limit.
const maxSymlinks = 40

type deferredDir struct {
	entry        string // layer entry name, for errors
	path         string // resolved path in root
	mode         os.FileMode
	atime, mtime time.Time
	valid        bool
	// keepTimes leaves the times alone: a directory whose mode is only
	// put back.
	keepTimes bool
}

type dirHandle struct {
	root  *os.Root
	fd    *os.File // opened lazily, for the calls os.Root lacks
	rawfd int      // fd's descriptor once dirFD has been called, else 0
	acl   bool     // the directory has a default ACL
}

type applier struct {
	root     *os.Root
	log      *slog.Logger
	rootless bool
	chown    bool // apply ownership
	mknod    bool // make device nodes

	st Stats

	// lex maps a lexical directory name of the archive to the resolved path
	// of the real directory it names (no symlinks). Cleared when a directory
	// or a traversed symlink is removed.
	lex map[string]string
	// traversed holds the resolved paths of symlinks followed while filling
	// lex, so their removal can invalidate it.
	traversed map[string]struct{}
	// handles caches an os.Root per resolved directory.
	handles map[string]*dirHandle
	// upper holds the resolved paths written by this layer and their
	// ancestors: whiteouts only remove what is not in it.
	upper map[string]struct{}
	dirs  []deferredDir
	// fresh holds directories made by this layer; touched the original
	// times of older directories whose contents this layer changed, put
	// back at the end so a directory without an entry keeps its times.
	fresh   map[string]struct{}
	touched map[string][2]time.Time

	buf          *[]byte
	warnedNotSup bool
	// acl is set once the layer gives a directory a default ACL: from then
	// on every file's mode is set explicitly.
	acl bool
	// umask is the process umask when the layer started.
	umask uint32

	// unlock is set in rootless mode without root privileges, where the
	// permission bits the layers record (a 0555 or 0000 directory) would
	// stop the owner from writing into or through a directory. Such a
	// directory is given u+rwx while the layer is applied and its mode put
	// back at the end (see access); open records the directories checked
	// this layer, and locked their recorded modes.
	unlock bool
	open   map[string]struct{}
	locked map[string]os.FileMode
}

func newApplier(rt *os.Root, opts Options) *applier {
	log := opts.logger()
	priv := !opts.Rootless && os.Geteuid() == 0
	return &applier{
		root:      rt,
		log:       log,
		rootless:  opts.Rootless,
		chown:     priv,
		mknod:     priv,
		lex:       map[string]string{".": "."},
		traversed: map[string]struct{}{},
		handles:   map[string]*dirHandle{},
		upper:     map[string]struct{}{},
		fresh:     map[string]struct{}{},
		touched:   map[string][2]time.Time{},
		buf:       bufPool.Get().(*[]byte),
		umask:     processUmask(),
		unlock:    opts.Rootless && os.Geteuid() != 0,
		open:      map[string]struct{}{},
		locked:    map[string]os.FileMode{},
	}
}

func (a *applier) close() {
	for k, h := range a.handles {
		h.close(a.root)
		delete(a.handles, k)
	}
	if a.buf != nil {
		bufPool.Put(a.buf)
		a.buf = nil
	}
}

func (h *dirHandle) close(top *os.Root) {
	if h.fd != nil {
		h.fd.Close()
	}
	if h.root != top {
		h.root.Close()
	}
}

func (a *applier) run(ctx context.Context, tr *tar.Reader) error {
	last := ""
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if errors.Is(err, tar.ErrInsecurePath) && hdr != nil {
			// Only with GODEBUG=tarinsecurepath=0; the name is checked below.
			err = nil
		}
		if err != nil {
			return a.readErr(err, last)
		}
		last = hdr.Name
		if err := a.entry(hdr, tr); err != nil {
			return err
		}
	}
	return a.finish()
}

// readErr turns an error from the tar reader into one naming where it
// happened.
func (a *applier) readErr(err error, last string) error {
	where := "at the start of the layer"
	if last != "" {
		where = fmt.Sprintf("after layer entry %q", last)
	}
	switch {
	case errors.Is(err, errdef.ErrTooLarge), errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%s: %w", where, err)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("%s: %w: truncated layer", where, errdef.ErrInvalid)
	case errors.Is(err, tar.ErrHeader), errors.Is(err, tar.ErrFieldTooLong), errors.Is(err, tar.ErrInsecurePath):
		return fmt.Errorf("%s: %w: %v", where, errdef.ErrInvalid, err)
	}
	var re *readError
	if errors.As(err, &re) {
		return fmt.Errorf("%s: %w", where, err)
	}
	// Anything else is a format error of the archive.
	return fmt.Errorf("%s: %w: %v", where, errdef.ErrInvalid, err)
}

// cleanName validates and normalises an archive path: leading slashes are
// stripped, "." components dropped, ".." refused. It returns "." for the
// root itself.
func cleanName(name string) (string, error) {
	if strings.IndexByte(name, 0) >= 0 {
		return "", fmt.Errorf("%w: name contains a NUL byte", errdef.ErrInvalid)
	}
	for _, c := range strings.Split(name, "/") {
		if c == ".." {
			return "", fmt.Errorf("%w: name has a \"..\" component", errdef.ErrUnsafePath)
		}
	}
	c := path.Clean("/" + name)
	if c == "/" {
		return ".", nil
	}
	return c[1:], nil
}

func entryErr(name string, err error) error {
	return fmt.Errorf("layer entry %q: %w", name, err)
}

func (a *applier) entry(hdr *tar.Header, body io.Reader) error {
	switch hdr.Typeflag {
	case tar.TypeXGlobalHeader:
		return nil
	}
	name, err := cleanName(hdr.Name)
	if err != nil {
		return entryErr(hdr.Name, err)
	}
	if name == "." {
		if hdr.Typeflag != tar.TypeDir {
			return entryErr(hdr.Name, fmt.Errorf("%w: the root can only be a directory", errdef.ErrUnsafePath))
		}
		return a.rootDir(hdr)
	}
	dir, base := path.Split(name)
	dir = path.Clean("/" + dir)[1:]
	if dir == "" {
		dir = "."
	}
	if strings.HasPrefix(base, layer.WhiteoutPrefix) {
		if err := a.whiteout(dir, base); err != nil {
			return entryErr(hdr.Name, err)
		}
		return nil
	}
	switch hdr.Typeflag {
	case tar.TypeReg, tar.TypeGNUSparse, tar.TypeCont:
		err = a.file(hdr, dir, base, body)
	case tar.TypeDir:
		err = a.dir(hdr, dir, base, name)
	case tar.TypeSymlink:
		err = a.symlink(hdr, dir, base)
	case tar.TypeLink:
		err = a.hardlink(hdr, dir, base)
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		err = a.special(hdr, dir, base)
	default:
		err = fmt.Errorf("%w: tar type %q", errdef.ErrUnsupported, hdr.Typeflag)
	}
	if err != nil {
		return entryErr(hdr.Name, err)
	}
	return nil
}

// ---- path resolution ----

func join(dir, base string) string {
	if dir == "." {
		return base
	}
	return dir + "/" + base
}

func parentOf(p string) string {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[:i]
	}
	return "."
}

// handle returns an os.Root on the resolved directory dir. It is opened
// from its parent's handle (one openat) rather than from the top (one per
// component); a handle in the cache is never stale, since removing a
// directory drops the handles below it.
func (a *applier) handle(dir string) (*dirHandle, error) {
	if h, ok := a.handles[dir]; ok {
		return h, nil
	}
	var h *dirHandle
	if dir == "." {
		h = &dirHandle{root: a.root}
	} else {
		ph, err := a.handle(parentOf(dir))
		if err != nil {
			return nil, err
		}
		r, err := ph.root.OpenRoot(dir[strings.LastIndexByte(dir, '/')+1:])
		if err != nil {
			return nil, err
		}
		h = &dirHandle{root: r}
	}
	if len(a.handles) >= maxHandles {
		for k, o := range a.handles {
			o.close(a.root)
			delete(a.handles, k)
		}
	}
	a.handles[dir] = h
	return h, nil
}

// openDir opens the resolved directory p through its parent's handle. A
// symlink found at p (put there since p was resolved) is not followed.
func (a *applier) openDir(p string) (*os.File, error) {
	if p == "." {
		return a.root.OpenFile(".", os.O_RDONLY|dirFlag, 0)
	}
	ph, err := a.handle(parentOf(p))
	if err != nil {
		return nil, err
	}
	pfd, _, err := ph.dirFD()
	if err != nil {
		return nil, err
	}
	return openDirAt(pfd, p[strings.LastIndexByte(p, '/')+1:])
}

// dirFile returns an open descriptor of the directory behind h.
func (h *dirHandle) dirFile() (*os.File, error) {
	if h.fd == nil {
		f, err := h.root.OpenFile(".", os.O_RDONLY|dirFlag, 0)
		if err != nil {
			return nil, err
		}
		h.fd = f
	}
	return h.fd, nil
}

// dirFD returns the raw descriptor of the directory behind h, and whether
// the directory has a default ACL (which, not the umask, then decides the
// modes of files made in it).
func (h *dirHandle) dirFD() (int, bool, error) {
	if h.rawfd <= 0 {
		f, err := h.dirFile()
		if err != nil {
			return -1, false, err
		}
		h.rawfd = int(f.Fd())
		h.acl = hasDefaultACL(h.rawfd)
	}
	return h.rawfd, h.acl, nil
}

// resolve returns the real directory that the lexical directory name lex
// denotes, following symlinks with chroot semantics. With create, missing
// directories are made (mode 0755); without, a missing one is an error
// satisfying isNotExist.
func (a *applier) resolve(lex string, create bool) (string, error) {
	if r, ok := a.lex[lex]; ok {
		return r, nil
	}
	parent, err := a.resolve(parentOf(lex), create)
	if err != nil {
		return "", err
	}
	base := lex[strings.LastIndexByte(lex, '/')+1:]
	links := 0
	r, err := a.step(parent, base, create, &links)
	if err != nil {
		return "", err
	}
	a.lex[lex] = r
	return r, nil
}

// step resolves one component name inside the real directory dir.
func (a *applier) step(dir, name string, create bool, links *int) (string, error) {
	switch name {
	case "", ".":
		return dir, nil
	case "..":
		return parentOf(dir), nil // parentOf(".") is "."
	}
	if err := a.access(dir); err != nil {
		return "", err
	}
	h, err := a.handle(dir)
	if err != nil {
		return "", err
	}
	next := join(dir, name)
	fi, err := h.root.Lstat(name)
	switch {
	case err != nil && isNotExist(err) && create:
		if err := h.root.Mkdir(name, 0o755); err != nil && !isExist(err) {
			return "", err
		}
		a.fresh[next] = struct{}{}
		return next, nil
	case err != nil:
		return "", err
	case fi.IsDir():
		return next, nil
	case fi.Mode()&os.ModeSymlink != 0:
		*links++
		if *links > maxSymlinks {
			return "", &os.PathError{Op: "resolve", Path: next, Err: errTooManyLinks}
		}
		target, err := h.root.Readlink(name)
		if err != nil {
			return "", err
		}
		a.traversed[next] = struct{}{}
		cur := dir
		if strings.HasPrefix(target, "/") {
			cur = "."
		}
		for _, c := range strings.Split(target, "/") {
			if cur, err = a.step(cur, c, create, links); err != nil {
				return "", err
			}
		}
		return cur, nil
	default:
		return "", &os.PathError{Op: "resolve", Path: next, Err: errNotDir}
	}
}

var (
	errTooManyLinks = errors.New("too many levels of symbolic links")
	errNotDir       = errors.New("not a directory")
)

// ---- bookkeeping ----

// touch records the times of the resolved directory dir before this layer
// first changes its contents.
// parent resolves the directory an entry goes in (creating it if needed),
// returns its root-confined handle, and records its times so that writing
// into it does not change them.
func (a *applier) parent(dir string) (string, *dirHandle, error) {
	rp, err := a.resolve(dir, true)
	if err != nil {
		return "", nil, err
	}
	if err := a.access(rp); err != nil {
		return "", nil, err
	}
	h, err := a.handle(rp)
	if err != nil {
		return "", nil, err
	}
	a.touch(rp)
	return rp, h, nil
}

// access makes sure the owner can search, read and write the resolved
// directory dir and every directory above it, when unprivileged rootless
// mode needs that: a directory whose mode lacks some of u+rwx gets them
// until the end of the layer, when finish puts its mode back. Elsewhere it
// does nothing.
func (a *applier) access(dir string) error {
	if !a.unlock {
		return nil
	}
	if _, ok := a.open[dir]; ok {
		return nil
	}
	if dir != "." {
		if err := a.access(parentOf(dir)); err != nil {
			return err
		}
	}
	fi, err := a.root.Lstat(dir)
	if err != nil {
		if isNotExist(err) {
			return nil // made by the caller, with owner access
		}
		return err
	}
	if fi.IsDir() && fi.Mode().Perm()&0o700 != 0o700 {
		if err := a.root.Chmod(dir, fi.Mode()|0o700); err != nil {
			return fmt.Errorf("give the owner access to %q: %w", dir, err)
		}
		if _, ok := a.locked[dir]; !ok {
			a.locked[dir] = fi.Mode() & (os.ModePerm | os.ModeSetuid | os.ModeSetgid | os.ModeSticky)
		}
	}
	a.open[dir] = struct{}{}
	return nil
}

// removeAll removes name, a directory, in h. Unprivileged rootless mode
// first gives the owner access to directories below it that would
// otherwise stop the removal.
func (a *applier) removeAll(h *dirHandle, name string) error {
	err := h.root.RemoveAll(name)
	if err == nil || !a.unlock || !isPermission(err) {
		return err
	}
	if err := openTree(h.root, name); err != nil {
		return err
	}
	return h.root.RemoveAll(name)
}

func (a *applier) touch(dir string) {
	if _, ok := a.fresh[dir]; ok {
		return
	}
	if _, ok := a.touched[dir]; ok {
		return
	}
	fi, err := a.root.Lstat(dir)
	if err != nil || !fi.IsDir() {
		return
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return
	}
	a.touched[dir] = [2]time.Time{time.Unix(st.Atim.Unix()), fi.ModTime()}
}

func (a *applier) markUpper(p string) {
	for q := p; q != "."; q = parentOf(q) {
		if _, ok := a.upper[q]; ok && q != p {
			return
		}
		a.upper[q] = struct{}{}
	}
}

func under(p, prefix string) bool {
	return p == prefix || strings.HasPrefix(p, prefix+"/")
}

// removed records that the entry at resolved path p, of mode m, is gone.
func (a *applier) removed(p string, m os.FileMode) {
	switch {
	case m.IsDir():
		a.lex = map[string]string{".": "."}
		a.traversed = map[string]struct{}{}
		for k := range a.open {
			if under(k, p) {
				delete(a.open, k)
				delete(a.locked, k)
			}
		}
		for k, h := range a.handles {
			if under(k, p) {
				h.close(a.root)
				delete(a.handles, k)
			}
		}
		if _, ok := a.upper[p]; ok {
			for i := range a.dirs {
				if under(a.dirs[i].path, p) {
					a.dirs[i].valid = false
				}
			}
		}
	case m&os.ModeSymlink != 0:
		if _, ok := a.traversed[p]; ok {
			a.lex = map[string]string{".": "."}
			a.traversed = map[string]struct{}{}
		}
	}
}

// clear removes whatever is at name in h (resolved directory dir) so that
// a new entry can take its place. It reports whether the caller should
// retry creating the entry.
func (a *applier) clear(h *dirHandle, dir, name string) error {
	fi, err := h.root.Lstat(name)
	if err != nil {
		if isNotExist(err) {
			return nil
		}
		return err
	}
	if fi.IsDir() {
		err = a.removeAll(h, name)
	} else {
		err = h.root.Remove(name)
	}
	if err != nil {
		return fmt.Errorf("replace existing: %w", err)
	}
	a.removed(join(dir, name), fi.Mode())
	return nil
}

// ---- metadata ----

func fileMode(hdr *tar.Header) os.FileMode { return layer.PermMode(hdr.Mode) }

func times(hdr *tar.Header) (atime, mtime time.Time) {
	mtime = hdr.ModTime
	atime = hdr.AccessTime
	if atime.IsZero() {
		atime = mtime
	}
	return atime, mtime
}

// xattrs returns the SCHILY.xattr.* records of hdr.
func xattrs(hdr *tar.Header) map[string]string {
	var m map[string]string
	for k, v := range hdr.PAXRecords {
		if name, ok := strings.CutPrefix(k, "SCHILY.xattr."); ok && name != "" {
			if m == nil {
				m = map[string]string{}
			}
			m[name] = v
		}
	}
	return m
}

// setXattrs applies hdr's xattrs with set, skipping what the filesystem or
// an unprivileged user cannot store.
func (a *applier) setXattrs(hdr *tar.Header, special bool, set func(name string, value []byte) error) error {
	for name, value := range xattrs(hdr) {
		if name == "system.posix_acl_default" {
			a.acl = true
		}
		err := set(name, []byte(value))
		switch {
		case err == nil:
		case isNotSupported(err):
			lvl := slog.LevelDebug
			if !a.warnedNotSup {
				lvl, a.warnedNotSup = slog.LevelWarn, true
			}
			a.log.Log(context.Background(), lvl, "filesystem does not support xattr; skipped", "entry", hdr.Name, "xattr", name)
		case isPermission(err) && (special || (a.rootless && (strings.HasPrefix(name, "trusted.") || strings.HasPrefix(name, "security.")))):
			a.log.Debug("xattr refused; skipped", "entry", hdr.Name, "xattr", name, "error", err)
		default:
			return fmt.Errorf("set xattr %q: %w", name, err)
		}
	}
	return nil
}

func (a *applier) timesErr(hdr *tar.Header, err error) error {
	if errors.Is(err, errInvalidArg) {
		a.log.Debug("times out of range; left as is", "entry", hdr.Name)
		return nil
	}
	return fmt.Errorf("set times: %w", err)
}

// ---- entry kinds ----

func (a *applier) rootDir(hdr *tar.Header) error {
	a.st.Dirs++
	if a.chown {
		if err := a.root.Lchown(".", hdr.Uid, hdr.Gid); err != nil {
			return entryErr(hdr.Name, fmt.Errorf("chown: %w", err))
		}
	}
	if len(hdr.PAXRecords) > 0 {
		f, err := a.root.OpenFile(".", os.O_RDONLY|dirFlag, 0)
		if err != nil {
			return entryErr(hdr.Name, err)
		}
		err = a.setXattrs(hdr, false, func(n string, v []byte) error { return fsetxattr(f, n, v) })
		f.Close()
		if err != nil {
			return entryErr(hdr.Name, err)
		}
	}
	a.deferDir(hdr, ".")
	return nil
}

func (a *applier) deferDir(hdr *tar.Header, p string) {
	m := fileMode(hdr)
	at, mt := times(hdr)
	a.dirs = append(a.dirs, deferredDir{entry: hdr.Name, path: p, mode: m, atime: at, mtime: mt, valid: true})
}

func (a *applier) dir(hdr *tar.Header, dir, base, name string) error {
	rp, h, err := a.parent(dir)
	if err != nil {
		return err
	}
	p := join(rp, base)
	if err := h.root.Mkdir(base, 0o755); err == nil {
		a.fresh[p] = struct{}{}
	} else {
		if !isExist(err) {
			return err
		}
		fi, err := h.root.Lstat(base)
		if err != nil {
			return err
		}
		if !fi.IsDir() {
			if err := a.clear(h, rp, base); err != nil {
				return err
			}
			if err := h.root.Mkdir(base, 0o755); err != nil {
				return err
			}
			a.fresh[p] = struct{}{}
		}
	}
	a.lex[name] = p
	a.markUpper(p)
	a.st.Dirs++
	if a.chown {
		if err := h.root.Lchown(base, hdr.Uid, hdr.Gid); err != nil {
			return fmt.Errorf("chown: %w", err)
		}
	}
	if len(hdr.PAXRecords) > 0 {
		f, err := h.root.OpenFile(base, os.O_RDONLY|dirFlag, 0)
		if err != nil {
			return err
		}
		err = a.setXattrs(hdr, false, func(n string, v []byte) error { return fsetxattr(f, n, v) })
		f.Close()
		if err != nil {
			return err
		}
	}
	a.deferDir(hdr, p)
	return nil
}

func (a *applier) file(hdr *tar.Header, dir, base string, body io.Reader) error {
	rp, h, err := a.parent(dir)
	if err != nil {
		return err
	}
	dfd, acl, err := h.dirFD()
	if err != nil {
		return err
	}
	mode := uint32(hdr.Mode & 0o7777)
	// The file is made with its final permission bits; the kernel takes
	// away what the umask (or a default ACL of the directory) removes, and
	// only then is an explicit chmod needed. In rootless mode the owner
	// keeps read and write access until the content and xattrs are in
	// (xattrs need write access), and the exact mode is set last.
	perm := mode & 0o777
	if a.rootless {
		perm |= 0o600
	}
	fd, err := createAt(dfd, base, perm)
	if err != nil && isExist(err) {
		if err := a.clear(h, rp, base); err != nil {
			return err
		}
		fd, err = createAt(dfd, base, perm)
	}
	if err != nil {
		return err
	}
	open := true
	defer func() {
		if open {
			closeFD(fd)
		}
	}()
	a.markUpper(join(rp, base))
	a.st.Files++
	n, err := copyToFD(fd, body, *a.buf)
	if err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return fmt.Errorf("%w: truncated layer: header claims %d bytes, body ended after %d", errdef.ErrInvalid, hdr.Size, n)
		}
		return err
	}
	if a.chown {
		if err := fchown(fd, hdr.Uid, hdr.Gid); err != nil {
			return fmt.Errorf("chown: %w", err)
		}
	}
	if len(hdr.PAXRecords) > 0 {
		if err := a.setXattrs(hdr, false, func(n string, v []byte) error { return fsetxattrFD(fd, n, v) }); err != nil {
			return err
		}
	}
	// chown clears set-id bits, so they are always set explicitly.
	if mode != perm || acl || a.acl || perm&^a.umask != perm {
		if err := fchmod(fd, mode); err != nil {
			return fmt.Errorf("chmod: %w", err)
		}
	}
	at, mt := times(hdr)
	if err := futimensFD(fd, base, at, mt); err != nil {
		if err := a.timesErr(hdr, err); err != nil {
			return err
		}
	}
	open = false
	if err := closeFD(fd); err != nil {
		return &os.PathError{Op: "close", Path: base, Err: err}
	}
	return nil
}

func (a *applier) symlink(hdr *tar.Header, dir, base string) error {
	if hdr.Linkname == "" {
		return fmt.Errorf("%w: symlink with an empty target", errdef.ErrInvalid)
	}
	if strings.IndexByte(hdr.Linkname, 0) >= 0 {
		return fmt.Errorf("%w: symlink target contains a NUL byte", errdef.ErrInvalid)
	}
	rp, h, err := a.parent(dir)
	if err != nil {
		return err
	}
	if err := h.root.Symlink(hdr.Linkname, base); err != nil {
		if !isExist(err) {
			return err
		}
		if err := a.clear(h, rp, base); err != nil {
			return err
		}
		if err := h.root.Symlink(hdr.Linkname, base); err != nil {
			return err
		}
	}
	a.markUpper(join(rp, base))
	a.st.Symlinks++
	return a.nodeMeta(hdr, h, base, false)
}

// nodeMeta applies ownership, mode (unless symlink), xattrs and times to a
// node that cannot be opened (symlink, device, FIFO), by name in h.
func (a *applier) nodeMeta(hdr *tar.Header, h *dirHandle, base string, chmod bool) error {
	if a.chown {
		if err := h.root.Lchown(base, hdr.Uid, hdr.Gid); err != nil {
			return fmt.Errorf("chown: %w", err)
		}
	}
	d, err := h.dirFile()
	if err != nil {
		return err
	}
	if len(hdr.PAXRecords) > 0 {
		if err := a.setXattrs(hdr, true, func(n string, v []byte) error { return lsetxattrAt(d, base, n, v) }); err != nil {
			return err
		}
	}
	if chmod {
		if err := h.root.Chmod(base, fileMode(hdr)); err != nil {
			return fmt.Errorf("chmod: %w", err)
		}
	}
	at, mt := times(hdr)
	if err := lutimesAt(d, base, at, mt); err != nil {
		return a.timesErr(hdr, err)
	}
	return nil
}

func (a *applier) hardlink(hdr *tar.Header, dir, base string) error {
	target, err := cleanName(hdr.Linkname)
	if err != nil {
		return fmt.Errorf("hardlink target %q: %w", hdr.Linkname, err)
	}
	if target == "." {
		return fmt.Errorf("hardlink target %q: %w: not a file", hdr.Linkname, errdef.ErrInvalid)
	}
	tdir, tbase := path.Split(target)
	tdir = strings.TrimSuffix(tdir, "/")
	if tdir == "" {
		tdir = "."
	}
	trp, err := a.resolve(tdir, false)
	if err != nil {
		if isNotExist(err) {
			return fmt.Errorf("hardlink target %q: %w", hdr.Linkname, errdef.ErrNotFound)
		}
		return fmt.Errorf("hardlink target %q: %w", hdr.Linkname, err)
	}
	tp := join(trp, tbase)
	if err := a.access(trp); err != nil {
		return err
	}
	th, err := a.handle(trp)
	if err != nil {
		return err
	}
	tfi, err := th.root.Lstat(tbase)
	if err != nil {
		if isNotExist(err) {
			return fmt.Errorf("hardlink target %q: %w", hdr.Linkname, errdef.ErrNotFound)
		}
		return err
	}
	if tfi.IsDir() {
		return fmt.Errorf("hardlink target %q: %w: is a directory", hdr.Linkname, errdef.ErrInvalid)
	}
	rp, err := a.resolve(dir, true)
	if err != nil {
		return err
	}
	p := join(rp, base)
	if err := a.access(rp); err != nil {
		return err
	}
	a.touch(rp)
	a.st.Hardlinks++
	if p == tp {
		a.markUpper(p)
		return nil
	}
	if err := a.root.Link(tp, p); err != nil {
		if !isExist(err) {
			return err
		}
		h, err := a.handle(rp)
		if err != nil {
			return err
		}
		if err := a.clear(h, rp, base); err != nil {
			return err
		}
		if err := a.root.Link(tp, p); err != nil {
			return err
		}
	}
	a.markUpper(p)
	return nil
}

func (a *applier) special(hdr *tar.Header, dir, base string) error {
	var kind uint32
	switch hdr.Typeflag {
	case tar.TypeChar:
		kind = modeChar
	case tar.TypeBlock:
		kind = modeBlock
	default:
		kind = modeFifo
	}
	if kind != modeFifo && !a.mknod {
		a.st.Skipped++
		a.log.Warn("device node skipped: needs root and not rootless", "entry", hdr.Name,
			"major", hdr.Devmajor, "minor", hdr.Devminor)
		return nil
	}
	if hdr.Devmajor < 0 || hdr.Devmajor > 0xfff || hdr.Devminor < 0 || hdr.Devminor > 0xfffff {
		return fmt.Errorf("%w: device number %d:%d out of range", errdef.ErrInvalid, hdr.Devmajor, hdr.Devminor)
	}
	rp, h, err := a.parent(dir)
	if err != nil {
		return err
	}
	d, err := h.dirFile()
	if err != nil {
		return err
	}
	mk := func() error {
		return mknodAt(d, base, kind|0o600, uint32(hdr.Devmajor), uint32(hdr.Devminor))
	}
	if err := mk(); err != nil {
		if !isExist(err) {
			return err
		}
		if err := a.clear(h, rp, base); err != nil {
			return err
		}
		if err := mk(); err != nil {
			return err
		}
	}
	a.markUpper(join(rp, base))
	a.st.Specials++
	return a.nodeMeta(hdr, h, base, true)
}

// ---- whiteouts ----

func (a *applier) whiteout(dir, base string) error {
	a.st.Whiteouts++
	var target string
	switch {
	case base == layer.OpaqueWhiteout:
	case strings.HasPrefix(base, layer.WhiteoutMetaPrefix):
		a.st.Skipped++
		a.log.Debug("unknown whiteout metadata entry skipped", "name", base)
		return nil
	default:
		target = strings.TrimPrefix(base, layer.WhiteoutPrefix)
		switch target {
		case "":
			return fmt.Errorf("%w: whiteout without a name", errdef.ErrInvalid)
		case ".", "..":
			return fmt.Errorf("%w: whiteout of %q", errdef.ErrUnsafePath, target)
		}
	}
	rp, err := a.resolve(dir, false)
	if err != nil {
		if isNotExist(err) {
			return nil // nothing below to hide
		}
		return err
	}
	if target != "" {
		return a.removeLower(rp, target)
	}
	return a.removeLowerChildren(rp)
}

// removeLower removes name in the resolved directory dir unless this layer
// wrote it; for a directory this layer wrote, it recurses into it so only
// the lower-layer children go.
func (a *applier) removeLower(dir, name string) error {
	if err := a.access(dir); err != nil {
		return err
	}
	h, err := a.handle(dir)
	if err != nil {
		return err
	}
	fi, err := h.root.Lstat(name)
	if err != nil {
		if isNotExist(err) {
			return nil
		}
		return err
	}
	p := join(dir, name)
	if _, ok := a.upper[p]; !ok {
		a.touch(dir)
		if fi.IsDir() {
			err = a.removeAll(h, name)
		} else {
			err = h.root.Remove(name)
		}
		if err != nil {
			return fmt.Errorf("whiteout: %w", err)
		}
		a.removed(p, fi.Mode())
		return nil
	}
	if fi.IsDir() {
		return a.removeLowerChildren(p)
	}
	return nil
}

func (a *applier) removeLowerChildren(dir string) error {
	if err := a.access(dir); err != nil {
		return err
	}
	f, err := a.root.OpenFile(dir, os.O_RDONLY|dirFlag, 0)
	if err != nil {
		if isNotExist(err) {
			return nil
		}
		return err
	}
	names, err := f.Readdirnames(-1)
	f.Close()
	if err != nil {
		return err
	}
	for _, n := range names {
		if err := a.removeLower(dir, n); err != nil {
			return err
		}
	}
	return nil
}

// ---- end of layer ----

func (a *applier) finish() error {
	for _, d := range a.dirs {
		delete(a.touched, d.path)
	}
	for p, t := range a.touched {
		f, err := a.openDir(p)
		if err != nil {
			continue // removed or replaced since
		}
		err = futimens(f, t[0], t[1])
		f.Close()
		if err != nil {
			return fmt.Errorf("restore times of %q: %w", p, err)
		}
	}
	// Modes are set deepest first: a directory whose mode takes the owner's
	// access away is set only once nothing below it needs setting. The
	// directories rootless mode opened up and this layer does not set get
	// their own modes back.
	for _, d := range a.dirs {
		if d.valid {
			delete(a.locked, d.path)
		}
	}
	for p, m := range a.locked {
		a.dirs = append(a.dirs, deferredDir{entry: p, path: p, mode: m, valid: true, keepTimes: true})
	}
	slices.SortStableFunc(a.dirs, func(x, y deferredDir) int {
		return strings.Count(y.path, "/") - strings.Count(x.path, "/")
	})
	for _, d := range a.dirs {
		if !d.valid {
			continue
		}
		f, err := a.openDir(d.path)
		if err != nil {
			if isNotExist(err) || errors.Is(err, errLoop) {
				continue
			}
			return entryErr(d.entry, err)
		}
		if !d.keepTimes {
			if terr := futimens(f, d.atime, d.mtime); terr != nil {
				err = a.timesErr(&tar.Header{Name: d.entry}, terr)
			}
		}
		if err == nil {
			err = f.Chmod(d.mode)
		}
		f.Close()
		if err != nil {
			return entryErr(d.entry, err)
		}
	}
	a.dirs = a.dirs[:0]
	clear(a.locked)
	clear(a.open)
	return nil
}
