//go:build linux

package unpack

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/lading-oci/lading/errdef"
)

// canaryLayout makes T/canary (files that must never change) and the
// target T/x/y/root, and returns T, the canary's absolute path and root.
func canaryLayout(t *testing.T) (top, canary, root string) {
	t.Helper()
	top = t.TempDir()
	canary = filepath.Join(top, "canary")
	root = filepath.Join(top, "x", "y", "root")
	for _, d := range []string{canary, filepath.Join(canary, "sub"), root} {
		if err := os.MkdirAll(d, 0o750); err != nil {
			t.Fatal(err)
		}
	}
	for p, body := range map[string]string{"file": "secret", "sub/inner": "inner", ".wh.x": "w"} {
		if err := os.WriteFile(filepath.Join(canary, p), []byte(body), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, p := range []string{"file", "sub/inner", "sub", ".", "../x", "../x/y"} {
		os.Chtimes(filepath.Join(canary, p), old, old)
	}
	return top, canary, root
}

const rootRel = "x/y/root"

func TestApplyHostile(t *testing.T) {
	type hcase struct {
		name    string
		layers  func(abs string) [][]ent
		opts    Options
		wantErr error // nil: the layers must apply (confined)
		check   func(t *testing.T, root, abs string)
	}
	one := func(e ...ent) func(string) [][]ent { return func(string) [][]ent { return [][]ent{e} } }
	isFile := func(rel, body string) func(t *testing.T, root, abs string) {
		return func(t *testing.T, root, abs string) {
			t.Helper()
			rel = strings.ReplaceAll(rel, "ABS", abs)
			if got := readFile(t, filepath.Join(root, rel)); got != body {
				t.Errorf("%s = %q, want %q", rel, got, body)
			}
		}
	}
	cases := []hcase{
		{name: "dotdot name", layers: one(file("../escape", "pwn")), wantErr: errdef.ErrUnsafePath},
		{name: "dotdot to canary", layers: one(file("../../../canary/file", "pwn")), wantErr: errdef.ErrUnsafePath},
		{name: "dotdot in the middle", layers: one(file("a/../../x", "pwn")), wantErr: errdef.ErrUnsafePath},
		{name: "dotdot dir", layers: one(withMode(dir("../../.."), 0o777)), wantErr: errdef.ErrUnsafePath},
		{name: "dotdot symlink name", layers: one(symlink("../evil", "/")), wantErr: errdef.ErrUnsafePath},
		{name: "absolute name", layers: one(file("/abs/path", "x")), check: isFile("abs/path", "x")},
		{name: "absolute name of the canary", layers: func(abs string) [][]ent { return [][]ent{{file(abs+"/file", "pwn")}} },
			check: isFile("ABS/file", "pwn")},
		{name: "absolute symlink then write through it", layers: func(abs string) [][]ent {
			return [][]ent{{symlink("evil", abs), file("evil/file", "pwn"), file("evil/new", "pwn")}}
		}, check: isFile("ABS/new", "pwn")},
		{name: "dotdot symlink then write through it", layers: one(symlink("evil", "../../.."), file("evil/file", "pwn")),
			check: isFile("file", "pwn")},
		{name: "relative symlink to canary then write", layers: one(symlink("evil", "../../../canary"), file("evil/file", "pwn")),
			check: isFile("canary/file", "pwn")},
		{name: "symlink in layer 1, write in layer 2", layers: func(string) [][]ent {
			return [][]ent{{symlink("evil", "../../../canary")}, {file("evil/file", "pwn"), withMode(dir("evil/sub"), 0o777)}}
		}, check: isFile("canary/file", "pwn")},
		{name: "symlink chain", layers: one(symlink("l1", "l2"), symlink("l2", "d/../../../../canary"), dir("d"), file("l1/file", "pwn")),
			check: isFile("canary/file", "pwn")},
		{name: "mkdir through absolute symlink", layers: func(abs string) [][]ent {
			return [][]ent{{symlink("evil", abs), withMode(dir("evil/sub"), 0o777), withMode(dir("evil"), 0o777)}}
		}},
		{name: "file over escaping symlink", layers: func(abs string) [][]ent {
			return [][]ent{{symlink("evil", abs+"/file")}, {withMode(file("evil", "pwn"), 0o777)}}
		}, check: isFile("evil", "pwn")},
		{name: "fifo over escaping symlink", layers: func(abs string) [][]ent {
			return [][]ent{{symlink("evil", abs+"/file"), fifo("evil")}}
		}},
		{name: "hardlink to absolute canary", layers: func(abs string) [][]ent { return [][]ent{{hardlink("h", abs+"/file")}} },
			wantErr: errdef.ErrNotFound},
		{name: "hardlink to dotdot canary", layers: one(hardlink("h", "../canary/file")), wantErr: errdef.ErrUnsafePath},
		{name: "hardlink to deep dotdot canary", layers: one(hardlink("h", "../../../canary/file")), wantErr: errdef.ErrUnsafePath},
		{name: "hardlink via absolute symlink", layers: func(abs string) [][]ent {
			return [][]ent{{symlink("evil", abs), hardlink("h", "evil/file")}}
		}, wantErr: errdef.ErrNotFound},
		{name: "hardlink via relative symlink", layers: func(string) [][]ent {
			return [][]ent{{symlink("evil", "../../../canary")}, {hardlink("h", "evil/file")}}
		}, wantErr: errdef.ErrNotFound},
		{name: "hardlink to an escaping symlink itself", layers: func(abs string) [][]ent {
			return [][]ent{{symlink("evil", abs+"/file"), hardlink("h", "evil"), file("h2", "x")}}
		}},
		{name: "hardlink named through escaping symlink", layers: func(abs string) [][]ent {
			return [][]ent{{file("x", "x"), symlink("evil", abs), hardlink("evil/file", "x")}}
		}, check: isFile("ABS/file", "x")},
		{name: "hardlink over escaping symlink", layers: func(abs string) [][]ent {
			return [][]ent{{file("x", "x"), symlink("evil", abs+"/file"), hardlink("evil", "x")}}
		}, check: isFile("evil", "x")},
		{name: "whiteout dotdot", layers: one(whiteoutEnt(".wh..")), wantErr: errdef.ErrUnsafePath},
		{name: "whiteout dotdot dot", layers: one(whiteoutEnt(".wh...")), wantErr: errdef.ErrUnsafePath},
		{name: "whiteout in parent", layers: one(whiteoutEnt("../.wh.x")), wantErr: errdef.ErrUnsafePath},
		{name: "whiteout of the canary by dotdot", layers: one(whiteoutEnt("../../../.wh.canary")), wantErr: errdef.ErrUnsafePath},
		{name: "whiteout by absolute name", layers: func(abs string) [][]ent { return [][]ent{{whiteoutEnt(abs + "/.wh.file")}} }},
		{name: "whiteout through absolute symlink", layers: func(abs string) [][]ent {
			return [][]ent{{symlink("evil", abs)}, {whiteoutEnt("evil/.wh.file"), whiteoutEnt("evil/.wh.sub")}}
		}},
		{name: "whiteout through relative symlink", layers: func(string) [][]ent {
			return [][]ent{{symlink("evil", "../../../canary"), whiteoutEnt("evil/.wh.file")}}
		}},
		{name: "whiteout of an escaping symlink", layers: func(abs string) [][]ent {
			return [][]ent{{symlink("evil", abs)}, {whiteoutEnt(".wh.evil")}}
		}, check: func(t *testing.T, root, abs string) {
			if exists(filepath.Join(root, "evil")) {
				t.Error("symlink not removed")
			}
		}},
		{name: "opaque whiteout in symlinked dir outside", layers: func(abs string) [][]ent {
			return [][]ent{{symlink("evil", abs)}, {whiteoutEnt("evil/.wh..wh..opq")}}
		}},
		{name: "opaque whiteout through symlink to the parent", layers: func(string) [][]ent {
			return [][]ent{{file("keep", "k"), symlink("evil", "../../..")}, {whiteoutEnt("evil/.wh..wh..opq")}}
		}, check: func(t *testing.T, root, abs string) {
			// Confined: evil resolves to the root, whose lower entries go.
			if exists(filepath.Join(root, "keep")) {
				t.Error("confined opaque whiteout did not apply to the root")
			}
		}},
		{name: "symlink replaces dir, then write beneath", layers: func(abs string) [][]ent {
			return [][]ent{{dir("d"), symlink("d", abs), file("d/file", "pwn")}}
		}, check: isFile("ABS/file", "pwn")},
		{name: "symlink replaces dir across layers, then write beneath", layers: func(abs string) [][]ent {
			return [][]ent{{dir("d"), file("d/f", "f")}, {symlink("d", "../../../canary")}, {file("d/file", "pwn")}}
		}, check: isFile("canary/file", "pwn")},
		{name: "root replaced by symlink", layers: func(abs string) [][]ent { return [][]ent{{symlink("./", abs)}} },
			wantErr: errdef.ErrUnsafePath},
		{name: "device in rootless mode", layers: one(device("dev/null", tar.TypeChar), device("dev/sda", tar.TypeBlock)),
			opts: Options{Rootless: true}, check: func(t *testing.T, root, abs string) {
				if exists(filepath.Join(root, "dev/null")) || exists(filepath.Join(root, "dev/sda")) {
					t.Error("device made in rootless mode")
				}
			}},
		{name: "symlink loop", layers: one(symlink("a", "b"), symlink("b", "a"), file("a/file", "x")), wantErr: errTooManyLinks},
		{name: "path through a file", layers: one(file("f", "x"), file("f/g", "y"))},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			top, canary, root := canaryLayout(t)
			before := snapshot(t, top, rootRel)
			var raws [][]byte
			for _, ents := range tc.layers(canary) {
				raws = append(raws, tarOf(t, ents...))
			}
			var err error
			if len(raws) == 1 {
				_, err = applyBytes(t, root, raws[0], tc.opts)
			} else {
				// Several layers go through ApplyLayers, the later ones
				// decompressed ahead into a spill file in root.
				_, err = ApplyLayers(context.Background(), root, layersOf(t, raws), tc.opts)
			}
			switch {
			case tc.name == "path through a file":
				if err == nil {
					t.Error("no error writing beneath a regular file")
				}
			case tc.wantErr == nil && err != nil:
				t.Errorf("err = %v, want confined success", err)
			case tc.wantErr != nil && !errors.Is(err, tc.wantErr):
				t.Errorf("err = %v, want %v", err, tc.wantErr)
			case tc.wantErr != nil && !strings.HasPrefix(err.Error(), "layer entry ") && !strings.Contains(err.Error(), ": layer entry "):
				t.Errorf("err = %v does not name the entry", err)
			}
			if d := diffSnapshots(before, snapshot(t, top, rootRel), exactEq); len(d) > 0 {
				t.Errorf("outside of root changed:\n%s", strings.Join(d, "\n"))
			}
			if tc.check != nil && err == nil {
				tc.check(t, root, strings.TrimPrefix(canary, "/"))
			}
		})
	}
}

