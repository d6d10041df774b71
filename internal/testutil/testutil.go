// Package testutil builds the fixtures that the tests of several packages
// share: a small runnable image made from Debian's busybox-static.
package testutil

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lading-oci/lading/content"
	"github.com/lading-oci/lading/content/contenttest"
	"github.com/lading-oci/lading/content/ocilayout"
	"github.com/lading-oci/lading/mutate"
)

// Applets are the busybox commands the fixture image links.
var Applets = []string{"sh", "echo", "cat", "ls", "id", "env", "sleep", "true", "false", "touch", "mkdir", "rm", "wc", "pwd", "test", "stat", "printf", "grep", "head", "tr", "kill"}

// Busybox returns the path of a statically linked busybox, or skips the
// test when there is none (apt-get install busybox-static).
func Busybox(t testing.TB) string {
	t.Helper()
	for _, p := range []string{"/bin/busybox", "/usr/bin/busybox"} {
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			out, err := exec.Command("file", "-L", p).Output()
			if err == nil && !strings.Contains(string(out), "statically linked") && !strings.Contains(string(out), "static-pie") {
				continue
			}
			return p
		}
	}
	t.Skip("busybox-static is not installed (apt-get install busybox-static); skipping")
	return ""
}

// BusyboxTree writes a root filesystem into dir: /bin/busybox with the
// Applets linked to it, and an /etc/passwd and /etc/group with root, a user
// "user" (1000:1000, also in group "extra", 2000) and a group "staff" (50).
func BusyboxTree(t testing.TB, dir string) {
	t.Helper()
	bb := Busybox(t)
	must(t, os.MkdirAll(filepath.Join(dir, "bin"), 0o755))
	must(t, os.MkdirAll(filepath.Join(dir, "etc"), 0o755))
	must(t, os.MkdirAll(filepath.Join(dir, "tmp"), 0o1777))
	must(t, os.Chmod(filepath.Join(dir, "tmp"), 0o1777))
	data, err := os.ReadFile(bb)
	must(t, err)
	must(t, os.WriteFile(filepath.Join(dir, "bin", "busybox"), data, 0o755))
	for _, a := range Applets {
		must(t, os.Symlink("busybox", filepath.Join(dir, "bin", a)))
	}
	must(t, os.WriteFile(filepath.Join(dir, "etc", "passwd"), []byte(
		"root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/home/user:/bin/sh\n"), 0o644))
	must(t, os.WriteFile(filepath.Join(dir, "etc", "group"), []byte(
		"root:x:0:\nstaff:x:50:\nusers:x:1000:\nextra:x:2000:user\n"), 0o644))
}

// BusyboxImage builds the busybox tree as a one-layer image tagged tag in
// the OCI layout at layoutDir (created if needed), with changes applied to
// its configuration, and returns the open store and the loaded image.
func BusyboxImage(t testing.TB, layoutDir, tag string, changes mutate.ConfigChanges) (*ocilayout.Store, *content.LoadedImage) {
	t.Helper()
	ctx := context.Background()
	root := t.TempDir()
	BusyboxTree(t, root)
	st, err := ocilayout.Init(ctx, layoutDir)
	must(t, err)
	t.Cleanup(func() { st.Close() })
	ts := time.Unix(0, 0).UTC()
	desc, err := mutate.Build(ctx, st, root, mutate.BuildOptions{
		LayerOptions: mutate.LayerOptions{Timestamp: &ts, CreatedBy: "testutil busybox"},
		Changes:      changes,
	})
	must(t, err)
	must(t, st.Tag(ctx, desc, tag))
	img, err := content.LoadImage(ctx, st, desc, nil)
	must(t, err)
	return st, img
}

// NeedRoot skips a test that needs root.
func NeedRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root; skipping")
	}
}

// NeedTool returns the path of a command, or skips the test when it is not
// installed.
func NeedTool(t testing.TB, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s is not installed (apt-get install %s); skipping", name, pkg)
	}
	return p
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// Tool returns the path of an external program, skipping the test when it
// is not installed (on PATH).
func Tool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s is not installed (on PATH); skipping the interoperability test", name)
	}
	return p
}

// Run runs an external program with a fresh HOME and returns its combined
// output, failing the test when it fails.
func Run(t testing.TB, name string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return out
}

// Layout writes img into a new OCI layout directory, tags it tag and
// returns the directory.
func Layout(t testing.TB, img contenttest.Image, tag string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "layout")
	s, err := ocilayout.Init(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	img.Push(t, s)
	if err := s.Tag(context.Background(), img.Manifest, tag); err != nil {
		t.Fatal(err)
	}
	s.Close()
	return dir
}

// Median returns the median of d, sorting d.
func Median(d []time.Duration) time.Duration {
	slices.Sort(d)
	return d[len(d)/2]
}
