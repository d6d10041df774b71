package layer

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/lading-oci/lading/errdef"
)

// treePaths lists the tree as "path type" lines, in walk order.
func treePaths(t testing.TB, tree *Tree) []string {
	t.Helper()
	var out []string
	err := tree.Each(func(e Entry) error {
		out = append(out, e.Path+" "+string(e.Type))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestTreeApplyWhiteouts(t *testing.T) {
	base := newTarBuilder(t).
		File("file1", "one", 0o644).
		Dir("a/", 0o755).File("a/file2", "two", 0o600).
		Dir("b/", 0o755).File("b/x", "x", 0o644).
		Dir("c/", 0o755).File("c/file3", "three", 0o644).
		Bytes()

	tests := []struct {
		name  string
		layer []byte
		want  []string
	}{{
		name: "spec example: explicit whiteouts",
		layer: newTarBuilder(t).
			Whiteout(".wh.file1").Whiteout("a/.wh.file2").Whiteout(".wh.b").File("file4", "four", 0o644).Bytes(),
		want: []string{"a 5", "c 5", "c/file3 0", "file4 0"},
	}, {
		name:  "opaque whiteout hides all lower children",
		layer: newTarBuilder(t).Dir("c/", 0o755).Whiteout("c/.wh..wh..opq").Bytes(),
		want:  []string{"a 5", "a/file2 0", "b 5", "b/x 0", "c 5", "file1 0"},
	}, {
		name: "opaque whiteout after new entries of its own layer keeps them",
		layer: newTarBuilder(t).
			Dir("a/", 0o755).Dir("a/sub/", 0o755).File("a/sub/new", "n", 0o644).Whiteout("a/.wh..wh..opq").Bytes(),
		want: []string{"a 5", "a/sub 5", "a/sub/new 0", "b 5", "b/x 0", "c 5", "c/file3 0", "file1 0"},
	}, {
		name:  "whiteout does not hide an entry of the same layer",
		layer: newTarBuilder(t).File("new", "n", 0o644).Whiteout(".wh.new").Bytes(),
		want:  []string{"a 5", "a/file2 0", "b 5", "b/x 0", "c 5", "c/file3 0", "file1 0", "new 0"},
	}, {
		name:  "whiteout of a missing name is a no-op",
		layer: newTarBuilder(t).Whiteout(".wh.nothing").Whiteout("nodir/.wh.x").Bytes(),
		want:  []string{"a 5", "a/file2 0", "b 5", "b/x 0", "c 5", "c/file3 0", "file1 0"},
	}, {
		name:  "file replaces directory and its children",
		layer: newTarBuilder(t).File("b", "now a file", 0o644).Bytes(),
		want:  []string{"a 5", "a/file2 0", "b 0", "c 5", "c/file3 0", "file1 0"},
	}, {
		name:  "directory over directory keeps children",
		layer: newTarBuilder(t).Dir("b/", 0o700).Bytes(),
		want:  []string{"a 5", "a/file2 0", "b 5", "b/x 0", "c 5", "c/file3 0", "file1 0"},
	}, {
		name:  "implicit parents and cleaned names",
		layer: newTarBuilder(t).File("./new/deep/../f", "f", 0o644).File("/abs", "", 0o644).Bytes(),
		want:  []string{"a 5", "a/file2 0", "abs 0", "b 5", "b/x 0", "c 5", "c/file3 0", "file1 0", "new 5", "new/f 0"},
	}, {
		name:  "whiteout metadata entries are ignored",
		layer: newTarBuilder(t).Whiteout(".wh..wh.plnk").Bytes(),
		want:  []string{"a 5", "a/file2 0", "b 5", "b/x 0", "c 5", "c/file3 0", "file1 0"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tree := treeOf(t, base, tt.layer)
			got := treePaths(t, tree)
			if !slices.Equal(got, tt.want) {
				t.Errorf("tree:\n got %q\nwant %q", got, tt.want)
			}
			if tree.Len() != len(tt.want) {
				t.Errorf("Len = %d, want %d", tree.Len(), len(tt.want))
			}
		})
	}
}

func TestTreeApplyAttributes(t *testing.T) {
	layer := newTarBuilder(t).
		Dir("etc/", 0o755).
		Header(&tar.Header{Typeflag: tar.TypeReg, Name: "etc/secret", Mode: 0o4750, Uid: 10, Gid: 20, Size: 0,
			PAXRecords: map[string]string{"SCHILY.xattr.user.k": "v\x00bin"}}).
		File("etc/conf", "hello", 0o644).
		Link("etc/conf2", "etc/conf").
		Symlink("etc/l", "../target").
		Header(&tar.Header{Typeflag: tar.TypeChar, Name: "null", Mode: 0o666, Devmajor: 1, Devminor: 3}).
		Header(&tar.Header{Typeflag: tar.TypeFifo, Name: "fifo", Mode: 0o600}).
		Bytes()
	tree := treeOf(t, layer)

	e, ok := tree.Lookup("/etc/secret")
	if !ok || e.Mode != 0o4750 || e.UID != 10 || e.GID != 20 || e.Xattrs["user.k"] != "v\x00bin" || e.Digest != sha("") {
		t.Errorf("etc/secret = %+v, %v", e, ok)
	}
	e, _ = tree.Lookup("etc/conf")
	if e.Type != tar.TypeReg || e.Size != 5 || e.Digest != sha("hello") {
		t.Errorf("etc/conf = %+v", e)
	}
	e, _ = tree.Lookup("./etc/conf2")
	if e.Type != tar.TypeReg || e.Hardlink != "etc/conf" || e.Digest != sha("hello") || e.Path != "etc/conf2" {
		t.Errorf("etc/conf2 = %+v", e)
	}
	e, _ = tree.Lookup("etc/l")
	if e.Type != tar.TypeSymlink || e.Linkname != "../target" {
		t.Errorf("etc/l = %+v", e)
	}
	e, _ = tree.Lookup("null")
	if e.Type != tar.TypeChar || e.Devmajor != 1 || e.Devminor != 3 {
		t.Errorf("null = %+v", e)
	}
	if e, _ = tree.Lookup("fifo"); e.Type != tar.TypeFifo {
		t.Errorf("fifo = %+v", e)
	}
	if got := tree.Children("etc"); !slices.Equal(got, []string{"conf", "conf2", "l", "secret"}) {
		t.Errorf("Children(etc) = %q", got)
	}
	if _, ok := tree.Lookup("etc/missing"); ok {
		t.Error("Lookup of a missing path succeeded")
	}
}

func TestTreeApplyInvalid(t *testing.T) {
	tests := []struct {
		name  string
		layer []byte
		want  error
	}{
		{"bare whiteout prefix", newTarBuilder(t).Whiteout("a/.wh.").Bytes(), errdef.ErrInvalid},
		{"hard link to nothing", newTarBuilder(t).Link("a", "missing").Bytes(), errdef.ErrInvalid},
		{"hard link to directory", newTarBuilder(t).Dir("d/", 0o755).Link("a", "d").Bytes(), errdef.ErrInvalid},
		{"parent is a file", newTarBuilder(t).File("f", "", 0o644).File("f/g", "", 0o644).Bytes(), errdef.ErrInvalid},
		{"root is a file", newTarBuilder(t).File(".", "", 0o644).Bytes(), errdef.ErrInvalid},
		{"truncated", newTarBuilder(t).File("f", strings.Repeat("x", 2000), 0o644).Bytes()[:1500], errdef.ErrInvalid},
		{"unknown type", newTarBuilder(t).Header(&tar.Header{Typeflag: 'Z', Name: "z"}).Bytes(), errdef.ErrUnsupported},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := NewTree().Apply(context.Background(), bytes.NewReader(tt.layer))
			if !errors.Is(err, tt.want) {
				t.Fatalf("Apply error = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestTreeApplyCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := NewTree().Apply(ctx, bytes.NewReader(newTarBuilder(t).File("f", "x", 0o644).Bytes()))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Apply error = %v, want context.Canceled", err)
	}
}

func FuzzTreeApply(f *testing.F) {
	f.Add(newTarBuilder(f).Dir("a/", 0o755).File("a/b", "x", 0o644).Whiteout("a/.wh..wh..opq").Bytes())
	f.Add(newTarBuilder(f).File("f", "x", 0o644).Link("g", "f").Whiteout(".wh.f").Symlink("s", "/etc").Bytes())
	f.Add([]byte("not a tar"))
	f.Fuzz(func(t *testing.T, data []byte) {
		tree := NewTree()
		for range 2 { // as two layers, so whiteouts meet lower entries
			if err := tree.Apply(context.Background(), bytes.NewReader(data)); err != nil {
				return
			}
		}
		n := 0
		if err := tree.Each(func(e Entry) error {
			for _, part := range strings.Split(e.Path, "/") {
				if part == "" || part == "." || part == ".." {
					t.Fatalf("unclean path %q", e.Path)
				}
			}
			n++
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if n != tree.Len() {
			t.Fatalf("Each saw %d entries, Len = %d", n, tree.Len())
		}
	})
}

// TestTreeApplyCorruptCompression checks that the tree reads a compressed
// layer to its end, so a bad gzip checksum after the tar end marker is
// found.
func TestTreeApplyCorruptCompression(t *testing.T) {
	raw := newTarBuilder(t).File("f", strings.Repeat("payload ", 5000), 0o644).Bytes()
	blob := compressed(t, raw, Gzip)
	if err := NewTree().Apply(context.Background(), bytes.NewReader(blob)); err != nil {
		t.Fatalf("intact layer: %v", err)
	}
	blob[len(blob)-1] ^= 0xff
	err := NewTree().Apply(context.Background(), bytes.NewReader(blob))
	if !errors.Is(err, errdef.ErrInvalid) || !strings.Contains(err.Error(), "corrupt") {
		t.Fatalf("corrupt gzip trailer: err = %v, want ErrInvalid saying corrupt", err)
	}
}
