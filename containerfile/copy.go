package containerfile

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/bzip2"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/lading-oci/lading/bundle"
	"github.com/lading-oci/lading/content"
	"github.com/lading-oci/lading/errdef"
	"github.com/lading-oci/lading/internal/inroot"
	"github.com/lading-oci/lading/layer"
	"github.com/lading-oci/lading/layer/unpack"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
)

// readIgnore reads .containerignore, or else .dockerignore, from the
// context's top; nil when there is neither.
func readIgnore(dir string) (*patternmatcher.PatternMatcher, error) {
	for _, name := range []string{".containerignore", ".dockerignore"} {
		f, err := os.Open(filepath.Join(dir, name))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		defer f.Close()
		patterns, err := ignorefile.ReadAll(io.LimitReader(f, maxFileSize))
		if err != nil {
			return nil, fmt.Errorf("%s: %w: %v", name, errdef.ErrInvalid, err)
		}
		pm, err := patternmatcher.New(patterns)
		if err != nil {
			return nil, fmt.Errorf("%s: %w: %v", name, errdef.ErrInvalid, err)
		}
		return pm, nil
	}
	return nil, nil
}

// source is one matched source of a COPY or ADD.
type source struct {
	rel  string // path in the source tree, slash-separated, no leading '/'
	host string // host path, after following the links that name it
	fi   fs.FileInfo
}

// copySource is where COPY reads: the build context (with its ignore
// file), or the root filesystem of a stage or image.
type copySource struct {
	root    string
	context bool
	ignore  *patternmatcher.PatternMatcher
	label   string // "the build context", "stage build"
}

func (b *builder) copyStep(ctx context.Context, st *stage, sd *instructions.SourcesAndDest, from, chown, chmod string, extract bool, c instructions.Command) error {
	src, fromInput, err := b.copySource(ctx, st, from)
	if err != nil {
		return err
	}
	var mode *fs.FileMode
	if chmod != "" {
		m, err := strconv.ParseUint(chmod, 8, 32)
		if err != nil || m > 0o7777 {
			return fmt.Errorf("%w: --chmod=%s: want an octal mode such as 0755", errdef.ErrInvalid, chmod)
		}
		fm := fs.FileMode(m)
		mode = &fm
	}
	var matches []source
	for _, s := range sd.SourcePaths {
		m, err := src.match(s)
		if err != nil {
			return err
		}
		matches = append(matches, m...)
	}
	inputs := []string{fromInput}
	if src.context {
		h, err := src.hash(matches)
		if err != nil {
			return err
		}
		inputs = append(inputs, "sources "+h)
	}
	inputs = append(inputs, "workdir "+st.img.ConfigFile.Config.WorkingDir)
	return b.layerStep(ctx, st, c, inputs, func(tree string) error {
		uid, gid := 0, 0
		if chown != "" {
			u, _, err := bundle.ResolveUser(ctx, tree, chown)
			if err != nil {
				return fmt.Errorf("--chown=%s: %w", chown, err)
			}
			uid, gid = int(u.UID), int(u.GID)
		}
		dest := sd.DestPath
		if !path.IsAbs(dest) {
			dest = path.Join("/", st.img.ConfigFile.Config.WorkingDir, dest)
		}
		intoDir := strings.HasSuffix(sd.DestPath, "/") || strings.HasSuffix(sd.DestPath, "/.") || sd.DestPath == "." ||
			len(matches) > 1 || hasGlob(sd.SourcePaths)
		w := &treeWriter{ctx: ctx, tree: tree, uid: uid, gid: gid, mode: mode, src: src}
		return w.copyAll(matches, path.Clean(dest), intoDir, extract)
	})
}

// copySource finds where COPY --from (or the context) reads, and the
// input that names it in the step's cache key.
func (b *builder) copySource(ctx context.Context, st *stage, from string) (*copySource, string, error) {
	if from == "" {
		if b.opts.ContextDir == "" {
			return nil, "", fmt.Errorf("%w: COPY or ADD without a build context", errdef.ErrInvalid)
		}
		return &copySource{root: b.opts.ContextDir, context: true, ignore: b.ignore, label: "the build context"}, "context", nil
	}
	var img *content.LoadedImage
	label := ""
	if j := b.stageRef(from, st.index); j >= 0 {
		if !b.stages[j].built {
			return nil, "", fmt.Errorf("%w: COPY --from=%s: the stage is not built", errdef.ErrInvalid, from)
		}
		img, label = b.stages[j].img, "stage "+from
	} else {
		if b.opts.Resolve == nil {
			return nil, "", fmt.Errorf("COPY --from=%s: %w: no stage of that name before this one, and no way to load images", from, errdef.ErrNotFound)
		}
		var err error
		if img, err = b.opts.Resolve(ctx, from); err != nil {
			return nil, "", fmt.Errorf("COPY --from=%s: %w", from, err)
		}
		label = "image " + from
	}
	root, err := b.opts.Cache.Rootfs(ctx, b.opts.Store, img)
	if err != nil {
		return nil, "", err
	}
	return &copySource{root: root, label: label}, "from " + img.Desc.Digest.String(), nil
}

