package analyze

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/lading-oci/lading/errdef"
	"github.com/lading-oci/lading/layer"
	"github.com/opencontainers/go-digest"
)

// counts are the per-layer numbers a case expects.
type counts struct {
	added, changed, removed int
	addedB, changedB, remB  int64
	size, wasted            int64
}

func countsOf(l LayerReport) counts {
	return counts{l.Added, l.Changed, l.Removed, l.AddedBytes, l.ChangedBytes, l.RemovedBytes, l.Size, l.WastedBytes}
}

func wf(p string, bytes int64, count int, layers ...int) WastedFile {
	return WastedFile{Path: p, Bytes: bytes, Count: count, Layers: layers}
}

func TestAnalyzeAccounting(t *testing.T) {
	type change = Change
	tests := []struct {
		name    string
		layers  [][]ent
		want    []counts
		total   int64
		final   int64
		wasted  []WastedFile
		changes map[int][]change // layer index -> expected changes
	}{
		{
			name:   "file overwritten by a later layer",
			layers: [][]ent{L(file("a", 100)), L(file("a", 50))},
			want:   []counts{{added: 1, addedB: 100, size: 100, wasted: 100}, {changed: 1, changedB: 50, size: 50}},
			total:  150, final: 50,
			wasted:  []WastedFile{wf("a", 100, 1, 0)},
			changes: map[int][]change{1: {{Path: "a", Kind: Changed, Type: TypeFile, Size: 50}}},
		},
		{
			name:   "file deleted by whiteout",
			layers: [][]ent{L(dir("d"), file("d/f", 10), file("g", 5)), L(wh("d/f"))},
			want:   []counts{{added: 3, addedB: 15, size: 15, wasted: 10}, {removed: 1, remB: 10}},
			total:  15, final: 5,
			wasted:  []WastedFile{wf("d/f", 10, 1, 0)},
			changes: map[int][]change{1: {{Path: "d/f", Kind: Removed, Type: TypeFile, Size: 10}}},
		},
		{
			name: "directory whiteout removes every file beneath it",
			layers: [][]ent{
				L(dir("big"), file("big/a", 1000), dir("big/sub"), file("big/sub/b", 2000), file("keep", 7)),
				L(wh("big")),
			},
			want:  []counts{{added: 5, addedB: 3007, size: 3007, wasted: 3000}, {removed: 4, remB: 3000}},
			total: 3007, final: 7,
			wasted: []WastedFile{wf("big/sub/b", 2000, 1, 0), wf("big/a", 1000, 1, 0)},
			changes: map[int][]change{1: {
				{Path: "big", Kind: Removed, Type: TypeDir},
				{Path: "big/a", Kind: Removed, Type: TypeFile, Size: 1000},
				{Path: "big/sub", Kind: Removed, Type: TypeDir},
				{Path: "big/sub/b", Kind: Removed, Type: TypeFile, Size: 2000},
			}},
		},
		{
			name: "opaque whiteout hides lower children",
			layers: [][]ent{
				L(dir("d"), file("d/x", 10), dir("d/y"), file("d/y/z", 20), file("out", 1)),
				L(dir("d"), opq("d"), file("d/n", 5)),
			},
			want: []counts{
				{added: 5, addedB: 31, size: 31, wasted: 30},
				{added: 1, changed: 1, removed: 3, addedB: 5, remB: 30, size: 5},
			},
			total: 36, final: 6,
			wasted: []WastedFile{wf("d/y/z", 20, 1, 0), wf("d/x", 10, 1, 0)},
			changes: map[int][]change{1: {
				{Path: "d", Kind: Changed, Type: TypeDir},
				{Path: "d/n", Kind: Added, Type: TypeFile, Size: 5},
				{Path: "d/x", Kind: Removed, Type: TypeFile, Size: 10},
				{Path: "d/y", Kind: Removed, Type: TypeDir},
				{Path: "d/y/z", Kind: Removed, Type: TypeFile, Size: 20},
			}},
		},
		{
			name: "opaque whiteout after the new children still hides only lower ones",
			layers: [][]ent{
				L(dir("d"), file("d/x", 10), dir("d/y"), file("d/y/z", 20), file("out", 1)),
				L(dir("d"), file("d/n", 5), opq("d")),
			},
			want: []counts{
				{added: 5, addedB: 31, size: 31, wasted: 30},
				{added: 1, changed: 1, removed: 3, addedB: 5, remB: 30, size: 5},
			},
			total: 36, final: 6,
			wasted: []WastedFile{wf("d/y/z", 20, 1, 0), wf("d/x", 10, 1, 0)},
		},
		{
			name: "opaque whiteout with a lower child re-emitted",
			layers: [][]ent{
				L(dir("d"), file("d/x", 10), dir("d/y"), file("d/y/z", 20), file("out", 1)),
				L(dir("d"), opq("d"), file("d/x", 3)),
			},
			want: []counts{
				{added: 5, addedB: 31, size: 31, wasted: 30},
				{changed: 2, removed: 2, changedB: 3, remB: 20, size: 3},
			},
			total: 34, final: 4,
			wasted: []WastedFile{wf("d/y/z", 20, 1, 0), wf("d/x", 10, 1, 0)},
		},
		{
			name:   "whiteout then re-add in a later layer",
			layers: [][]ent{L(file("f", 10)), L(wh("f")), L(file("f", 20))},
			want: []counts{
				{added: 1, addedB: 10, size: 10, wasted: 10},
				{removed: 1, remB: 10},
				{added: 1, addedB: 20, size: 20},
			},
			total: 30, final: 20,
			wasted: []WastedFile{wf("f", 10, 1, 0)},
		},
		{
			name:   "file replaced by a directory",
			layers: [][]ent{L(file("p", 10)), L(dir("p"), file("p/q", 3))},
			want:   []counts{{added: 1, addedB: 10, size: 10, wasted: 10}, {added: 1, changed: 1, addedB: 3, size: 3}},
			total:  13, final: 3,
			wasted: []WastedFile{wf("p", 10, 1, 0)},
			changes: map[int][]change{1: {
				{Path: "p", Kind: Changed, Type: TypeDir},
				{Path: "p/q", Kind: Added, Type: TypeFile, Size: 3},
			}},
		},
		{
			name:   "file replaced by an implied directory",
			layers: [][]ent{L(file("p", 10)), L(file("p/q", 3))},
			want:   []counts{{added: 1, addedB: 10, size: 10, wasted: 10}, {added: 1, changed: 1, addedB: 3, size: 3}},
			total:  13, final: 3,
			wasted: []WastedFile{wf("p", 10, 1, 0)},
		},
		{
			name:   "directory replaced by a file",
			layers: [][]ent{L(dir("p"), file("p/q", 3), dir("p/r"), file("p/r/s", 4)), L(file("p", 9))},
			want: []counts{
				{added: 4, addedB: 7, size: 7, wasted: 7},
				{changed: 1, removed: 3, changedB: 9, remB: 7, size: 9},
			},
			total: 16, final: 9,
			wasted: []WastedFile{wf("p/r/s", 4, 1, 0), wf("p/q", 3, 1, 0)},
			changes: map[int][]change{1: {
				{Path: "p", Kind: Changed, Type: TypeFile, Size: 9},
				{Path: "p/q", Kind: Removed, Type: TypeFile, Size: 3},
				{Path: "p/r", Kind: Removed, Type: TypeDir},
				{Path: "p/r/s", Kind: Removed, Type: TypeFile, Size: 4},
			}},
		},
		{
			name:   "file replaced by a symlink",
			layers: [][]ent{L(file("f", 10)), L(symlink("f", "g"))},
			want:   []counts{{added: 1, addedB: 10, size: 10, wasted: 10}, {changed: 1}},
			total:  10, final: 0,
			wasted: []WastedFile{wf("f", 10, 1, 0)},
		},
		{
			name:   "directory re-emitted with new metadata",
			layers: [][]ent{L(dir("d"), file("d/f", 4)), L(dir("d").withMode(0o700))},
			want:   []counts{{added: 2, addedB: 4, size: 4}, {changed: 1}},
			total:  4, final: 4,
			wasted: []WastedFile{},
		},
		{
			name:   "hardlinked bytes counted once and kept while a link remains",
			layers: [][]ent{L(file("a", 100), hardlink("b", "a")), L(wh("a"))},
			want:   []counts{{added: 2, addedB: 100, size: 100}, {removed: 1, remB: 100}},
			total:  100, final: 100,
			wasted: []WastedFile{},
			changes: map[int][]change{0: {
				{Path: "a", Kind: Added, Type: TypeFile, Size: 100},
				{Path: "b", Kind: Added, Type: TypeHardlink},
			}},
		},
		{
			name:   "hardlinked bytes wasted when the last link goes",
			layers: [][]ent{L(file("a", 100), hardlink("b", "a")), L(wh("a")), L(wh("b"))},
			want:   []counts{{added: 2, addedB: 100, size: 100, wasted: 100}, {removed: 1, remB: 100}, {removed: 1}},
			total:  100, final: 0,
			wasted: []WastedFile{wf("a", 100, 1, 0)},
		},
		{
			name:   "hardlink to a lower file keeps it",
			layers: [][]ent{L(file("a", 100)), L(hardlink("b", "a")), L(wh("a"))},
			want:   []counts{{added: 1, addedB: 100, size: 100}, {added: 1}, {removed: 1, remB: 100}},
			total:  100, final: 100,
			wasted: []WastedFile{},
		},
		{
			name:   "hardlink to nothing is an empty file",
			layers: [][]ent{L(hardlink("b", "nowhere"))},
			want:   []counts{{added: 1}},
			wasted: []WastedFile{},
		},
		{
			name:   "duplicate entry in one layer is an overwrite",
			layers: [][]ent{L(file("f", 10), file("f", 20))},
			want:   []counts{{added: 1, addedB: 20, size: 30, wasted: 10}},
			total:  30, final: 20,
			wasted: []WastedFile{wf("f", 10, 1, 0)},
		},
		{
			name:   "copies from several layers aggregate per path",
			layers: [][]ent{L(file("f", 10)), L(file("f", 20), file("f", 30))},
			want:   []counts{{added: 1, addedB: 10, size: 10, wasted: 10}, {changed: 1, changedB: 30, size: 50, wasted: 20}},
			total:  60, final: 30,
			wasted: []WastedFile{wf("f", 30, 2, 0, 1)},
		},
		{
			name:   "whiteout of a path that does not exist",
			layers: [][]ent{L(file("f", 10)), L(wh("nothere"), wh("nodir/x"), wh("f/x"), opq("nodir"))},
			want:   []counts{{added: 1, addedB: 10, size: 10}, {}},
			total:  10, final: 10,
			wasted: []WastedFile{},
		},
		{
			name:   "whiteout only removes lower entries, not its own layer's",
			layers: [][]ent{L(file("f", 5)), L(file("f", 7), wh("f"))},
			want:   []counts{{added: 1, addedB: 5, size: 5, wasted: 5}, {changed: 1, changedB: 7, size: 7}},
			total:  12, final: 7,
			wasted: []WastedFile{wf("f", 5, 1, 0)},
		},
		{
			name:   "efficiency arithmetic",
			layers: [][]ent{L(file("a", 300), file("b", 100)), L(wh("a"))},
			want:   []counts{{added: 2, addedB: 400, size: 400, wasted: 300}, {removed: 1, remB: 300}},
			total:  400, final: 100,
			wasted: []WastedFile{wf("a", 300, 1, 0)},
		},
		{
			name:   "empty layer",
			layers: [][]ent{L()},
			want:   []counts{{}},
			wasted: []WastedFile{},
		},
		{
			name: "paths are normalised and confined to the root",
			layers: [][]ent{
				L(dir("./a/"), file("/a/f", 5)),
				L(file("a//f", 7), file("../a/g", 1), file("../../../a/../a/g", 2)),
			},
			want:  []counts{{added: 2, addedB: 5, size: 5, wasted: 5}, {added: 1, changed: 1, addedB: 2, changedB: 7, size: 10, wasted: 1}},
			total: 15, final: 9,
			wasted: []WastedFile{wf("a/f", 5, 1, 0), wf("a/g", 1, 1, 1)},
		},
		{
			name:   "parent directories are implied",
			layers: [][]ent{L(dir("./"), file("a/b/c", 3))},
			want:   []counts{{added: 3, addedB: 3, size: 3}},
			total:  3, final: 3,
			wasted: []WastedFile{},
			changes: map[int][]change{0: {
				{Path: "a", Kind: Added, Type: TypeDir},
				{Path: "a/b", Kind: Added, Type: TypeDir},
				{Path: "a/b/c", Kind: Added, Type: TypeFile, Size: 3},
			}},
		},
		{
			name: "symlinked parent directories are followed inside the root",
			layers: [][]ent{
				L(dir("usr"), dir("usr/lib"), symlink("lib", "usr/lib"), symlink("abs", "/usr/lib"), symlink("up", "../../usr")),
				L(file("lib/x", 5), file("abs/y", 6), file("up/lib/z", 7)),
				L(wh("lib/x"), wh("abs/y")),
			},
			want: []counts{
				{added: 5},
				{added: 3, addedB: 18, size: 18, wasted: 11},
				{removed: 2, remB: 11},
			},
			total: 18, final: 7,
			wasted: []WastedFile{wf("usr/lib/y", 6, 1, 1), wf("usr/lib/x", 5, 1, 1)},
			changes: map[int][]change{1: {
				{Path: "usr/lib/x", Kind: Added, Type: TypeFile, Size: 5},
				{Path: "usr/lib/y", Kind: Added, Type: TypeFile, Size: 6},
				{Path: "usr/lib/z", Kind: Added, Type: TypeFile, Size: 7},
			}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rep, err := Analyze(context.Background(), image(t, tc.layers...), Options{Files: true})
			if err != nil {
				t.Fatal(err)
			}
			if len(rep.Layers) != len(tc.want) {
				t.Fatalf("got %d layer reports, want %d", len(rep.Layers), len(tc.want))
			}
			for i, l := range rep.Layers {
				if got := countsOf(l); got != tc.want[i] {
					t.Errorf("layer %d:\n got %+v\nwant %+v", i, got, tc.want[i])
				}
				if want, ok := tc.changes[i]; ok && !reflect.DeepEqual(l.Changes, want) {
					t.Errorf("layer %d changes:\n got %+v\nwant %+v", i, l.Changes, want)
				}
				checkChangesAgree(t, l)
			}
			if rep.TotalBytes != tc.total || rep.FinalBytes != tc.final || rep.WastedBytes != tc.total-tc.final {
				t.Errorf("total/final/wasted = %d/%d/%d, want %d/%d/%d", rep.TotalBytes, rep.FinalBytes, rep.WastedBytes, tc.total, tc.final, tc.total-tc.final)
			}
			if !reflect.DeepEqual(rep.Wasted, tc.wasted) {
				t.Errorf("wasted files:\n got %+v\nwant %+v", rep.Wasted, tc.wasted)
			}
			checkInvariants(t, rep)
		})
	}
}

