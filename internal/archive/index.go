package archive

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"

	"github.com/lading-oci/lading/errdef"
)

// MaxMembers caps how many members Scan indexes; an archive with more is
// refused with errdef.ErrTooLarge.
const MaxMembers = 1 << 20

// maxLinkHops caps how many links Lookup follows for one name.
const maxLinkHops = 16

// Member is one entry of a tar archive.
type Member struct {
	// Name is the cleaned name: no leading "./" or "/", no trailing slash.
	Name string
	// Type is the tar type flag (tar.TypeReg, tar.TypeDir, tar.TypeSymlink,
	// tar.TypeLink, ...).
	Type byte
	// Offset is where the member's data starts in the archive file.
	Offset int64
	// Size is the length of the data.
	Size int64
	// Linkname is the target of a symbolic or hard link, as stored.
	Linkname string
}

// Index is the table of members of one archive file, built by Scan.
type Index struct {
	r       io.ReaderAt
	size    int64
	members map[string]*Member
	names   []string
}

// CleanName returns the canonical form of a member name: without leading
// "./" and trailing "/", with repeated slashes folded. It refuses absolute
// names and names with a ".." element (errdef.ErrUnsafePath) and empty
// names or names with a NUL byte (errdef.ErrInvalid). The archive's root
// ("./") is returned as ".".
func CleanName(name string) (string, error) {
	if name == "" {
		return "", fmt.Errorf("member name is empty: %w", errdef.ErrInvalid)
	}
	if strings.IndexByte(name, 0) >= 0 {
		return "", fmt.Errorf("member %q: %w: name contains a NUL byte", name, errdef.ErrInvalid)
	}
	if strings.HasPrefix(name, "/") {
		return "", fmt.Errorf("member %q: %w: absolute name", name, errdef.ErrUnsafePath)
	}
	for _, el := range strings.Split(name, "/") {
		if el == ".." {
			return "", fmt.Errorf("member %q: %w: name has a \"..\" element", name, errdef.ErrUnsafePath)
		}
	}
	c := path.Clean(name)
	return c, nil
}

// trackingReader is the archive as tar.Reader sees it: reads and seeks are
// counted, so that after Next the position is the member's data offset
// (archive/tar reads headers block by block and buffers nothing).
type trackingReader struct {
	r   *io.SectionReader
	pos int64
}

func (t *trackingReader) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	t.pos += int64(n)
	return n, err
}

func (t *trackingReader) Seek(off int64, whence int) (int64, error) {
	n, err := t.r.Seek(off, whence)
	if err == nil {
		t.pos = n
	}
	return n, err
}

// Scan reads the headers of the uncompressed tar archive in r (size bytes)
// and returns its index. Errors name the offending member and match
// errdef.ErrInvalid (a malformed archive, a duplicate, a member past the
// end), errdef.ErrUnsafePath (an absolute or ".." name),
// errdef.ErrUnsupported (a sparse member) or errdef.ErrTooLarge (more than
// MaxMembers members).
func Scan(ctx context.Context, r io.ReaderAt, size int64) (*Index, error) {
	ix := &Index{r: r, size: size, members: make(map[string]*Member)}
	tr := &trackingReader{r: io.NewSectionReader(r, 0, size)}
	t := tar.NewReader(tr)
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		hdr, err := t.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read tar header at offset %d: %w: %v", tr.pos, errdef.ErrInvalid, err)
		}
		if len(ix.members) >= MaxMembers {
			return nil, fmt.Errorf("archive: %w: more than %d members", errdef.ErrTooLarge, MaxMembers)
		}
		name, err := CleanName(hdr.Name)
		if err != nil {
			return nil, err
		}
		if hdr.Typeflag == tar.TypeGNUSparse || isPAXSparse(hdr) {
			return nil, fmt.Errorf("member %q: %w: sparse members are not read", hdr.Name, errdef.ErrUnsupported)
		}
		m := &Member{Name: name, Type: hdr.Typeflag, Offset: tr.pos, Size: hdr.Size, Linkname: hdr.Linkname}
		switch m.Type {
		case tar.TypeReg:
		default:
			// Only regular files carry data that is read; others have none
			// (archive/tar skips any that is declared).
			m.Size = 0
		}
		if hdr.Size < 0 || m.Offset > size || hdr.Size > size-m.Offset {
			return nil, fmt.Errorf("member %q: %w: %d bytes of data at offset %d run past the end of the %d-byte archive",
				hdr.Name, errdef.ErrInvalid, hdr.Size, m.Offset, size)
		}
		if name == "." {
			if m.Type != tar.TypeDir {
				return nil, fmt.Errorf("member %q: %w: the archive root must be a directory", hdr.Name, errdef.ErrInvalid)
			}
			continue
		}
		if prev, dup := ix.members[name]; dup {
			if !(prev.Type == tar.TypeDir && m.Type == tar.TypeDir) {
				return nil, fmt.Errorf("member %q: %w: duplicate member (%q appears twice)", hdr.Name, errdef.ErrInvalid, name)
			}
			continue
		}
		ix.members[name] = m
		ix.names = append(ix.names, name)
	}
	return ix, nil
}