func hasGlob(srcs []string) bool {
	for _, s := range srcs {
		if strings.ContainsAny(s, "*?[") {
			return true
		}
	}
	return false
}

// ignored reports whether the context path rel is left out.
func (s *copySource) ignored(rel string) bool {
	if s.ignore == nil || rel == "" || rel == "." {
		return false
	}
	m, err := s.ignore.MatchesOrParentMatches(rel)
	return err == nil && m
}

// match finds what a source names: one path or a pattern's matches. A
// path out of the source tree, or a symbolic link leading out of the
// context, is refused with errdef.ErrUnsafePath.
func (s *copySource) match(pattern string) ([]source, error) {
	clean := path.Clean(strings.TrimPrefix(pattern, "/"))
	if clean == ".." || strings.HasPrefix(clean, "../") {
		return nil, fmt.Errorf("%w: %s is outside %s", errdef.ErrUnsafePath, pattern, s.label)
	}
	var rels []string
	if strings.ContainsAny(clean, "*?[") {
		found, err := s.glob(clean)
		if err != nil {
			return nil, fmt.Errorf("%w: pattern %s: %v", errdef.ErrInvalid, pattern, err)
		}
		rels = found
	} else {
		rels = []string{clean}
	}
	var out []source
	for _, rel := range rels {
		if s.ignored(rel) {
			continue
		}
		host, err := s.resolve(rel, pattern)
		if err != nil {
			return nil, err
		}
		fi, err := os.Lstat(host)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, source{rel: rel, host: host, fi: fi})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: %s: no such file or directory in %s", errdef.ErrNotFound, pattern, s.label)
	}
	return out, nil
}

// resolve follows the links that name rel: in the context they must stay
// in it; in an image's tree they are followed as the image would.
func (s *copySource) resolve(rel, pattern string) (string, error) {
	if !s.context {
		return inroot.Resolve(s.root, rel)
	}
	host := filepath.Join(s.root, filepath.FromSlash(rel))
	real, err := filepath.EvalSymlinks(host)
	if errors.Is(err, fs.ErrNotExist) {
		if _, lerr := os.Lstat(host); lerr == nil {
			return "", fmt.Errorf("%w: %s is a symbolic link that leads nowhere in %s", errdef.ErrUnsafePath, pattern, s.label)
		}
		return host, nil
	}
	if err != nil {
		return "", err
	}
	root, err := filepath.EvalSymlinks(s.root)
	if err != nil {
		return "", err
	}
	if !inroot.Within(root, real) {
		return "", fmt.Errorf("%w: %s leads outside %s through a symbolic link", errdef.ErrUnsafePath, pattern, s.label)
	}
	return real, nil
}

// glob matches a pattern element by element from the tree's top, without
// following links out of it.
func (s *copySource) glob(pattern string) ([]string, error) {
	parts := strings.Split(pattern, "/")
	cur := []string{""}
	for _, part := range parts {
		var next []string
		for _, dir := range cur {
			if !strings.ContainsAny(part, "*?[") {
				next = append(next, path.Join(dir, part))
				continue
			}
			host, err := s.resolve(dir, dir)
			if err != nil {
				return nil, err
			}
			ents, err := os.ReadDir(host)
			if err != nil {
				continue
			}
			for _, e := range ents {
				ok, err := path.Match(part, e.Name())
				if err != nil {
					return nil, err
				}
				if ok {
					next = append(next, path.Join(dir, e.Name()))
				}
			}
		}
		cur = next
	}
	slices.Sort(cur)
	return cur, nil
}

// walk visits src and, for a directory, everything below it that is not
// ignored, in lexical order; rel is relative to src's top (".") for the
// top itself.
func (s *copySource) walk(src source, fn func(rel, host string, fi fs.FileInfo) error) error {
	var visit func(rel, ctxRel, host string, fi fs.FileInfo) error
	visit = func(rel, ctxRel, host string, fi fs.FileInfo) error {
		if err := fn(rel, host, fi); err != nil {
			return err
		}
		if !fi.IsDir() {
			return nil
		}
		ents, err := os.ReadDir(host)
		if err != nil {
			return err
		}
		for _, e := range ents {
			cr := path.Join(ctxRel, e.Name())
			if s.context && s.ignored(cr) {
				continue
			}
			h := filepath.Join(host, e.Name())
			efi, err := os.Lstat(h)
			if err != nil {
				return err
			}
			if err := visit(path.Join(rel, e.Name()), cr, h, efi); err != nil {
				return err
			}
		}
		return nil
	}
	fi, err := os.Stat(src.host)
	if err != nil {
		return err
	}
	return visit(".", src.rel, src.host, fi)
}

