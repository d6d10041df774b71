package analyze

import (
	"cmp"
	"context"
	"io/fs"
	"slices"

	"github.com/lading-oci/lading/layer"
	"golang.org/x/sync/errgroup"
)

// CompareOptions configure Compare.
type CompareOptions struct {
	// Concurrency is how many layers of each image are read ahead while
	// earlier ones are applied (default 2).
	Concurrency int
	// MaxPaths caps the paths of each filesystem, as in Options.
	MaxPaths int
}

// What a changed path differs in, as listed in Difference.Changes.
const (
	DiffType    = "type"    // the entry type differs; nothing else is compared
	DiffContent = "content" // regular-file bodies hash differently (sha256)
	DiffSize    = "size"    // regular-file sizes differ
	DiffMode    = "mode"    // permission, setuid, setgid or sticky bits differ
	DiffOwner   = "owner"   // uid or gid differ
	DiffLink    = "link"    // symlink targets differ
	DiffDevice  = "device"  // device numbers differ
)

// Difference is one path of a Comparison. For changed paths it describes the
// path in the second image, and Old the path in the first.
type Difference struct {
	Path string `json:"path"`
	PathState
	// Changes says what differs, in the order of the Diff* constants:
	// "type" alone, or any of "content", "size", "mode", "owner", "link",
	// "device". Set for changed paths only.
	Changes []string `json:"changes,omitempty"`
	// Old is the path in the first image, for changed paths.
	Old *PathState `json:"old,omitempty"`
}

// PathState is what Compare reports of one path in one image.
type PathState struct {
	// Type is the type in the final filesystem; hardlinked files are TypeFile.
	Type FileType `json:"type"`
	// Size is the size of a regular file, 0 for other types.
	Size int64 `json:"size"`
	// Mode holds the type and permission bits; in JSON, as ls shows them
	// ("-rwxr-xr-x").
	Mode Mode `json:"mode"`
	// UID and GID own the path.
	UID int `json:"uid"`
	GID int `json:"gid"`
	// Link is the target of a symlink.
	Link string `json:"link,omitempty"`
}

// Mode is a file mode that is written as its permission string.
type Mode fs.FileMode

// String renders the mode as ls does ("drwxr-xr-x").
func (m Mode) String() string { return fs.FileMode(m).String() }

// MarshalText writes the permission string.
func (m Mode) MarshalText() ([]byte, error) { return []byte(m.String()), nil }

// Comparison lists how the final filesystem of a second image differs from
// that of a first. Each list is sorted by path. A path under a directory
// that only one image has is listed, each one.
type Comparison struct {
	Added   []Difference `json:"added"`
	Removed []Difference `json:"removed"`
	Changed []Difference `json:"changed"`
}

// Compare builds the final filesystems of images a and b (layers base first)
// and compares them path by path. Regular files are compared by the sha256
// of their bodies, hashed while streaming. Leading layers with equal
// digests are read and hashed once and shared by both filesystems; the
// remaining layers of a and b are read concurrently.
func Compare(ctx context.Context, a, b []Layer, opts CompareOptions) (*Comparison, error) {
	conc := Options{Concurrency: opts.Concurrency}.concurrency()
	limit := maxPaths(opts.MaxPaths)
	shared := 0
	for shared < len(a) && shared < len(b) && a[shared].Digest != "" && a[shared].Digest == b[shared].Digest {
		shared++
	}
	sa := newState(limit)
	if err := run(ctx, a[:shared], 0, true, conc, limit, sa.apply); err != nil {
		return nil, err
	}
	sb := sa.clone()
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return run(gctx, a[shared:], shared, true, conc, limit, sa.apply) })
	g.Go(func() error { return run(gctx, b[shared:], shared, true, conc, limit, sb.apply) })
	if err := g.Wait(); err != nil {
		return nil, err
	}
	rep := &Comparison{Added: []Difference{}, Removed: []Difference{}, Changed: []Difference{}}
	compareDirs(sa.root, sb.root, "", rep)
	for _, l := range [][]Difference{rep.Added, rep.Removed, rep.Changed} {
		slices.SortFunc(l, func(x, y Difference) int { return cmp.Compare(x.Path, y.Path) })
	}
	return rep, nil
}

func compareDirs(a, b *node, dir string, rep *Comparison) {
	names := make([]string, 0, len(a.children)+len(b.children))
	for name := range a.children {
		names = append(names, name)
	}
	for name := range b.children {
		if _, ok := a.children[name]; !ok {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	for _, name := range names {
		p := join(dir, name)
		na, nb := a.children[name], b.children[name]
		switch {
		case nb == nil:
			listAll(&rep.Removed, na, p)
		case na == nil:
			listAll(&rep.Added, nb, p)
		default:
			if what := compareNodes(na, nb); len(what) > 0 {
				e := describe(nb, p)
				e.Changes = what
				old := describe(na, p).PathState
				e.Old = &old
				rep.Changed = append(rep.Changed, e)
			}
			switch {
			case na.typ == tDir && nb.typ == tDir:
				compareDirs(na, nb, p, rep)
			case na.typ == tDir:
				listChildren(&rep.Removed, na, p)
			case nb.typ == tDir:
				listChildren(&rep.Added, nb, p)
			}
		}
	}
}

func listAll(out *[]Difference, n *node, p string) {
	*out = append(*out, describe(n, p))
	listChildren(out, n, p)
}

func listChildren(out *[]Difference, n *node, p string) {
	for name, c := range n.children {
		listAll(out, c, join(p, name))
	}
}

func compareNodes(a, b *node) []string {
	if a.typ != b.typ {
		return []string{DiffType}
	}
	var what []string
	if a.typ == tFile {
		if a.ino.sum != b.ino.sum {
			what = append(what, DiffContent)
		}
		if a.ino.size != b.ino.size {
			what = append(what, DiffSize)
		}
	}
	if a.typ != tSymlink && a.mode&0o7777 != b.mode&0o7777 {
		what = append(what, DiffMode)
	}
	if a.uid != b.uid || a.gid != b.gid {
		what = append(what, DiffOwner)
	}
	if a.typ == tSymlink && a.link != b.link {
		what = append(what, DiffLink)
	}
	if (a.typ == tChar || a.typ == tBlock) && (a.devMajor != b.devMajor || a.devMinor != b.devMinor) {
		what = append(what, DiffDevice)
	}
	return what
}

func describe(n *node, p string) Difference {
	e := Difference{Path: p, PathState: PathState{Type: n.typ.fileType(), Mode: Mode(fileMode(n)), UID: int(n.uid), GID: int(n.gid)}}
	if n.ino != nil {
		e.Size = n.ino.size
	}
	if n.typ == tSymlink {
		e.Link = n.link
	}
	return e
}

func fileMode(n *node) fs.FileMode {
	m := layer.PermMode(int64(n.mode))
	switch n.typ {
	case tDir:
		m |= fs.ModeDir
	case tSymlink:
		m |= fs.ModeSymlink
	case tChar:
		m |= fs.ModeDevice | fs.ModeCharDevice
	case tBlock:
		m |= fs.ModeDevice
	case tFifo:
		m |= fs.ModeNamedPipe
	}
	return m
}