// checkChangesAgree checks a layer's counts against its change list.
func checkChangesAgree(t *testing.T, l LayerReport) {
	t.Helper()
	var got counts
	for i, c := range l.Changes {
		if i > 0 && l.Changes[i-1].Path >= c.Path {
			t.Errorf("layer %d: changes not sorted: %q before %q", l.Index, l.Changes[i-1].Path, c.Path)
		}
		switch c.Kind {
		case Added:
			got.added++
			got.addedB += c.Size
		case Changed:
			got.changed++
			got.changedB += c.Size
		case Removed:
			got.removed++
			got.remB += c.Size
		}
	}
	want := countsOf(l)
	want.size, want.wasted = 0, 0
	if got != want {
		t.Errorf("layer %d: change list sums to %+v, counts say %+v", l.Index, got, want)
	}
}

// checkInvariants checks what must hold of every report.
func checkInvariants(t *testing.T, rep *Report) {
	t.Helper()
	var size, wasted, listed int64
	for _, l := range rep.Layers {
		size += l.Size
		wasted += l.WastedBytes
	}
	for _, w := range rep.Wasted {
		listed += w.Bytes
	}
	var caused int64
	for _, c := range rep.Causes {
		caused += c.Bytes
		if c.Layer < 0 || c.Layer >= len(rep.Layers) || c.Files <= 0 {
			t.Errorf("cause %+v out of range", c)
		}
	}
	if caused != rep.WastedBytes {
		t.Errorf("causes add up to %d, wasted is %d", caused, rep.WastedBytes)
	}
	if size != rep.TotalBytes || wasted != rep.WastedBytes || listed != rep.WastedBytes {
		t.Errorf("layer sizes %d, layer waste %d, listed waste %d; report says total %d wasted %d", size, wasted, listed, rep.TotalBytes, rep.WastedBytes)
	}
	if rep.TotalBytes != rep.FinalBytes+rep.WastedBytes || rep.FinalBytes < 0 || rep.WastedBytes < 0 {
		t.Errorf("total %d != final %d + wasted %d", rep.TotalBytes, rep.FinalBytes, rep.WastedBytes)
	}
	want := 1.0
	if rep.TotalBytes > 0 {
		want = float64(rep.FinalBytes) / float64(rep.TotalBytes)
	}
	if rep.Efficiency != want {
		t.Errorf("efficiency %v, want %v", rep.Efficiency, want)
	}
}

