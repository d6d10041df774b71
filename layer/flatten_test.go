package layer

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lading-oci/lading/errdef"
	digest "github.com/opencontainers/go-digest"
)

// blobsOf wraps raw layers as Blobs, with their diff_ids.
func blobsOf(layers ...[]byte) []Blob {
	out := make([]Blob, len(layers))
	for i, l := range layers {
		raw := l
		if rc, _, err := Decompress(bytes.NewReader(l)); err == nil {
			raw, _ = io.ReadAll(rc)
			rc.Close()
		}
		out[i] = Blob{
			Open:   func(context.Context) (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(l)), nil },
			DiffID: digest.FromBytes(raw),
			Name:   fmt.Sprintf("fixture-%d", i),
		}
	}
	return out
}

// applyAll applies layers to a new tree.
func applyAll(t testing.TB, layers ...[]byte) (*Tree, error) {
	t.Helper()
	tree := NewTree()
	for _, l := range layers {
		if err := tree.Apply(context.Background(), bytes.NewReader(l)); err != nil {
			return nil, err
		}
	}
	return tree, nil
}

// describe renders a tree for comparison: every entry's attributes and
// content digest, and which names share a file (hard links), by the first
// name of each group.
func describe(tree *Tree) string {
	first := map[[2]int]string{}
	var b strings.Builder
	var walk func(n *node)
	walk = func(n *node) {
		for _, name := range slices.Sorted(maps.Keys(n.children)) {
			c := n.children[name]
			e := c.Entry
			link := ""
			if e.Type == tar.TypeReg {
				if f, ok := first[c.src]; ok {
					link = " = " + f
				} else {
					first[c.src] = e.Path
				}
			}
			xs := slices.Sorted(maps.Keys(e.Xattrs))
			var xv []string
			for _, k := range xs {
				xv = append(xv, k+"="+e.Xattrs[k])
			}
			mtime := e.ModTime.Unix()
			if e.ModTime.IsZero() {
				mtime = 0 // a directory no layer named: it has no time
			}
			fmt.Fprintf(&b, "%s %c %o %d:%d size=%d %s ->%q dev=%d,%d mtime=%d xattrs=%v%s\n", e.Path, e.Type, e.Mode, e.UID, e.GID,
				e.Size, e.Digest, e.Linkname, e.Devmajor, e.Devminor, mtime, xv, link)
			if c.children != nil {
				walk(c)
			}
		}
	}
	root := tree.root
	if root.gen > 0 {
		fmt.Fprintf(&b, "/ %o %d:%d\n", root.Mode, root.UID, root.GID)
	}
	walk(root)
	return b.String()
}

// checkFlatten flattens layers and checks that the one layer describes
// exactly the filesystem the layers do.
func checkFlatten(t *testing.T, opts FlattenOptions, layers ...[]byte) []byte {
	t.Helper()
	want, err := applyAll(t, layers...)
	if err != nil {
		t.Fatalf("fixture layers do not apply: %v", err)
	}
	var out bytes.Buffer
	res, err := Flatten(context.Background(), blobsOf(layers...), &out, opts)
	if err != nil {
		t.Fatalf("flatten: %v", err)
	}
	if res.Descriptor.Size != int64(out.Len()) || res.Descriptor.Digest != digest.FromBytes(out.Bytes()) {
		t.Errorf("result %+v does not describe the %d bytes written", res.Descriptor, out.Len())
	}
	got, err := applyAll(t, out.Bytes())
	if err != nil {
		t.Fatalf("flattened layer does not apply: %v", err)
	}
	if d, g := describe(want), describe(got); d != g {
		t.Fatalf("flattened filesystem differs:\nwant:\n%s\ngot:\n%s", d, g)
	}
	for _, e := range readEntries(t, out.Bytes()) {
		if strings.Contains(e.hdr.Name, WhiteoutPrefix) {
			t.Errorf("flattened layer carries whiteout %s", e.hdr.Name)
		}
	}
	return out.Bytes()
}