// zeroLayer streams a gzip'd tar holding one file of size zero bytes,
// compressed lazily, so a huge layer costs nothing until it is read.
func zeroLayer(size int64) io.ReadCloser {
	pr, pw := io.Pipe()
	go func() {
		zw, _ := gzip.NewWriterLevel(pw, gzip.BestSpeed)
		tw := tar.NewWriter(zw)
		err := tw.WriteHeader(&tar.Header{Name: "zeros", Typeflag: tar.TypeReg, Size: size, Mode: 0o644})
		zeros := make([]byte, 1<<16)
		for n := int64(0); err == nil && n < size; n += int64(len(zeros)) {
			_, err = tw.Write(zeros[:min(int64(len(zeros)), size-n)])
		}
		if err == nil {
			err = tw.Close()
		}
		if err == nil {
			err = zw.Close()
		}
		pw.CloseWithError(err)
	}()
	return pr
}

func TestApplyDecompressionBomb(t *testing.T) {
	top, _, root := canaryLayout(t)
	before := snapshot(t, top, rootRel)
	r := zeroLayer(1 << 30)
	defer r.Close()
	var m0, m1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m0)
	start := time.Now()
	st, err := Apply(context.Background(), root, r, Options{MaxBytes: 10 << 20})
	elapsed := time.Since(start)
	runtime.ReadMemStats(&m1)
	if !errors.Is(err, errdef.ErrTooLarge) || !strings.Contains(err.Error(), `"zeros"`) {
		t.Fatalf("err = %v, want ErrTooLarge naming the entry", err)
	}
	if st.Bytes > 10<<20 {
		t.Errorf("read %d bytes past the cap", st.Bytes)
	}
	if elapsed > 5*time.Second {
		t.Errorf("took %v to stop", elapsed)
	}
	if alloc := m1.TotalAlloc - m0.TotalAlloc; alloc > 128<<20 {
		t.Errorf("allocated %d MiB for a 10 MiB cap", alloc>>20)
	}
	if fi, err := os.Stat(filepath.Join(root, "zeros")); err == nil && fi.Size() > 10<<20 {
		t.Errorf("wrote %d bytes past the cap", fi.Size())
	}
	if d := diffSnapshots(before, snapshot(t, top, rootRel), exactEq); len(d) > 0 {
		t.Errorf("outside of root changed: %v", d)
	}
}

func TestApplyLyingHeader(t *testing.T) {
	top, _, root := canaryLayout(t)
	before := snapshot(t, top, rootRel)
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	_, err := applyBytes(t, root, gz(t, tarOf(t, withSize(file("huge", "short body"), 1<<30))), Options{})
	runtime.ReadMemStats(&m1)
	if !errors.Is(err, errdef.ErrInvalid) || !strings.Contains(err.Error(), `layer entry "huge"`) || !strings.Contains(err.Error(), "truncated") {
		t.Errorf("err = %v", err)
	}
	if alloc := m1.TotalAlloc - m0.TotalAlloc; alloc > 64<<20 {
		t.Errorf("allocated %d MiB", alloc>>20)
	}
	if d := diffSnapshots(before, snapshot(t, top, rootRel), exactEq); len(d) > 0 {
		t.Errorf("outside of root changed: %v", d)
	}
}