func isPAXSparse(hdr *tar.Header) bool {
	for k := range hdr.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return true
		}
	}
	return false
}

// Size returns the size of the archive file.
func (ix *Index) Size() int64 { return ix.size }

// Names returns the cleaned names of the members in archive order.
func (ix *Index) Names() []string { return ix.names }

// Member returns the member stored under name (cleaned), without
// following links.
func (ix *Index) Member(name string) (*Member, bool) {
	c, err := CleanName(name)
	if err != nil {
		return nil, false
	}
	m, ok := ix.members[c]
	return m, ok
}

// Lookup returns the regular file that name refers to, following symbolic
// and hard links within the archive. A missing member matches
// errdef.ErrNotFound; a link pointing outside the archive
// errdef.ErrUnsafePath; a link loop, or a name that is not a regular file,
// errdef.ErrInvalid. Errors name the member.
func (ix *Index) Lookup(name string) (*Member, error) {
	c, err := CleanName(name)
	if err != nil {
		return nil, err
	}
	orig := c
	for hop := 0; ; hop++ {
		if hop > maxLinkHops {
			return nil, fmt.Errorf("member %q: %w: more than %d links to follow", orig, errdef.ErrInvalid, maxLinkHops)
		}
		m, ok := ix.members[c]
		if !ok {
			if c == orig {
				return nil, fmt.Errorf("member %q: %w in the archive", orig, errdef.ErrNotFound)
			}
			return nil, fmt.Errorf("member %q: link target %q: %w in the archive", orig, c, errdef.ErrNotFound)
		}
		switch m.Type {
		case tar.TypeReg:
			return m, nil
		case tar.TypeSymlink:
			if strings.HasPrefix(m.Linkname, "/") {
				return nil, fmt.Errorf("member %q: %w: symbolic link %q to absolute path %q", orig, errdef.ErrUnsafePath, m.Name, m.Linkname)
			}
			target := path.Join(path.Dir(m.Name), m.Linkname)
			if target == ".." || strings.HasPrefix(target, "../") {
				return nil, fmt.Errorf("member %q: %w: symbolic link %q to %q points outside the archive", orig, errdef.ErrUnsafePath, m.Name, m.Linkname)
			}
			c = target
		case tar.TypeLink:
			target, err := CleanName(m.Linkname)
			if err != nil {
				return nil, fmt.Errorf("member %q: hard link %q: %w", orig, m.Name, err)
			}
			c = target
		default:
			return nil, fmt.Errorf("member %q: %w: %q is not a regular file (tar type %q)", orig, errdef.ErrInvalid, m.Name, m.Type)
		}
	}
}

// Open returns a reader of m's data.
func (ix *Index) Open(m *Member) *io.SectionReader {
	return io.NewSectionReader(ix.r, m.Offset, m.Size)
}

// ReadAll reads the regular file name refers to (following links), refusing
// one larger than max bytes with errdef.ErrTooLarge.
func (ix *Index) ReadAll(name string, max int64) ([]byte, error) {
	m, err := ix.Lookup(name)
	if err != nil {
		return nil, err
	}
	if m.Size > max {
		return nil, fmt.Errorf("member %q: %w: %d bytes, the limit is %d", name, errdef.ErrTooLarge, m.Size, max)
	}
	buf := make([]byte, m.Size)
	if _, err := ix.r.ReadAt(buf, m.Offset); err != nil && !(errors.Is(err, io.EOF) && m.Size == 0) {
		return nil, fmt.Errorf("read member %q: %w", name, err)
	}
	return buf, nil
}

// Dir returns the names of the members directly inside directory dir
// ("." for the root), sorted.
func (ix *Index) Dir(dir string) []string {
	var out []string
	for _, n := range ix.names {
		if path.Dir(n) == dir {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}
