package layer

import (
	"bytes"
	"context"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/lading-oci/lading/errdef"
	"golang.org/x/sys/unix"
)

// sameTree reports the first difference between two trees, mtimes and
// hard-link origins aside.
func sameTree(t *testing.T, got, want *Tree) {
	t.Helper()
	var g, w []Entry
	collect := func(dst *[]Entry) func(Entry) error {
		return func(e Entry) error { e.ModTime, e.Hardlink = time.Time{}, ""; *dst = append(*dst, e); return nil }
	}
	must(t, got.Each(collect(&g)))
	must(t, want.Each(collect(&w)))
	for i := range max(len(g), len(w)) {
		switch {
		case i >= len(g):
			t.Fatalf("applied tree lacks %+v", w[i])
		case i >= len(w):
			t.Fatalf("applied tree has extra %+v", g[i])
		}
		if !reflect.DeepEqual(g[i], w[i]) && !(maps.Equal(g[i].Xattrs, w[i].Xattrs) && withoutXattrs(g[i]) == withoutXattrs(w[i])) {
			t.Fatalf("applied tree differs:\n got %+v\nwant %+v", g[i], w[i])
		}
	}
}

type entryNoXattrs struct {
	Path, Linkname, Hardlink string
	Type                     byte
	Mode, Size, Maj, Min     int64
	UID, GID                 int
	Digest                   string
}

func withoutXattrs(e Entry) entryNoXattrs {
	return entryNoXattrs{e.Path, e.Linkname, e.Hardlink, e.Type, e.Mode, e.Size, e.Devmajor, e.Devminor, e.UID, e.GID, string(e.Digest)}
}