func TestFlatten(t *testing.T) {
	owned := func(h *tar.Header, uid, gid int) *tar.Header { h.Uid, h.Gid = uid, gid; return h }
	l0 := newTarBuilder(t).
		Header(owned(&tar.Header{Typeflag: tar.TypeDir, Name: "etc/", Mode: 0o755}, 0, 0)).
		Header(owned(&tar.Header{Typeflag: tar.TypeReg, Name: "etc/passwd", Mode: 0o644, Size: 0}, 0, 0)).
		Dir("usr/", 0o755).
		File("usr/old", "old content", 0o644).
		Link("usr/old-link", "usr/old").
		File("usr/kept", "kept", 0o600).
		Link("usr/kept-link", "usr/kept").
		Dir("var/cache/", 0o755).
		File("var/cache/big", strings.Repeat("x", 10000), 0o644).
		Dir("opaque/", 0o755).
		File("opaque/gone", "g", 0o644).
		File("replaced-by-dir", "f", 0o644).
		Dir("dir-replaced/", 0o755).
		File("dir-replaced/child", "c", 0o644).
		Header(owned(&tar.Header{Typeflag: tar.TypeReg, Name: "owned", Mode: 0o4750, Size: 0}, 1234, 5678)).
		Header(&tar.Header{Typeflag: tar.TypeReg, Name: "xattr", Mode: 0o644, PAXRecords: map[string]string{"SCHILY.xattr.user.k": "v"}}).
		Header(&tar.Header{Typeflag: tar.TypeChar, Name: "dev/null", Mode: 0o666, Devmajor: 1, Devminor: 3}).
		Header(&tar.Header{Typeflag: tar.TypeFifo, Name: "fifo", Mode: 0o600}).
		Symlink("usr/sym", "old").
		Bytes()
	l1 := newTarBuilder(t).
		Whiteout("var/.wh.cache").
		Whiteout("opaque/.wh..wh..opq").
		File("opaque/new", "n", 0o644).
		File("usr/old", "new content", 0o640). // usr/old-link keeps the old content
		Header(&tar.Header{Typeflag: tar.TypeDir, Name: "usr/", Mode: 0o555, Uid: 7, Gid: 8}).
		Dir("replaced-by-dir/", 0o700).
		File("replaced-by-dir/in", "i", 0o644).
		Whiteout(".wh.dir-replaced").
		File("dir-replaced", "now a file", 0o644).
		Link("usr/second-link", "usr/old-link").
		Header(&tar.Header{Typeflag: tar.TypeDir, Name: "./", Mode: 0o751}).
		Bytes()
	l2 := newTarBuilder(t).
		Whiteout("usr/.wh.kept"). // kept-link still holds the content
		File("etc/passwd", "root:x:0:0::/root:/bin/sh\n", 0o644).
		Bytes()
	for _, c := range []Compression{None, Gzip, Zstd} {
		t.Run(c.String(), func(t *testing.T) {
			out := checkFlatten(t, FlattenOptions{Options: Options{Compression: c}}, l0, l1, compressed(t, l2, Gzip))
			if got := Detect(bufio.NewReader(bytes.NewReader(out))); got != c {
				t.Errorf("output compression %v, want %v", got, c)
			}
		})
	}
	// The same input gives the same bytes.
	a := checkFlatten(t, FlattenOptions{Options: Options{Compression: Gzip}}, l0, l1, l2)
	b := checkFlatten(t, FlattenOptions{Options: Options{Compression: Gzip}}, l0, l1, l2)
	if !bytes.Equal(a, b) {
		t.Error("flatten is not reproducible")
	}
	// Options apply: owners replaced, times clamped.
	uid, ts := 0, time.Unix(1000, 0)
	var out bytes.Buffer
	if _, err := Flatten(context.Background(), blobsOf(l0, l1), &out, FlattenOptions{Options: Options{UID: &uid, GID: &uid, Timestamp: &ts}}); err != nil {
		t.Fatal(err)
	}
	for _, e := range readEntries(t, out.Bytes()) {
		if e.hdr.Uid != 0 || e.hdr.Gid != 0 || e.hdr.ModTime.After(ts) {
			t.Errorf("%s: %d:%d %v", e.hdr.Name, e.hdr.Uid, e.hdr.Gid, e.hdr.ModTime)
		}
	}
}

func compressed(t *testing.T, raw []byte, c Compression) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw, err := Compress(&buf, c)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := zw.Write(raw); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestFlattenErrors(t *testing.T) {
	ctx := context.Background()
	good := newTarBuilder(t).File("f", strings.Repeat("y", 5000), 0o644).Bytes()
	flatten := func(blobs []Blob, opts FlattenOptions) error {
		_, err := Flatten(ctx, blobs, io.Discard, opts)
		return err
	}
	wrong := blobsOf(good)
	wrong[0].DiffID = digest.FromString("other")
	if err := flatten(wrong, FlattenOptions{}); !errors.Is(err, errdef.ErrDigestMismatch) || !strings.Contains(err.Error(), "layer 0 (fixture-0)") {
		t.Errorf("diff_id mismatch: %v", err)
	}
	if err := flatten(blobsOf(good), FlattenOptions{MaxBytes: 1024}); !errors.Is(err, errdef.ErrTooLarge) {
		t.Errorf("size cap: %v", err)
	}
	g := compressed(t, good, Gzip)
	g[len(g)-1] ^= 1
	bad := blobsOf(g)
	bad[0].DiffID = ""
	if err := flatten(bad, FlattenOptions{}); !errors.Is(err, errdef.ErrInvalid) {
		t.Errorf("corrupt gzip: %v", err)
	}
	// A layer that reads differently the second time.
	n := 0
	flaky := []Blob{{Open: func(context.Context) (io.ReadCloser, error) {
		n++
		if n == 1 {
			return io.NopCloser(bytes.NewReader(good)), nil
		}
		return io.NopCloser(bytes.NewReader(newTarBuilder(t).File("f", "short", 0o644).Bytes())), nil
	}}}
	if err := flatten(flaky, FlattenOptions{}); !errors.Is(err, errdef.ErrInvalid) {
		t.Errorf("layer that changed between reads: %v", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := Flatten(cctx, blobsOf(good), io.Discard, FlattenOptions{}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
}

// FuzzFlatten checks that two layers that apply to a tree flatten into one
// layer describing the same tree.
func FuzzFlatten(f *testing.F) {
	b := func(fn func(*tarBuilder) *tarBuilder) []byte { return fn(newTarBuilder(f)).Bytes() }
	f.Add(b(func(t *tarBuilder) *tarBuilder { return t.File("a", "1", 0o644).Link("b", "a") }),
		b(func(t *tarBuilder) *tarBuilder { return t.File("a", "2", 0o600).Whiteout(".wh.c") }))
	f.Add(b(func(t *tarBuilder) *tarBuilder { return t.Dir("d/", 0o755).File("d/x", "x", 0o644) }),
		b(func(t *tarBuilder) *tarBuilder { return t.Whiteout("d/.wh..wh..opq").Symlink("d/y", "../x") }))
	f.Fuzz(func(t *testing.T, l0, l1 []byte) {
		if _, err := applyAll(t, l0, l1); err != nil {
			return
		}
		checkFlatten(t, FlattenOptions{}, l0, l1)
	})
}
