// Package analyze measures the layers of an image: what each layer adds,
// changes and removes, how many of the bytes it ships are later overwritten
// or deleted (wasted), and how two images' final filesystems differ.
//
// The analysis reads tar headers only and keeps one small record per path,
// so memory grows with the number of paths, never with the number of bytes.
// Layers are applied the way image-spec layer.md applies them: whiteouts
// (".wh.NAME" and opaque ".wh..wh..opq") remove entries of lower layers
// before the layer's own entries are added, a directory over a directory
// merges, and anything else replaces what was at its path. Entry names are
// cleaned into the root ("./a", "a/", "/a" and "../a" all name "a"), and
// symbolic links in parent directories are followed inside the root, as an
// applier resolves them.
package analyze

import (
	"cmp"
	"context"
	"io"
	"runtime"
	"slices"

	"github.com/opencontainers/go-digest"
)

// Layer is one layer blob of an image, in application order (base first).
type Layer struct {
	// Digest names the blob in reports; it is not verified here. Compare uses
	// equal digests of a common prefix to read shared base layers once.
	Digest digest.Digest
	// Open returns the layer blob, compressed with gzip or zstd or not at all.
	// It is called once per analysis. To have the blob verified, return a
	// verifying reader: the stream is always read to its end.
	Open func(ctx context.Context) (io.ReadCloser, error)
}

// Options configure Analyze.
type Options struct {
	// Files lists every change of every layer in LayerReport.Changes.
	Files bool
	// Concurrency is how many layers are read ahead while earlier ones are
	// applied (default 2). Layers are always applied in order.
	Concurrency int
	// MaxPaths caps the number of paths held at once, in the filesystem and
	// in one layer's entries (default 4Mi); beyond it the analysis fails with
	// errdef.ErrTooLarge.
	MaxPaths int
}

// FileType is the type of a filesystem entry.
type FileType string

// The entry types of a layer.
const (
	TypeFile     FileType = "file"
	TypeDir      FileType = "dir"
	TypeSymlink  FileType = "symlink"
	TypeHardlink FileType = "hardlink"
	TypeChar     FileType = "char"
	TypeBlock    FileType = "block"
	TypeFifo     FileType = "fifo"
)

// ChangeKind says how a layer changed a path.
type ChangeKind string

// The kinds of change a layer makes.
const (
	// Added: the path does not exist below the layer and exists above it.
	Added ChangeKind = "added"
	// Changed: the path exists below the layer, and the layer re-emits or
	// replaces it (any type, metadata only included).
	Changed ChangeKind = "changed"
	// Removed: the path exists below the layer and not above it.
	Removed ChangeKind = "removed"
)

// Change is one path a layer added, changed or removed.
type Change struct {
	Path string     `json:"path"`
	Kind ChangeKind `json:"kind"`
	// Type is the type above the layer, or the removed type for Removed.
	Type FileType `json:"type"`
	// Size is the regular-file bytes the layer ships for the path (0 for
	// directories, symlinks and hardlinks), or for Removed the bytes the
	// removed entry had shipped.
	Size int64 `json:"size"`
}

// LayerReport is the accounting of one layer.
type LayerReport struct {
	// Index is the position of the layer, 0 for the base.
	Index  int           `json:"index"`
	Digest digest.Digest `json:"digest"`
	// Added, Changed and Removed count paths by kind of change, comparing the
	// filesystem below the layer with the filesystem above it. Removing a
	// directory removes every path beneath it, and each one counts.
	Added   int `json:"added"`
	Changed int `json:"changed"`
	Removed int `json:"removed"`
	// AddedBytes and ChangedBytes sum Change.Size of added and changed paths.
	AddedBytes   int64 `json:"addedBytes"`
	ChangedBytes int64 `json:"changedBytes"`
	// RemovedBytes sums the bytes of the lower-layer files the layer removes.
	RemovedBytes int64 `json:"removedBytes"`
	// Size is the regular-file bytes the layer ships, every tar entry counted
	// (a path emitted twice counts twice).
	Size int64 `json:"size"`
	// WastedBytes are the bytes of this layer's files that never reach the
	// final filesystem: overwritten or deleted by a later layer, or by a
	// later entry for the same path in this layer.
	WastedBytes int64 `json:"wastedBytes"`
	// Changes lists the changes, sorted by path, when Options.Files is set.
	Changes []Change `json:"changes,omitempty"`
}