func TestDiff(t *testing.T) {
	root := os.Geteuid() == 0
	type tc struct {
		name   string
		base   func(t *testing.T, dir string)
		change func(t *testing.T, dir string)
		opts   DiffOptions
		want   []string
		root   bool
	}
	std := func(t *testing.T, dir string) {
		mkdir(t, dir, "d", 0o755)
		writeFile(t, dir, "d/f", "aaaa", 0o644)
		mkdir(t, dir, "d/sub", 0o755)
		writeFile(t, dir, "d/sub/a", "a", 0o644)
		writeFile(t, dir, "d/sub/b", "b", 0o644)
		must(t, os.Symlink("d/f", filepath.Join(dir, "l")))
		writeFile(t, dir, "top", "top", 0o644)
	}
	tests := []tc{{
		name:   "unchanged tree is an empty layer",
		base:   std,
		change: func(t *testing.T, dir string) { touch(t, dir, "d/f", time.Now().Add(time.Hour)) },
		want:   nil,
	}, {
		name:   "add file carries its parent",
		base:   std,
		change: func(t *testing.T, dir string) { writeFile(t, dir, "d/sub/c", "c", 0o600) },
		want:   []string{"d/", "d/sub/", "d/sub/c"},
	}, {
		name: "content changed with same size and mtime",
		base: std,
		change: func(t *testing.T, dir string) {
			fi, err := os.Stat(filepath.Join(dir, "d/f"))
			must(t, err)
			writeFile(t, dir, "d/f", "bbbb", 0o644)
			touch(t, dir, "d/f", fi.ModTime())
		},
		want: []string{"d/", "d/f"},
	}, {
		name:   "chmod",
		base:   std,
		change: func(t *testing.T, dir string) { must(t, unix.Chmod(filepath.Join(dir, "top"), 0o4711)) },
		want:   []string{"top"},
	}, {
		name:   "chmod of a directory alone",
		base:   std,
		change: func(t *testing.T, dir string) { must(t, unix.Chmod(filepath.Join(dir, "d"), 0o700)) },
		want:   []string{"d/"},
	}, {
		name:   "chown",
		root:   true,
		base:   std,
		change: func(t *testing.T, dir string) { must(t, os.Lchown(filepath.Join(dir, "d/sub/a"), 7, 8)) },
		want:   []string{"d/", "d/sub/", "d/sub/a"},
	}, {
		name:   "chown ignored",
		root:   true,
		base:   std,
		change: func(t *testing.T, dir string) { must(t, os.Lchown(filepath.Join(dir, "d/sub/a"), 7, 8)) },
		opts:   DiffOptions{Rootless: true},
		want:   nil,
	}, {
		name:   "delete file",
		base:   std,
		change: func(t *testing.T, dir string) { must(t, os.Remove(filepath.Join(dir, "d/f"))) },
		want:   []string{"d/", "d/.wh.f"},
	}, {
		name:   "delete directory with children is one whiteout",
		base:   std,
		change: func(t *testing.T, dir string) { must(t, os.RemoveAll(filepath.Join(dir, "d/sub"))) },
		want:   []string{"d/", "d/.wh.sub"},
	}, {
		name: "replace file with directory",
		base: std,
		change: func(t *testing.T, dir string) {
			must(t, os.Remove(filepath.Join(dir, "d/f")))
			writeFile(t, dir, "d/f/x", "x", 0o644)
		},
		want: []string{"d/", "d/f/", "d/f/x"},
	}, {
		name: "replace directory with file",
		base: std,
		change: func(t *testing.T, dir string) {
			must(t, os.RemoveAll(filepath.Join(dir, "d/sub")))
			writeFile(t, dir, "d/sub", "now a file", 0o644)
		},
		want: []string{"d/", "d/.wh.sub", "d/sub"},
	}, {
		name: "symlink retarget",
		base: std,
		change: func(t *testing.T, dir string) {
			must(t, os.Remove(filepath.Join(dir, "l")))
			must(t, os.Symlink("top", filepath.Join(dir, "l")))
		},
		want: []string{"l"},
	}, {
		name: "symlink replaced by file",
		base: std,
		change: func(t *testing.T, dir string) {
			must(t, os.Remove(filepath.Join(dir, "l")))
			writeFile(t, dir, "l", "d/f", 0o777)
		},
		want: []string{"l"},
	}, {
		name: "all children replaced, explicit whiteouts",
		base: std,
		change: func(t *testing.T, dir string) {
			must(t, os.RemoveAll(filepath.Join(dir, "d/sub")))
			must(t, os.Remove(filepath.Join(dir, "d/f")))
			writeFile(t, dir, "d/new", "n", 0o644)
		},
		want: []string{"d/", "d/.wh.f", "d/.wh.sub", "d/new"},
	}, {
		name: "all children replaced, opaque whiteout",
		base: std,
		change: func(t *testing.T, dir string) {
			must(t, os.RemoveAll(filepath.Join(dir, "d/sub")))
			must(t, os.Remove(filepath.Join(dir, "d/f")))
			writeFile(t, dir, "d/new", "n", 0o644)
		},
		opts: DiffOptions{OpaqueWhiteouts: true},
		want: []string{"d/", "d/.wh..wh..opq", "d/new"},
	}, {
		name:   "opaque not used while a name remains",
		base:   std,
		change: func(t *testing.T, dir string) { must(t, os.Remove(filepath.Join(dir, "d/f"))) },
		opts:   DiffOptions{OpaqueWhiteouts: true},
		want:   []string{"d/", "d/.wh.f"},
	}, {
		name:   "new name for an unchanged file is a copy",
		base:   std,
		change: func(t *testing.T, dir string) { must(t, os.Link(filepath.Join(dir, "top"), filepath.Join(dir, "u"))) },
		want:   []string{"u"},
	}, {
		name: "new hard-linked files link within the layer",
		base: std,
		change: func(t *testing.T, dir string) {
			writeFile(t, dir, "n1", "n", 0o644)
			must(t, os.Link(filepath.Join(dir, "n1"), filepath.Join(dir, "n2")))
		},
		want: []string{"n1", "n2"},
	}, {
		name: "owner override applies to comparison",
		base: std,
		change: func(t *testing.T, dir string) {
		},
		opts: DiffOptions{Options: Options{UID: ptr(4242)}},
		want: []string{"d/", "d/f", "d/sub/", "d/sub/a", "d/sub/b", "l", "top"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.root && !root {
				t.Skip("needs root")
			}
			dir := t.TempDir()
			tt.base(t, dir)
			baseBlob, _ := create(t, dir, Options{})
			base := treeOf(t, baseBlob)
			tt.change(t, dir)

			for _, c := range allCompressions {
				opts := tt.opts
				opts.Compression = c
				var buf bytes.Buffer
				res, err := CreateDiff(context.Background(), base, dir, &buf, opts)
				if err != nil {
					t.Fatalf("Diff: %v", err)
				}
				if res.Descriptor.Size != int64(buf.Len()) || res.Descriptor.MediaType != MediaType(c) {
					t.Errorf("%v: descriptor %+v for %d bytes", c, res.Descriptor, buf.Len())
				}
				got := readEntries(t, buf.Bytes())
				if names := entryNames(got); !slices.Equal(names, tt.want) {
					t.Fatalf("%v: entries:\n got %q\nwant %q", c, names, tt.want)
				}
				if c != None || tt.opts.Rootless {
					continue // an ignored change is rightly not carried
				}
				// Applying the changeset to the base must give the tree of dir.
				want, _ := create(t, dir, tt.opts.Options)
				sameTree(t, treeOf(t, baseBlob, buf.Bytes()), treeOf(t, want))
			}
		})
	}
}

