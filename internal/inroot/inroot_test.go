package inroot

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

func tree(t testing.TB) string {
	t.Helper()
	root := t.TempDir()
	for _, d := range []string{"usr/lib", "etc", "a/b"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	links := map[string]string{
		"lib":       "usr/lib",    // relative
		"abs":       "/usr/lib",   // absolute: rooted at root
		"up":        "../../..",   // climbs: stops at root
		"a/b/c":     "../../etc",  // relative, inside
		"loop":      "loop",       // a loop
		"etc/mtab":  "/proc/self", // dangling inside the tree
		"a/escape":  "/../../../../../tmp",
		"a/deep/up": "x",
	}
	os.MkdirAll(filepath.Join(root, "a/deep"), 0o755)
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(root, name)); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func TestResolve(t *testing.T) {
	root := tree(t)
	cases := map[string]string{
		"/lib/x":        "usr/lib/x",
		"abs/x":         "usr/lib/x",
		"/up/etc":       "etc",
		"a/b/c/passwd":  "etc/passwd",
		"../../etc":     "etc",
		"/etc/mtab":     "proc/self",
		"a/escape/file": "tmp/file",
		"/":             "",
		"":              "",
		"new/dir/file":  "new/dir/file",
	}
	for in, want := range cases {
		got, err := Resolve(root, in)
		if err != nil {
			t.Errorf("%q: %v", in, err)
			continue
		}
		if w := filepath.Join(root, want); got != w {
			t.Errorf("%q: got %s, want %s", in, got, w)
		}
	}
	if _, err := Resolve(root, "loop/x"); err == nil {
		t.Error("a link loop resolved")
	}
	// ResolveParent keeps the last element as it is.
	if got, _ := ResolveParent(root, "/lib"); got != filepath.Join(root, "lib") {
		t.Errorf("ResolveParent /lib: %s", got)
	}
	if got, _ := ResolveParent(root, "/abs/x"); got != filepath.Join(root, "usr/lib/x") {
		t.Errorf("ResolveParent /abs/x: %s", got)
	}
}

func TestOpen(t *testing.T) {
	root := tree(t)
	if err := os.WriteFile(filepath.Join(root, "usr/lib/f"), []byte("in"), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := Open(root, "/abs/f")
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if _, err := Open(root, "/nope"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

// Whatever the name, the result is inside the root.
func FuzzResolve(f *testing.F) {
	for _, s := range []string{"/lib/x", "../../..", "up/up/up", "a/escape/../..", "abs/../../x", "a/b/c/../../../.."} {
		f.Add(s)
	}
	root := tree(f)
	f.Fuzz(func(t *testing.T, name string) {
		for _, follow := range []bool{true, false} {
			p, err := resolve(root, name, follow)
			if err != nil {
				continue
			}
			if !Within(root, p) {
				t.Fatalf("%q resolved to %s, outside %s", name, p, root)
			}
		}
	})
}