// WastedFile aggregates the wasted copies shipped under one path.
type WastedFile struct {
	Path string `json:"path"`
	// Bytes is the sum over the wasted copies.
	Bytes int64 `json:"bytes"`
	// Count is how many copies of the path were wasted.
	Count int `json:"count"`
	// Layers are the indexes of the layers that shipped them, ascending.
	Layers []int `json:"layers"`
}

// Cause actions: what a later layer did that wasted shipped bytes.
const (
	// CauseDeleted: a whiteout ".wh.NAME" deleted the path (for a directory,
	// every file beneath it).
	CauseDeleted = "deleted"
	// CauseOpaque: an opaque whiteout hid the directory's lower contents.
	CauseOpaque = "opaque"
	// CauseReplaced: a later entry for the same path replaced it (a new
	// file, or a different type; for a directory, every file beneath it).
	CauseReplaced = "replaced"
)

// WasteCause is one action of a layer that wasted bytes shipped below it:
// the path a whiteout named, or the path an entry replaced. Removing one
// directory is one cause however many files it held, which is what a user
// changes to get the bytes back.
type WasteCause struct {
	// Layer is the index of the layer whose action wasted the bytes.
	Layer int `json:"layer"`
	// Action is CauseDeleted, CauseOpaque or CauseReplaced.
	Action string `json:"action"`
	// Path is the path the action named.
	Path string `json:"path"`
	// Files counts the wasted file copies; Bytes sums them.
	Files int   `json:"files"`
	Bytes int64 `json:"bytes"`
}

// Report is the accounting of an image's layers.
//
// Only regular-file content is counted, never tar headers, padding or
// compression. Each shipped byte either reaches the final filesystem or is
// wasted, so TotalBytes == FinalBytes + WastedBytes. Hardlinks share the
// bytes of the file they link to: they ship nothing, and a file's bytes are
// wasted only when its last link goes.
type Report struct {
	Layers []LayerReport `json:"layers"`
	// TotalBytes is the regular-file bytes shipped by all layers.
	TotalBytes int64 `json:"totalBytes"`
	// FinalBytes is the regular-file bytes of the final filesystem, each
	// hardlinked file once.
	FinalBytes int64 `json:"finalBytes"`
	// WastedBytes is TotalBytes - FinalBytes: shipped, never seen.
	WastedBytes int64 `json:"wastedBytes"`
	// Efficiency is FinalBytes / TotalBytes, in [0, 1]: the fraction of the
	// shipped file bytes that remain visible in the final filesystem. It is
	// 1 when the layers ship no file bytes at all.
	Efficiency float64 `json:"efficiency"`
	// Wasted lists the paths whose shipped copies were wasted, by Bytes
	// descending then Path. Copies of zero bytes are not listed.
	Wasted []WastedFile `json:"wasted"`
	// Causes lists the actions that wasted bytes, by Bytes descending, then
	// layer and path. Their Bytes add up to WastedBytes.
	Causes []WasteCause `json:"causes"`
}

const (
	defaultConcurrency = 2
	defaultMaxPaths    = 4 << 20
)

func (o Options) concurrency() int {
	if o.Concurrency > 0 {
		return o.Concurrency
	}
	return min(defaultConcurrency, runtime.GOMAXPROCS(0))
}

func maxPaths(n int) int {
	if n > 0 {
		return n
	}
	return defaultMaxPaths
}