func touch(t *testing.T, dir, rel string, mtime time.Time) {
	t.Helper()
	must(t, os.Chtimes(filepath.Join(dir, rel), mtime, mtime))
}

func TestDiffChecks(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "a/b", "b", 0o644)
	writeFile(t, dir, "a/c", "c", 0o644)
	epoch := time.Unix(1500000000, 0)

	t.Run("nil base writes what Create writes", func(t *testing.T) {
		for _, c := range allCompressions {
			want, wantRes := create(t, dir, Options{Compression: c, Timestamp: &epoch})
			var buf bytes.Buffer
			res, err := CreateDiff(context.Background(), nil, dir, &buf, DiffOptions{Options: Options{Compression: c, Timestamp: &epoch}})
			must(t, err)
			if !bytes.Equal(buf.Bytes(), want) || !reflect.DeepEqual(res, wantRes) {
				t.Errorf("%v: Diff from nothing differs from Create", c)
			}
		}
	})
	t.Run("reproducible", func(t *testing.T) {
		base := treeOf(t, newTarBuilder(t).Dir("a/", 0o755).File("a/b", "old", 0o644).File("gone", "", 0o644).Bytes())
		var one, two bytes.Buffer
		opts := DiffOptions{Options: Options{Compression: Gzip, Timestamp: &epoch}}
		_, err := CreateDiff(context.Background(), base, dir, &one, opts)
		must(t, err)
		touch(t, dir, "a/b", time.Now().Add(time.Minute))
		_, err = CreateDiff(context.Background(), base, dir, &two, opts)
		must(t, err)
		if !bytes.Equal(one.Bytes(), two.Bytes()) {
			t.Error("two diffs of the same change differ")
		}
		got := readEntries(t, one.Bytes())
		if names := entryNames(got); !slices.Equal(names, []string{".wh.gone", "a/", "a/b", "a/c"}) {
			t.Errorf("entries %q", names)
		}
		for _, e := range got {
			if e.hdr.ModTime.After(epoch) {
				t.Errorf("%s: mtime %v after %v", e.hdr.Name, e.hdr.ModTime, epoch)
			}
		}
	})
	t.Run("whiteout names on disk are refused", func(t *testing.T) {
		d := t.TempDir()
		writeFile(t, d, "x/.wh.y", "", 0o644)
		_, err := CreateDiff(context.Background(), NewTree(), d, &bytes.Buffer{}, DiffOptions{})
		if !errors.Is(err, errdef.ErrInvalid) {
			t.Fatalf("error %v, want ErrInvalid", err)
		}
	})
	t.Run("xattr change", func(t *testing.T) {
		d := t.TempDir()
		writeFile(t, d, "f", "x", 0o644)
		base := treeOf(t, func() []byte { b, _ := create(t, d, Options{}); return b }())
		if err := unix.Lsetxattr(filepath.Join(d, "f"), "user.k", []byte("v"), 0); err != nil {
			t.Skipf("user xattrs not supported here: %v", err)
		}
		for _, opts := range []struct {
			o    DiffOptions
			want []string
		}{{DiffOptions{}, []string{"f"}}, {DiffOptions{IgnoreXattrs: true}, nil}} {
			var buf bytes.Buffer
			_, err := CreateDiff(context.Background(), base, d, &buf, opts.o)
			must(t, err)
			if names := entryNames(readEntries(t, buf.Bytes())); !slices.Equal(names, opts.want) {
				t.Errorf("%+v: entries %q, want %q", opts.o, names, opts.want)
			}
		}
	})
}