// hash sums what the matches hold: names, types, modes, sizes, contents
// and link targets (not times or owners, which COPY does not keep).
func (s *copySource) hash(matches []source) (string, error) {
	h := sha256.New()
	for _, m := range matches {
		fmt.Fprintf(h, "source %s\n", m.rel)
		err := s.walk(m, func(rel, host string, fi fs.FileInfo) error {
			fmt.Fprintf(h, "%s %o %d", rel, fi.Mode(), fi.Size())
			switch {
			case fi.Mode().IsRegular():
				f, err := os.Open(host)
				if err != nil {
					return err
				}
				fh := sha256.New()
				_, err = io.Copy(fh, f)
				f.Close()
				if err != nil {
					return err
				}
				fmt.Fprintf(h, " %x", fh.Sum(nil))
			case fi.Mode()&fs.ModeSymlink != 0:
				t, err := os.Readlink(host)
				if err != nil {
					return err
				}
				fmt.Fprintf(h, " -> %s", t)
			}
			h.Write([]byte{'\n'})
			return nil
		})
		if err != nil {
			return "", err
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// treeWriter writes copied entries into a working tree, resolving every
// path inside it.
type treeWriter struct {
	ctx      context.Context
	tree     string
	uid, gid int
	mode     *fs.FileMode
	src      *copySource
	dirTimes []dirTime
}

type dirTime struct {
	host string
	t    time.Time
}

func (w *treeWriter) copyAll(matches []source, dest string, intoDir, extract bool) error {
	if intoDir {
		if err := mkdirIn(w.tree, dest, w.uid, w.gid); err != nil {
			return err
		}
	}
	for _, m := range matches {
		if err := w.ctx.Err(); err != nil {
			return err
		}
		fi, err := os.Stat(m.host)
		if err != nil {
			return err
		}
		switch {
		case fi.IsDir():
			// A directory's contents go into dest.
			if err := mkdirIn(w.tree, dest, w.uid, w.gid); err != nil {
				return err
			}
			if err := w.src.walk(m, func(rel, host string, fi fs.FileInfo) error {
				if rel == "." {
					return nil
				}
				return w.entry(path.Join(dest, rel), host, fi)
			}); err != nil {
				return err
			}
		case extract && w.src.context:
			ok, err := w.extract(m.host, dest)
			if err != nil {
				return fmt.Errorf("extract %s: %w", m.rel, err)
			}
			if !ok {
				if err := w.file(m, dest, intoDir, fi); err != nil {
					return err
				}
			}
		default:
			if err := w.file(m, dest, intoDir, fi); err != nil {
				return err
			}
		}
	}
	// Directory times last: writing into a directory changes its time.
	for i := len(w.dirTimes) - 1; i >= 0; i-- {
		_ = os.Chtimes(w.dirTimes[i].host, w.dirTimes[i].t, w.dirTimes[i].t)
	}
	return nil
}

// file copies a single file to dest, or into it when dest is (or is to
// be) a directory.
func (w *treeWriter) file(m source, dest string, intoDir bool, fi fs.FileInfo) error {
	target := dest
	if intoDir {
		target = path.Join(dest, path.Base(m.rel))
	} else if hp, err := inroot.Resolve(w.tree, dest); err == nil {
		if dfi, err := os.Stat(hp); err == nil && dfi.IsDir() {
			target = path.Join(dest, path.Base(m.rel))
		}
	}
	if err := mkdirIn(w.tree, path.Dir(target), 0, 0); err != nil {
		return err
	}
	return w.entry(target, m.host, fi)
}

// entry writes one entry at target (a path in the tree) from host.
func (w *treeWriter) entry(target, host string, fi fs.FileInfo) error {
	parent, err := inroot.Resolve(w.tree, path.Dir(target))
	if err != nil {
		return err
	}
	dst := filepath.Join(parent, path.Base(target))
	perm := fi.Mode().Perm() | fi.Mode()&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky)
	if w.mode != nil {
		perm = *w.mode
	}
	existing, lerr := os.Lstat(dst)
	switch {
	case fi.IsDir():
		if lerr == nil && existing.Mode()&fs.ModeSymlink != 0 {
			// A link to a directory is written through, as the image
			// would see it (/lib -> usr/lib).
			if hp, err := inroot.Resolve(w.tree, target); err == nil {
				if dfi, err := os.Stat(hp); err == nil && dfi.IsDir() {
					return nil
				}
			}
		}
		if lerr == nil && !existing.IsDir() {
			if err := os.Remove(dst); err != nil {
				return err
			}
			lerr = fs.ErrNotExist
		}
		if lerr != nil {
			if err := os.Mkdir(dst, 0o700); err != nil {
				return err
			}
		}
		if err := w.own(dst, perm, true); err != nil {
			return err
		}
		w.dirTimes = append(w.dirTimes, dirTime{dst, fi.ModTime()})
		return nil
	case fi.Mode().IsRegular():
		if lerr == nil {
			if existing.IsDir() {
				return fmt.Errorf("%w: cannot replace the directory %s with a file", errdef.ErrInvalid, target)
			}
			if err := os.Remove(dst); err != nil {
				return err
			}
		}
		if err := copyFile(host, dst); err != nil {
			return err
		}
		if err := w.own(dst, perm, true); err != nil {
			return err
		}
		return os.Chtimes(dst, fi.ModTime(), fi.ModTime())
	case fi.Mode()&fs.ModeSymlink != 0:
		t, err := os.Readlink(host)
		if err != nil {
			return err
		}
		if lerr == nil {
			if existing.IsDir() {
				return fmt.Errorf("%w: cannot replace the directory %s with a symbolic link", errdef.ErrInvalid, target)
			}
			if err := os.Remove(dst); err != nil {
				return err
			}
		}
		if err := os.Symlink(t, dst); err != nil {
			return err
		}
		return w.own(dst, 0, false)
	}
	return nil // devices, FIFOs and sockets are not copied
}

// own gives dst the step's owner and, unless it is a link, its mode.
func (w *treeWriter) own(dst string, perm fs.FileMode, chmod bool) error {
	if os.Geteuid() == 0 {
		if err := os.Lchown(dst, w.uid, w.gid); err != nil {
			return err
		}
	}
	if chmod {
		return os.Chmod(dst, perm)
	}
	return nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// mkdirIn makes dir (a path in the tree) and the directories above it,
// following links inside the tree; those it makes get mode 0755 and the
// given owner.
func mkdirIn(tree, dir string, uid, gid int) error {
	cur := "/"
	for _, part := range strings.Split(strings.Trim(path.Clean(dir), "/"), "/") {
		if part == "" {
			continue
		}
		cur = path.Join(cur, part)
		hp, err := inroot.Resolve(tree, cur)
		if err != nil {
			return err
		}
		fi, err := os.Stat(hp)
		if err == nil {
			if !fi.IsDir() {
				return fmt.Errorf("%w: %s is not a directory", errdef.ErrInvalid, cur)
			}
			continue
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		if err := os.Mkdir(hp, 0o755); err != nil {
			return err
		}
		if os.Geteuid() == 0 {
			if err := os.Lchown(hp, uid, gid); err != nil {
				return err
			}
		}
		if err := os.Chmod(hp, 0o755); err != nil {
			return err
		}
	}
	return nil
}

// extract unpacks a local tar archive (plain, gzip, zstd or bzip2) into
// dest, as ADD does; it reports false for a file that is not an archive.
func (w *treeWriter) extract(host, dest string) (bool, error) {
	f, err := os.Open(host)
	if err != nil {
		return false, err
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 1<<16)
	head, _ := br.Peek(6)
	var r io.Reader = br
	var closer io.Closer
	switch {
	case bytes.HasPrefix(head, []byte("BZh")):
		r = bzip2.NewReader(br)
	case bytes.HasPrefix(head, []byte{0xfd, '7', 'z', 'X', 'Z', 0}):
		return false, fmt.Errorf("%w: xz archives are not extracted; use a tar, tar.gz, tar.zst or tar.bz2", errdef.ErrUnsupported)
	default:
		rc, _, err := layer.Decompress(br)
		if err != nil {
			return false, nil
		}
		r, closer = rc, rc
	}
	if closer != nil {
		defer closer.Close()
	}
	// Look at the first header before anything is written.
	var peek bytes.Buffer
	tr := tar.NewReader(io.TeeReader(r, &peek))
	if _, err := tr.Next(); err != nil {
		return false, nil
	}
	if err := mkdirIn(w.tree, dest, w.uid, w.gid); err != nil {
		return false, err
	}
	destHost, err := inroot.Resolve(w.tree, dest)
	if err != nil {
		return false, err
	}
	_, err = unpack.Apply(w.ctx, destHost, io.MultiReader(&peek, r), unpack.Options{Rootless: os.Geteuid() != 0})
	if err != nil {
		return false, err
	}
	return true, nil
}