// Analyze applies layers in order, base first, and accounts for every path
// each one adds, changes or removes and for every byte that is wasted.
func Analyze(ctx context.Context, layers []Layer, opts Options) (*Report, error) {
	rep := &Report{Layers: make([]LayerReport, len(layers)), Wasted: []WastedFile{}, Causes: []WasteCause{}}
	for i, l := range layers {
		rep.Layers[i] = LayerReport{Index: i, Digest: l.Digest}
	}
	acct := &accounting{rep: rep, touched: make(map[string]before), wasted: make(map[string]*WastedFile),
		causes: make(map[WasteCause]*WasteCause)}
	s := newState(maxPaths(opts.MaxPaths))
	s.acct = acct
	apply := func(i int, recs []record) error {
		if err := s.apply(i, recs); err != nil {
			return err
		}
		acct.classify(s, &rep.Layers[i], opts.Files)
		return nil
	}
	if err := run(ctx, layers, 0, false, opts.concurrency(), s.maxPaths, apply); err != nil {
		return nil, err
	}
	for i := range rep.Layers {
		rep.TotalBytes += rep.Layers[i].Size
	}
	rep.FinalBytes = s.live
	rep.WastedBytes = rep.TotalBytes - rep.FinalBytes
	rep.Efficiency = 1
	if rep.TotalBytes > 0 {
		rep.Efficiency = float64(rep.FinalBytes) / float64(rep.TotalBytes)
	}
	for _, w := range acct.wasted {
		slices.Sort(w.Layers)
		w.Layers = slices.Compact(w.Layers)
		rep.Wasted = append(rep.Wasted, *w)
	}
	slices.SortFunc(rep.Wasted, func(a, b WastedFile) int {
		if c := cmp.Compare(b.Bytes, a.Bytes); c != 0 {
			return c
		}
		return cmp.Compare(a.Path, b.Path)
	})
	for _, c := range acct.causes {
		rep.Causes = append(rep.Causes, *c)
	}
	slices.SortFunc(rep.Causes, func(a, b WasteCause) int {
		if c := cmp.Compare(b.Bytes, a.Bytes); c != 0 {
			return c
		}
		if c := cmp.Compare(a.Layer, b.Layer); c != 0 {
			return c
		}
		return cmp.Compare(a.Path, b.Path)
	})
	return rep, nil
}

// before is the state of a path below the layer being applied.
type before struct {
	exists bool
	typ    FileType
	size   int64
}

// accounting collects what Analyze reports while layers are applied.
type accounting struct {
	rep     *Report
	touched map[string]before // paths the current layer created, replaced or removed
	wasted  map[string]*WastedFile
	causes  map[WasteCause]*WasteCause // keyed by Layer, Action and Path
}

func (a *accounting) touch(p string, old *node) {
	if _, ok := a.touched[p]; ok {
		return
	}
	if old == nil {
		a.touched[p] = before{}
		return
	}
	a.touched[p] = before{exists: true, typ: old.fileType(), size: old.size}
}

func (a *accounting) waste(ino *inode, cause WasteCause) {
	if ino.size == 0 {
		return
	}
	c := a.causes[cause]
	if c == nil {
		c = &WasteCause{Layer: cause.Layer, Action: cause.Action, Path: cause.Path}
		a.causes[cause] = c
	}
	c.Files++
	c.Bytes += ino.size
	a.rep.Layers[ino.layer].WastedBytes += ino.size
	w := a.wasted[ino.path]
	if w == nil {
		w = &WastedFile{Path: ino.path}
		a.wasted[ino.path] = w
	}
	w.Bytes += ino.size
	w.Count++
	w.Layers = append(w.Layers, ino.layer)
}

// classify compares every path the layer touched with its state below the
// layer, fills lr's counts and resets the touched set for the next layer.
func (a *accounting) classify(s *state, lr *LayerReport, files bool) {
	paths := make([]string, 0, len(a.touched))
	for p := range a.touched {
		paths = append(paths, p)
	}
	if files {
		slices.Sort(paths)
	}
	for _, p := range paths {
		b := a.touched[p]
		cur := s.lookup(p)
		var c Change
		switch {
		case cur != nil && b.exists:
			c = Change{Path: p, Kind: Changed, Type: cur.fileType(), Size: cur.size}
			lr.Changed++
			lr.ChangedBytes += cur.size
		case cur != nil:
			c = Change{Path: p, Kind: Added, Type: cur.fileType(), Size: cur.size}
			lr.Added++
			lr.AddedBytes += cur.size
		case b.exists:
			c = Change{Path: p, Kind: Removed, Type: b.typ, Size: b.size}
			lr.Removed++
			lr.RemovedBytes += b.size
		default:
			continue // created and overwritten within the layer
		}
		if files {
			lr.Changes = append(lr.Changes, c)
		}
	}
	clear(a.touched)
}
