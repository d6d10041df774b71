//go:build linux

package unpack

import (
	"archive/tar"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func FuzzApply(f *testing.F) {
	f.Add(tarOf(f, dir("a"), file("a/f", "x"), symlink("l", "a/f"), hardlink("h", "a/f"), whiteoutEnt("a/.wh.g")))
	f.Add(tarOf(f, symlink("evil", "../../../canary"), file("evil/file", "pwn"), hardlink("h", "evil/file")))
	f.Add(tarOf(f, symlink("evil", "/"), whiteoutEnt("evil/.wh..wh..opq"), dir("d"), symlink("d", ".."), file("d/x", "x")))
	f.Add(tarOf(f, file("../x", "x")))
	f.Add(tarOf(f, fifo("p"), device("c", tar.TypeChar), withMode(file("s", "s"), 0o4755)))
	f.Add(gz(f, tarOf(f, file("f", "gz"))))
	f.Add(zst(f, tarOf(f, file("f", "zstd"))))
	f.Fuzz(func(t *testing.T, data []byte) {
		top, root := fuzzTarget(t)
		before := snapshot(t, top, rootRel)
		// Rootless keeps the tree removable by the cleanup whatever modes
		// the input asks for.
		Apply(context.Background(), root, bytes.NewReader(data), Options{Rootless: true, MaxBytes: 8 << 20})
		if d := diffSnapshots(before, snapshot(t, top, rootRel), exactEq); len(d) > 0 {
			t.Fatalf("outside of root changed:\n%s", strings.Join(d, "\n"))
		}
	})
}

// FuzzApplyLayers applies two layers through ApplyLayers, the second
// decompressed ahead while the first is written.
func FuzzApplyLayers(f *testing.F) {
	f.Add(tarOf(f, symlink("evil", "../../../canary"), dir("d")), gz(f, tarOf(f, file("evil/file", "pwn"), whiteoutEnt(".wh.d"))))
	f.Add(tarOf(f, dir("a"), file("a/f", "x")), zst(f, tarOf(f, whiteoutEnt("a/.wh..wh..opq"), hardlink("h", "a/f"))))
	f.Add(tarOf(f, file("big", strings.Repeat("x", 3<<20))), tarOf(f, symlink("big", "/"), file("big/x", "x")))
	f.Fuzz(func(t *testing.T, one, two []byte) {
		top, root := fuzzTarget(t)
		before := snapshot(t, top, rootRel)
		ApplyLayers(context.Background(), root, []Layer{bytesLayer(one, ""), bytesLayer(two, "")},
			Options{Rootless: true, MaxBytes: 8 << 20, Lookahead: 1})
		if d := diffSnapshots(before, snapshot(t, top, rootRel), exactEq); len(d) > 0 {
			t.Fatalf("outside of root changed:\n%s", strings.Join(d, "\n"))
		}
	})
}

// fuzzTarget makes a canary directory and a target root for one fuzz input.
// It works on tmpfs when /dev/shm is one: on ext4, making and deleting
// directories thousands of times a second makes every new inode search
// through the recently deleted ones, and fuzzing slows to a crawl.
func fuzzTarget(t *testing.T) (top, root string) {
	t.Helper()
	base := ""
	var st syscall.Statfs_t
	if syscall.Statfs("/dev/shm", &st) == nil && st.Type == 0x01021994 {
		base = "/dev/shm"
	}
	top, err := os.MkdirTemp(base, "lading-fuzz-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(top) })
	canary := filepath.Join(top, "canary")
	root = filepath.Join(top, "x", "y", "root")
	if err := os.MkdirAll(canary, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(canary, "file"), []byte("secret"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatal(err)
	}
	return top, root
}