func TestAnalyzeEfficiency(t *testing.T) {
	rep, err := Analyze(context.Background(), image(t, L(file("a", 300), file("b", 100)), L(wh("a"))), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Efficiency != 0.25 {
		t.Errorf("efficiency = %v, want 0.25", rep.Efficiency)
	}
	rep, err = Analyze(context.Background(), image(t, L(dir("d"))), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Efficiency != 1 {
		t.Errorf("efficiency of an image without file bytes = %v, want 1", rep.Efficiency)
	}
	if rep, err = Analyze(context.Background(), nil, Options{}); err != nil || rep.Efficiency != 1 || len(rep.Layers) != 0 {
		t.Errorf("no layers: %+v, %v", rep, err)
	}
}

func TestAnalyzeWithoutFilesOmitsChanges(t *testing.T) {
	rep, err := Analyze(context.Background(), image(t, L(file("a", 1), file("b", 2))), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Layers[0].Changes != nil || rep.Layers[0].Added != 2 {
		t.Errorf("got %+v", rep.Layers[0])
	}
}

func TestAnalyzeCompressedLayers(t *testing.T) {
	base := tarBytes(t, dir("big"), file("big/a", 5000), dir("big/b"), file("big/b/c", 3000), file("keep", 10))
	top := tarBytes(t, wh("big"), file("new", 1))
	want, err := Analyze(context.Background(), []Layer{blobLayer(base, nil), blobLayer(top, nil)}, Options{Files: true})
	if err != nil {
		t.Fatal(err)
	}
	if want.WastedBytes != 8000 {
		t.Fatalf("plain layers: wasted %d, want 8000", want.WastedBytes)
	}
	for _, c := range []layer.Compression{layer.Gzip, layer.Zstd} {
		t.Run(fmt.Sprint(c), func(t *testing.T) {
			layers := []Layer{blobLayer(compressed(t, base, c), nil), blobLayer(compressed(t, top, layer.Gzip), nil)}
			got, err := Analyze(context.Background(), layers, Options{Files: true})
			if err != nil {
				t.Fatal(err)
			}
			for i := range got.Layers {
				got.Layers[i].Digest = want.Layers[i].Digest
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("compressed report differs:\n got %+v\nwant %+v", got, want)
			}
		})
	}
}

func TestAnalyzeErrors(t *testing.T) {
	valid := blobLayer(tarBytes(t, file("a", 1)), nil)
	truncated := tarBytes(t, file("a", 2000))
	truncated = truncated[:700]
	tests := []struct {
		name   string
		layers []Layer
		opts   Options
		is     error
	}{
		{"open fails", []Layer{valid, failingLayer()}, Options{}, errOpen},
		{"no open function", []Layer{{Digest: digest.FromString("x")}}, Options{}, errdef.ErrInvalid},
		{"truncated tar", []Layer{blobLayer(truncated, nil)}, Options{}, errdef.ErrInvalid},
		{"corrupt gzip", []Layer{blobLayer([]byte{0x1f, 0x8b, 0, 1, 2, 3}, nil)}, Options{}, errdef.ErrInvalid},
		{"whiteout without a name", []Layer{blobLayer(tarBytes(t, file("d/.wh.", 0)), nil)}, Options{}, errdef.ErrInvalid},
		{"name longer than PATH_MAX", []Layer{blobLayer(tarBytes(t, file(strings.Repeat("a/", 2100)+"f", 0)), nil)}, Options{}, errdef.ErrInvalid},
		{"symlink target longer than PATH_MAX", []Layer{blobLayer(tarBytes(t, symlink("s", strings.Repeat("x", 5000))), nil)}, Options{}, errdef.ErrInvalid},
		{"too deep through symlinks", []Layer{blobLayer(tarBytes(t, symlink("a", strings.Repeat("d/", 1200)), symlink("b", "a/"+strings.Repeat("e/", 1000)), file("b/f", 1)), nil)}, Options{}, errdef.ErrInvalid},
		{"symlink loop", []Layer{blobLayer(tarBytes(t, symlink("a", "b"), symlink("b", "a"), file("a/f", 1)), nil)}, Options{}, errdef.ErrInvalid},
		{"too many paths", image(t, L(file("a", 1), file("b", 1)), L(file("c", 1))), Options{MaxPaths: 2}, errdef.ErrTooLarge},
		{"too many entries in a layer", image(t, L(file("a", 1), file("a", 1), file("a", 1))), Options{MaxPaths: 2}, errdef.ErrTooLarge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rep, err := Analyze(context.Background(), tc.layers, tc.opts)
			if !errors.Is(err, tc.is) {
				t.Fatalf("err = %v, want %v", err, tc.is)
			}
			if rep != nil {
				t.Errorf("report %+v with error", rep)
			}
		})
	}
}

func TestAnalyzeCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Analyze(ctx, image(t, L(file("a", 1)), L(file("b", 1))), Options{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

// verifyingReader fails at EOF unless everything was read, as a digest
// verifier would.
type verifyingReader struct {
	r    *bytes.Reader
	read *atomic.Bool
}

func (v verifyingReader) Read(p []byte) (int, error) {
	n, err := v.r.Read(p)
	if err == io.EOF {
		v.read.Store(true)
	}
	return n, err
}

func (verifyingReader) Close() error { return nil }

func TestAnalyzeReadsBlobToTheEnd(t *testing.T) {
	blob := compressed(t, append(tarBytes(t, file("a", 3)), make([]byte, 4096)...), layer.Gzip)
	var done atomic.Bool
	l := Layer{Digest: digest.FromBytes(blob), Open: func(context.Context) (io.ReadCloser, error) {
		return verifyingReader{bytes.NewReader(blob), &done}, nil
	}}
	if _, err := Analyze(context.Background(), []Layer{l}, Options{}); err != nil {
		t.Fatal(err)
	}
	if !done.Load() {
		t.Error("the blob was not read to its end")
	}
}

func TestReportJSONShape(t *testing.T) {
	layers := image(t, L(dir("d"), file("d/f", 10), file("g", 5)), L(wh("d")))
	rep, err := Analyze(context.Background(), layers, Options{Files: true})
	if err != nil {
		t.Fatal(err)
	}
	got, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	want := `{
  "layers": [
    {
      "index": 0,
      "digest": "` + string(layers[0].Digest) + `",
      "added": 3,
      "changed": 0,
      "removed": 0,
      "addedBytes": 15,
      "changedBytes": 0,
      "removedBytes": 0,
      "size": 15,
      "wastedBytes": 10,
      "changes": [
        {
          "path": "d",
          "kind": "added",
          "type": "dir",
          "size": 0
        },
        {
          "path": "d/f",
          "kind": "added",
          "type": "file",
          "size": 10
        },
        {
          "path": "g",
          "kind": "added",
          "type": "file",
          "size": 5
        }
      ]
    },
    {
      "index": 1,
      "digest": "` + string(layers[1].Digest) + `",
      "added": 0,
      "changed": 0,
      "removed": 2,
      "addedBytes": 0,
      "changedBytes": 0,
      "removedBytes": 10,
      "size": 0,
      "wastedBytes": 0,
      "changes": [
        {
          "path": "d",
          "kind": "removed",
          "type": "dir",
          "size": 0
        },
        {
          "path": "d/f",
          "kind": "removed",
          "type": "file",
          "size": 10
        }
      ]
    }
  ],
  "totalBytes": 15,
  "finalBytes": 5,
  "wastedBytes": 10,
  "efficiency": 0.3333333333333333,
  "wasted": [
    {
      "path": "d/f",
      "bytes": 10,
      "count": 1,
      "layers": [
        0
      ]
    }
  ],
  "causes": [
    {
      "layer": 1,
      "action": "deleted",
      "path": "d",
      "files": 1,
      "bytes": 10
    }
  ]
}`
	if string(got) != want {
		t.Errorf("JSON:\n%s\nwant:\n%s", got, want)
	}
}

func TestAnalyzeCauses(t *testing.T) {
	// Layer 0 ships a directory of three files and two loose files; layer 1
	// deletes the directory and replaces one file; layer 2 hides the rest of
	// etc with an opaque whiteout.
	rep, err := Analyze(context.Background(), image(t,
		L(file("big/a", 100), file("big/b", 200), file("big/sub/c", 300), file("etc/x", 7), file("etc/y", 9)),
		L(wh("big"), file("etc/x", 1)),
		L(opq("etc"), file("etc/z", 2)),
	), Options{})
	if err != nil {
		t.Fatal(err)
	}
	checkInvariants(t, rep)
	want := []WasteCause{
		{Layer: 1, Action: CauseDeleted, Path: "big", Files: 3, Bytes: 600},
		{Layer: 2, Action: CauseOpaque, Path: "etc", Files: 2, Bytes: 10},
		{Layer: 1, Action: CauseReplaced, Path: "etc/x", Files: 1, Bytes: 7},
	}
	if !reflect.DeepEqual(rep.Causes, want) {
		t.Errorf("causes = %+v\nwant %+v", rep.Causes, want)
	}
}
