//go:build linux

package unpack

import (
	"archive/tar"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
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
		top := t.TempDir()
		canary := filepath.Join(top, "canary")
		root := filepath.Join(top, "x", "y", "root")
		if err := os.MkdirAll(canary, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(canary, "file"), []byte("secret"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(root, 0o755); err != nil {
			t.Fatal(err)
		}
		before := snapshot(t, top, rootRel)
		// Rootless keeps the tree removable by t.TempDir's cleanup whatever
		// modes the input asks for.
		Apply(context.Background(), root, bytes.NewReader(data), Options{Rootless: true, MaxBytes: 8 << 20})
		if d := diffSnapshots(before, snapshot(t, top, rootRel), exactEq); len(d) > 0 {
			t.Fatalf("outside of root changed:\n%s", strings.Join(d, "\n"))
		}
	})
}
