//go:build linux

package unpack

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestApplySameLayerDependencies covers later entries of a layer that
// depend on files written earlier in it (replacing their directory,
// linking to them, rewriting them, whiting them out), checking confinement
// and the result.
func TestApplySameLayerDependencies(t *testing.T) {
	many := func(prefix string, n int) []ent {
		var out []ent
		for i := 0; i < n; i++ {
			out = append(out, file(fmt.Sprintf("%s/f%d", prefix, i), strings.Repeat("x", i)))
		}
		return out
	}
	cat := func(parts ...[]ent) []ent {
		var out []ent
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	for _, tc := range []struct {
		name    string
		layers  func(abs string) [][]ent
		wantErr bool
		check   func(t *testing.T, root, abs string)
	}{
		{name: "file, then a symlink replaces its parent, then write through it", layers: func(abs string) [][]ent {
			return [][]ent{cat(many("d", 200), []ent{symlink("d", abs), file("d/file", "pwn")})}
		}, check: func(t *testing.T, root, abs string) {
			if readFile(t, filepath.Join(root, abs, "file")) != "pwn" {
				t.Error("not written into the confined symlink target")
			}
			if fi, err := os.Lstat(filepath.Join(root, "d")); err != nil || fi.Mode()&os.ModeSymlink == 0 {
				t.Error("d is not the symlink")
			}
		}},
		{name: "files, then a relative symlink replaces the parent", layers: func(string) [][]ent {
			return [][]ent{cat(many("d", 200), []ent{symlink("d", "../../../canary"), file("d/file", "pwn")})}
		}, check: func(t *testing.T, root, abs string) {
			if readFile(t, filepath.Join(root, "canary/file")) != "pwn" {
				t.Error("not confined")
			}
		}},
		{name: "file then a hardlink to it", layers: func(string) [][]ent {
			return [][]ent{cat(many("d", 50), []ent{hardlink("h", "d/f49"), hardlink("d/f0", "d/f48")})}
		}, check: func(t *testing.T, root, abs string) {
			s := snapshot(t, root)
			if s["h"].Ino != s["d/f49"].Ino || s["h"].Size != 49 || s["d/f0"].Ino != s["d/f48"].Ino || s["d/f48"].Nlink != 2 {
				t.Errorf("hardlinks: %+v %+v %+v", s["h"], s["d/f49"], s["d/f0"])
			}
		}},
		{name: "file then the same name again", layers: func(string) [][]ent {
			return [][]ent{cat(many("d", 50), many("d", 50)[:10], []ent{file("d/f3", "last")})}
		}, check: func(t *testing.T, root, abs string) {
			if readFile(t, filepath.Join(root, "d/f3")) != "last" || readFile(t, filepath.Join(root, "d/f4")) != "xxxx" {
				t.Error("wrong content")
			}
		}},
		{name: "file then a directory at its name", layers: func(string) [][]ent {
			return [][]ent{cat(many("d", 50), []ent{dir("d/f7"), file("d/f7/in", "i")})}
		}, check: func(t *testing.T, root, abs string) {
			if readFile(t, filepath.Join(root, "d/f7/in")) != "i" {
				t.Error("directory not made over the file")
			}
		}},
		{name: "file then a path through it", layers: func(string) [][]ent {
			return [][]ent{cat(many("d", 50), []ent{file("d/f7/in", "i")})}
		}, wantErr: true},
		{name: "many files then an opaque whiteout in a later layer", layers: func(string) [][]ent {
			return [][]ent{many("d", 300), {dir("d"), file("d/new", "n"), whiteoutEnt("d/.wh..wh..opq")}}
		}, check: func(t *testing.T, root, abs string) {
			if got := names(snapshot(t, root)); got != ". d d/new" {
				t.Errorf("tree = %q", got)
			}
		}},
		{name: "many files then a whiteout of their directory in the same layer", layers: func(string) [][]ent {
			return [][]ent{{file("d/lower", "l")}, cat(many("d", 300), []ent{whiteoutEnt(".wh.d")})}
		}, check: func(t *testing.T, root, abs string) {
			s := snapshot(t, root)
			if _, ok := s["d/lower"]; ok || len(s) != 302 {
				t.Errorf("tree has %d paths (lower kept: %v)", len(s), ok)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			top, canary, root := canaryLayout(t)
			before := snapshot(t, top, rootRel)
			var err error
			for _, ents := range tc.layers(canary) {
				if _, err = applyBytes(t, root, tarOf(t, ents...), Options{}); err != nil {
					break
				}
			}
			if (err != nil) != tc.wantErr {
				t.Errorf("err = %v, want error %v", err, tc.wantErr)
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
