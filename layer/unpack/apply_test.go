//go:build linux

package unpack

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lading-oci/lading/errdef"
	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

func isRoot() bool { return os.Geteuid() == 0 }

func TestApplyEntryKinds(t *testing.T) {
	root := t.TempDir()
	t1 := time.Date(2001, 2, 3, 4, 5, 6, 700_000_000, time.UTC)
	t2 := time.Date(2011, 2, 3, 4, 5, 6, 0, time.UTC)
	st := mustApply(t, root, tarOf(t,
		withMtime(dir("./etc/"), t2),
		withMtime(withMode(file("./etc/config", "hello"), 0o640), t1),
		withMode(dir("bin"), 0o711),
		withMode(file("bin/tool", "#!/bin/sh\n"), 0o755),
		withMtime(symlink("bin/sh", "tool"), t1),
		hardlink("bin/tool2", "bin/tool"),
		fifo("run/fifo"),
		withMode(dir("tmp"), 0o1777),
	), Options{})
	want := Stats{Files: 2, Dirs: 3, Symlinks: 1, Hardlinks: 1, Specials: 1}
	st.Bytes = 0
	if st != want {
		t.Errorf("stats = %+v, want %+v", st, want)
	}
	if got := readFile(t, filepath.Join(root, "etc/config")); got != "hello" {
		t.Errorf("content = %q", got)
	}
	snap := snapshot(t, root)
	check := func(p string, typ string, mode fs.FileMode) {
		t.Helper()
		n, ok := snap[p]
		if !ok {
			t.Fatalf("%s missing; have %s", p, names(snap))
		}
		if n.Type != typ {
			t.Errorf("%s: type %s, want %s", p, n.Type, typ)
		}
		if typ != "symlink" && n.Mode.Perm()|n.Mode&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky) != mode {
			t.Errorf("%s: mode %v, want %v", p, n.Mode, mode)
		}
	}
	check("etc", "dir", 0o755)
	check("etc/config", "file", 0o640)
	check("bin", "dir", 0o711)
	check("bin/tool", "file", 0o755)
	check("bin/sh", "symlink", 0)
	check("run/fifo", "special", 0o640)
	check("tmp", "dir", 0o777|fs.ModeSticky)
	if snap["bin/sh"].Link != "tool" {
		t.Errorf("symlink target %q", snap["bin/sh"].Link)
	}
	if snap["bin/tool"].Ino != snap["bin/tool2"].Ino || snap["bin/tool"].Nlink != 2 {
		t.Errorf("hardlink not sharing inode: %+v %+v", snap["bin/tool"], snap["bin/tool2"])
	}
	if got := snap["etc/config"].Mtime; got != t1.UnixNano() {
		t.Errorf("file mtime %v, want %v", time.Unix(0, got).UTC(), t1)
	}
	// The directory's mtime is set after its contents are written.
	if got := snap["etc"].Mtime; got != t2.UnixNano() {
		t.Errorf("dir mtime %v, want %v", time.Unix(0, got).UTC(), t2)
	}
	var ts unix.Stat_t
	if err := unix.Lstat(filepath.Join(root, "bin/sh"), &ts); err != nil {
		t.Fatal(err)
	}
	if time.Unix(ts.Mtim.Unix()).UTC() != t1 {
		t.Errorf("symlink mtime %v, want %v", time.Unix(ts.Mtim.Unix()).UTC(), t1)
	}
}

func TestApplyOwnershipAndSetuid(t *testing.T) {
	if !isRoot() {
		t.Skip("ownership needs root")
	}
	root := t.TempDir()
	mustApply(t, root, tarOf(t,
		withOwner(withMode(dir("home/user"), 0o2750), 1000, 1001),
		withOwner(withMode(file("home/user/su", "x"), 0o4755), 1000, 1001),
		withOwner(symlink("home/user/link", "su"), 1002, 1003),
		withOwner(withMode(device("dev/null", tar.TypeChar), 0o666), 0, 5),
		withOwner(device("dev/sda", tar.TypeBlock), 0, 6),
	), Options{})
	snap := snapshot(t, root)
	for p, want := range map[string][2]uint32{"home/user": {1000, 1001}, "home/user/su": {1000, 1001}, "home/user/link": {1002, 1003}, "dev/null": {0, 5}} {
		if n := snap[p]; n.UID != want[0] || n.GID != want[1] {
			t.Errorf("%s owned by %d:%d, want %d:%d", p, n.UID, n.GID, want[0], want[1])
		}
	}
	// chown clears setuid; the mode is applied after it.
	if m := snap["home/user/su"].Mode; m&fs.ModeSetuid == 0 || m.Perm() != 0o755 {
		t.Errorf("setuid file mode %v", m)
	}
	if m := snap["home/user"].Mode; m&fs.ModeSetgid == 0 || m.Perm() != 0o750 {
		t.Errorf("setgid dir mode %v", m)
	}
	if m := snap["dev/null"].Mode; m&fs.ModeCharDevice == 0 || m.Perm() != 0o666 {
		t.Errorf("char device mode %v", m)
	}
	if m := snap["dev/sda"].Mode; m&fs.ModeDevice == 0 || m&fs.ModeCharDevice != 0 {
		t.Errorf("block device mode %v", m)
	}
	var st unix.Stat_t
	unix.Lstat(filepath.Join(root, "dev/null"), &st)
	if unix.Major(st.Rdev) != 1 || unix.Minor(st.Rdev) != 3 {
		t.Errorf("device number %d:%d", unix.Major(st.Rdev), unix.Minor(st.Rdev))
	}
	// Owners are exact in a set-group-ID directory too, whose group new
	// files would otherwise take.
	mustApply(t, root, tarOf(t,
		withOwner(file("home/user/mine", "m"), 0, 0),
		withOwner(file("home/user/theirs", "t"), 1000, 1001),
		withOwner(file("plain", "p"), 0, 0),
	), Options{})
	snap = snapshot(t, root)
	for p, want := range map[string][2]uint32{"home/user/mine": {0, 0}, "home/user/theirs": {1000, 1001}, "plain": {0, 0}} {
		if n := snap[p]; n.UID != want[0] || n.GID != want[1] {
			t.Errorf("%s owned by %d:%d, want %d:%d", p, n.UID, n.GID, want[0], want[1])
		}
	}
}

func TestApplyRootless(t *testing.T) {
	root := t.TempDir()
	checkRootless(t, root)
}

// checkRootless applies rootless layers into root and checks the result:
// the exact modes the layers record (a 0000 file, a 0500 directory), no
// owners, no devices, a second layer that writes and removes inside the
// read-only directory, and a tree RemoveAll can remove.
func checkRootless(t *testing.T, root string) {
	t.Helper()
	st := mustApply(t, root, tarOf(t,
		withOwner(withMode(dir("ro"), 0o500), 1000, 1000),
		withOwner(withMode(file("ro/secret", "s"), 0o000), 1000, 1000),
		withMode(file("ro/suid", "s"), 0o4511),
		withMode(dir("ro/none"), 0o000),
		withMode(dir("ro/none/deep"), 0o555),
		withMode(file("ro/none/deep/f", "f"), 0o444),
		device("dev/null", tar.TypeChar),
		device("dev/sda", tar.TypeBlock),
		fifo("dev/fifo"),
		withXattr(withMode(file("cap", "c"), 0o400), "user.note", "v"),
		withXattr(file("cap2", "c"), "security.capability", "\x01\x00\x00\x02\x00\x04\x00\x00"+strings.Repeat("\x00", 12)),
	), Options{Rootless: true})
	if st.Skipped != 2 || st.Specials != 1 {
		t.Errorf("stats %+v: want 2 devices skipped and the fifo made", st)
	}
	modes := map[string]fs.FileMode{"ro": 0o500 | fs.ModeDir, "ro/secret": 0, "ro/suid": 0o511 | fs.ModeSetuid,
		"ro/none": fs.ModeDir, "ro/none/deep": 0o555 | fs.ModeDir, "ro/none/deep/f": 0o444, "dev/fifo": 0o640 | fs.ModeNamedPipe, "cap": 0o400}
	check := func(when string) {
		t.Helper()
		// An unprivileged owner cannot look into ro/none (0000) without
		// opening it up for a moment.
		none := filepath.Join(root, "ro/none")
		lstat := func(p string) (fs.FileInfo, error) {
			fi, err := os.Lstat(filepath.Join(root, p))
			if errors.Is(err, fs.ErrPermission) && strings.HasPrefix(p, "ro/none/") {
				if err := os.Chmod(none, 0o700); err != nil {
					t.Fatal(err)
				}
				fi, err = os.Lstat(filepath.Join(root, p))
				if err := os.Chmod(none, 0); err != nil {
					t.Fatal(err)
				}
			}
			return fi, err
		}
		for p, want := range modes {
			fi, err := lstat(p)
			if err != nil {
				t.Fatalf("%s: %s: %v", when, p, err)
			}
			if got := fi.Mode() & (fs.ModePerm | fs.ModeSetuid | fs.ModeType); got != want {
				t.Errorf("%s: %s mode %v, want %v", when, p, got, want)
			}
			if st := fi.Sys().(*syscall.Stat_t); st.Uid != uint32(os.Geteuid()) {
				t.Errorf("%s: %s owned by %d in rootless mode", when, p, st.Uid)
			}
		}
	}
	check("first layer")
	if exists(filepath.Join(root, "dev/null")) || exists(filepath.Join(root, "dev/sda")) {
		t.Error("device made in rootless mode")
	}
	// A second layer can replace, add and remove inside the read-only
	// directories, and leaves their modes as they were.
	mustApply(t, root, tarOf(t, file("ro/secret", "new"), whiteoutEnt("ro/.wh.suid"), file("ro/none/deep/g", "g"),
		whiteoutEnt("ro/none/deep/.wh.f")), Options{Rootless: true})
	delete(modes, "ro/suid")
	delete(modes, "ro/none/deep/f")
	modes["ro/secret"] = 0o644
	modes["ro/none/deep/g"] = 0o644
	check("second layer")
	if _, err := lstat0(root, "ro/suid"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("second rootless layer did not remove ro/suid: %v", err)
	}
	// A third removes the whole read-only tree.
	mustApply(t, root, tarOf(t, whiteoutEnt(".wh.ro")), Options{Rootless: true})
	if exists(filepath.Join(root, "ro")) {
		t.Error("whiteout of a read-only tree left it")
	}
	mustApply(t, root, tarOf(t, withMode(dir("locked"), 0o500), withMode(dir("locked/in"), 0o000), withMode(file("locked/in/f", "x"), 0o000)), Options{Rootless: true})
	if err := RemoveAll(filepath.Join(root, "locked")); err != nil {
		t.Errorf("rootless tree not removable: %v", err)
	}
	if exists(filepath.Join(root, "locked")) {
		t.Error("RemoveAll left the tree")
	}
}

func lstat0(root, p string) (fs.FileInfo, error) { return os.Lstat(filepath.Join(root, p)) }

// TestApplyRootlessUnprivileged runs checkRootless as an ordinary user,
// where permission bits apply to the owner: as root, by running this test
// binary again as nobody.
func TestApplyRootlessUnprivileged(t *testing.T) {
	if dir := os.Getenv("LADING_ROOTLESS_CHILD"); dir != "" {
		checkRootless(t, dir)
		return
	}
	if os.Geteuid() != 0 {
		checkRootless(t, t.TempDir())
		return
	}
	// The binary and the target must be reachable by nobody.
	top, err := os.MkdirTemp("", "lading-rootless-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(top)
	if err := os.Chmod(top, 0o755); err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(top, "unpack.test")
	data, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(top, "root")
	if err := os.Mkdir(target, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(target, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-test.run=^TestApplyRootlessUnprivileged$", "-test.v")
	cmd.Env = append(os.Environ(), "LADING_ROOTLESS_CHILD="+target)
	cmd.Dir = top
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: TestApplyRootlessUnprivileged") {
		t.Fatalf("as nobody: %v\n%s", err, out)
	}
}

func TestApplyWhiteouts(t *testing.T) {
	root := t.TempDir()
	mustApply(t, root, tarOf(t,
		file("file1", "1"), dir("a"), file("a/file2", "2"), dir("b"), file("b/inner", "i"),
		dir("c"), file("c/file3", "3"),
	), Options{})
	st := mustApply(t, root, tarOf(t,
		whiteoutEnt(".wh.file1"), whiteoutEnt("a/.wh.file2"), whiteoutEnt(".wh.b"), file("file4", "4"),
		whiteoutEnt("c/.wh.missing"), whiteoutEnt("nodir/.wh.x"),
	), Options{})
	if st.Whiteouts != 5 {
		t.Errorf("whiteouts = %d", st.Whiteouts)
	}
	got := names(snapshot(t, root))
	if want := ". a c c/file3 file4"; got != want {
		t.Errorf("tree = %q, want %q", got, want)
	}
}

func TestApplyWhiteoutErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		want error
	}{
		{".wh.", errdef.ErrInvalid},
		{"a/.wh.", errdef.ErrInvalid},
		{".wh..", errdef.ErrUnsafePath},
		{".wh...", errdef.ErrUnsafePath},
	} {
		_, err := applyBytes(t, t.TempDir(), tarOf(t, whiteoutEnt(tc.name)), Options{})
		if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.name) {
			t.Errorf("%q: err = %v, want %v naming the entry", tc.name, err, tc.want)
		}
	}
}

func TestApplyWhiteoutOnlyHidesLowerLayers(t *testing.T) {
	root := t.TempDir()
	mustApply(t, root, tarOf(t, dir("d"), file("d/lower", "l")), Options{})
	mustApply(t, root, tarOf(t,
		file("same", "s"), whiteoutEnt(".wh.same"), // same layer: stays
		dir("d"), file("d/new", "n"), whiteoutEnt(".wh.d"), // recreated dir: lower child goes
	), Options{})
	got := names(snapshot(t, root))
	if want := ". d d/new same"; got != want {
		t.Errorf("tree = %q, want %q", got, want)
	}
}

func TestApplyOpaqueWhiteout(t *testing.T) {
	lower := []ent{dir("a"), dir("a/b"), dir("a/b/c"), file("a/b/c/bar", "bar"), file("a/keep-not", "x"), dir("z"), file("z/other", "o")}
	// image-spec's example, with the opaque entry first and last: same result.
	first := []ent{dir("a"), whiteoutEnt("a/.wh..wh..opq"), dir("a/b"), dir("a/b/c"), file("a/b/c/foo", "foo")}
	last := []ent{dir("a"), dir("a/b"), dir("a/b/c"), file("a/b/c/foo", "foo"), whiteoutEnt("a/.wh..wh..opq")}
	for name, upper := range map[string][]ent{"first": first, "last": last} {
		t.Run(name, func(t *testing.T) {
			root := t.TempDir()
			mustApply(t, root, tarOf(t, lower...), Options{})
			mustApply(t, root, tarOf(t, upper...), Options{})
			got := names(snapshot(t, root))
			if want := ". a a/b a/b/c a/b/c/foo z z/other"; got != want {
				t.Errorf("tree = %q, want %q", got, want)
			}
		})
	}
	t.Run("without dir entry", func(t *testing.T) {
		root := t.TempDir()
		mustApply(t, root, tarOf(t, lower...), Options{})
		mustApply(t, root, tarOf(t, file("a/sibling", "s"), whiteoutEnt("a/.wh..wh..opq")), Options{})
		if got, want := names(snapshot(t, root)), ". a a/sibling z z/other"; got != want {
			t.Errorf("tree = %q, want %q", got, want)
		}
	})
}

func TestApplyReplacement(t *testing.T) {
	for _, tc := range []struct {
		name  string
		lower []ent
		upper []ent
		check func(t *testing.T, root string)
	}{
		{"file replaces dir", []ent{dir("x"), file("x/child", "c")}, []ent{file("x", "f")},
			func(t *testing.T, root string) {
				if readFile(t, filepath.Join(root, "x")) != "f" {
					t.Error("x is not the new file")
				}
			}},
		{"dir replaces file", []ent{file("x", "f")}, []ent{dir("x"), file("x/child", "c")},
			func(t *testing.T, root string) {
				if readFile(t, filepath.Join(root, "x/child")) != "c" {
					t.Error("child missing")
				}
			}},
		{"dir merges into dir", []ent{withMode(dir("x"), 0o700), file("x/old", "o")}, []ent{withOwner(withMode(dir("x"), 0o751), 0, 0), file("x/new", "n")},
			func(t *testing.T, root string) {
				fi, _ := os.Lstat(filepath.Join(root, "x"))
				if fi.Mode().Perm() != 0o751 {
					t.Errorf("mode %v not updated", fi.Mode())
				}
				if !exists(filepath.Join(root, "x/old")) || !exists(filepath.Join(root, "x/new")) {
					t.Error("merge lost a child")
				}
			}},
		{"file replaces symlink, target untouched", []ent{file("target", "t"), symlink("x", "target")}, []ent{file("x", "new")},
			func(t *testing.T, root string) {
				if readFile(t, filepath.Join(root, "target")) != "t" {
					t.Error("wrote through the symlink")
				}
				if fi, _ := os.Lstat(filepath.Join(root, "x")); !fi.Mode().IsRegular() {
					t.Error("x not a file")
				}
			}},
		{"dir replaces symlink to dir", []ent{dir("real"), file("real/f", "f"), symlink("x", "real")}, []ent{withMode(dir("x"), 0o700)},
			func(t *testing.T, root string) {
				fi, _ := os.Lstat(filepath.Join(root, "x"))
				if !fi.IsDir() {
					t.Error("x not a directory")
				}
				if fi, _ := os.Lstat(filepath.Join(root, "real")); fi.Mode().Perm() != 0o755 {
					t.Error("symlink target's mode changed")
				}
			}},
		{"file replaces hardlinked file", []ent{file("a", "old"), hardlink("b", "a")}, []ent{file("b", "new")},
			func(t *testing.T, root string) {
				if readFile(t, filepath.Join(root, "a")) != "old" || readFile(t, filepath.Join(root, "b")) != "new" {
					t.Error("replacement wrote into the shared inode")
				}
			}},
		{"symlink replaces file", []ent{file("x", "f")}, []ent{symlink("x", "elsewhere")},
			func(t *testing.T, root string) {
				if l, _ := os.Readlink(filepath.Join(root, "x")); l != "elsewhere" {
					t.Errorf("link = %q", l)
				}
			}},
		{"hardlink replaces file", []ent{file("x", "f"), file("y", "y")}, []ent{hardlink("x", "y")},
			func(t *testing.T, root string) {
				if readFile(t, filepath.Join(root, "x")) != "y" {
					t.Error("x not linked to y")
				}
			}},
		{"hardlink to lower file via symlinked dir", []ent{dir("real"), file("real/f", "f"), symlink("l", "/real")}, []ent{hardlink("h", "l/f")},
			func(t *testing.T, root string) {
				if readFile(t, filepath.Join(root, "h")) != "f" {
					t.Error("h not linked")
				}
			}},
		{"write through absolute symlink stays in root", []ent{dir("usr/lib64"), symlink("lib64", "/usr/lib64")}, []ent{file("lib64/ld.so", "ld")},
			func(t *testing.T, root string) {
				if readFile(t, filepath.Join(root, "usr/lib64/ld.so")) != "ld" {
					t.Error("not written into the symlink's confined target")
				}
			}},
		{"fifo replaces file", []ent{file("p", "f")}, []ent{fifo("p")},
			func(t *testing.T, root string) {
				if fi, _ := os.Lstat(filepath.Join(root, "p")); fi.Mode()&fs.ModeNamedPipe == 0 {
					t.Error("not a fifo")
				}
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			mustApply(t, root, tarOf(t, tc.lower...), Options{})
			mustApply(t, root, tarOf(t, tc.upper...), Options{})
			tc.check(t, root)
		})
	}
}

func TestApplyXattrs(t *testing.T) {
	root := t.TempDir()
	mustApply(t, root, tarOf(t,
		withXattr(file("f", "x"), "user.lading", "v1"),
		withXattr(dir("d"), "user.lading", "v2"),
	), Options{})
	for p, want := range map[string]string{"f": "v1", "d": "v2"} {
		buf := make([]byte, 64)
		n, err := unix.Lgetxattr(filepath.Join(root, p), "user.lading", buf)
		if errors.Is(err, unix.ENOTSUP) {
			t.Skip("filesystem without user xattrs")
		}
		if err != nil || string(buf[:n]) != want {
			t.Errorf("%s: xattr %q, %v; want %q", p, buf[:n], err, want)
		}
	}
}

func TestApplyCompressions(t *testing.T) {
	raw := tarOf(t, dir("d"), file("d/f", strings.Repeat("data", 1000)), symlink("l", "d/f"))
	want := snapshot(t, func() string { r := t.TempDir(); mustApply(t, r, raw, Options{}); return r }())
	for name, blob := range map[string][]byte{"gzip": gz(t, raw), "zstd": zst(t, raw)} {
		root := t.TempDir()
		st := mustApply(t, root, blob, Options{DiffID: digest.Digest(sha(raw))})
		if st.Bytes != int64(len(raw)) {
			t.Errorf("%s: Bytes = %d, want %d", name, st.Bytes, len(raw))
		}
		if d := diffSnapshots(want, snapshot(t, root), func(p string, x, y node) string {
			if p == "." {
				return ""
			}
			if x.Type != y.Type || x.Sum != y.Sum || x.Link != y.Link || x.Mode != y.Mode || x.Mtime != y.Mtime {
				return "differs"
			}
			return ""
		}); len(d) > 0 {
			t.Errorf("%s: %v", name, d)
		}
	}
}

func TestApplyDiffID(t *testing.T) {
	raw := tarOf(t, file("f", "x"))
	// Trailing bytes after the end marker are part of the diff_id.
	raw = append(raw, make([]byte, 4096)...)
	if _, err := applyBytes(t, t.TempDir(), gz(t, raw), Options{DiffID: digest.Digest(sha(raw))}); err != nil {
		t.Fatalf("matching diff_id: %v", err)
	}
	wrong := digest.Digest(sha([]byte("other")))
	_, err := applyBytes(t, t.TempDir(), gz(t, raw), Options{DiffID: wrong})
	if !errors.Is(err, errdef.ErrDigestMismatch) || !strings.Contains(err.Error(), string(wrong)) || !strings.Contains(err.Error(), sha(raw)) {
		t.Errorf("mismatch: err = %v", err)
	}
	_, err = applyBytes(t, t.TempDir(), raw, Options{DiffID: "sha256:nothex"})
	if !errors.Is(err, errdef.ErrInvalid) {
		t.Errorf("invalid diff_id: err = %v", err)
	}
	if _, err := applyBytes(t, t.TempDir(), raw, Options{DiffID: digest.SHA512.FromBytes(raw)}); err != nil {
		t.Errorf("sha512 diff_id: %v", err)
	}
}

func TestApplyTruncated(t *testing.T) {
	for name, blob := range map[string][]byte{
		"short body": tarOf(t, file("ok", "fine"), withSize(file("big", "only this"), 1<<30)),
		"cut header": tarOf(t, file("ok", "fine"))[:514],
		"cut gzip at a tar boundary": func() []byte {
			g := gz(t, tarOf(t, file("ok", "fine")))
			return g[:len(g)-6]
		}(),
	} {
		t.Run(name, func(t *testing.T) {
			_, err := applyBytes(t, t.TempDir(), blob, Options{})
			if err == nil {
				t.Fatal("no error")
			}
			if name == "short body" && (!errors.Is(err, errdef.ErrInvalid) || !strings.Contains(err.Error(), `"big"`) || !strings.Contains(err.Error(), "truncated")) {
				t.Errorf("err = %v, want a truncation error naming the entry", err)
			}
		})
	}
}

func TestApplyErrorNamesEntry(t *testing.T) {
	_, err := applyBytes(t, t.TempDir(), tarOf(t, file("../../etc/passwd", "x")), Options{})
	want := `layer entry "../../etc/passwd": unsafe path: `
	if !errors.Is(err, errdef.ErrUnsafePath) || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("err = %v, want prefix %q", err, want)
	}
}

func TestApplyRootEntry(t *testing.T) {
	root := t.TempDir()
	mustApply(t, root, tarOf(t, withMode(dir("./"), 0o750), file("f", "x")), Options{})
	fi, _ := os.Stat(root)
	if fi.Mode().Perm() != 0o750 {
		t.Errorf("root mode %v", fi.Mode())
	}
	_, err := applyBytes(t, t.TempDir(), tarOf(t, symlink("./", "/etc")), Options{})
	if !errors.Is(err, errdef.ErrUnsafePath) {
		t.Errorf("root replaced by a symlink: err = %v", err)
	}
}

func TestApplyCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Apply(ctx, t.TempDir(), bytes.NewReader(tarOf(t, file("f", "x"))), Options{})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v", err)
	}
}

func TestApplySymlinkLoop(t *testing.T) {
	_, err := applyBytes(t, t.TempDir(), tarOf(t, symlink("a", "b"), symlink("b", "a"), file("a/f", "x")), Options{})
	if err == nil || !strings.Contains(err.Error(), `"a/f"`) {
		t.Errorf("err = %v, want an error naming a/f", err)
	}
}

func TestApplyUnknownTypeAndBadDevice(t *testing.T) {
	_, err := applyBytes(t, t.TempDir(), tarOf(t, ent{name: "x", typ: 'Z'}), Options{})
	if !errors.Is(err, errdef.ErrUnsupported) {
		t.Errorf("unknown type: err = %v", err)
	}
	if isRoot() {
		_, err = applyBytes(t, t.TempDir(), tarOf(t, ent{name: "d", typ: tar.TypeChar, major: 1 << 20}), Options{})
		if !errors.Is(err, errdef.ErrInvalid) {
			t.Errorf("device number out of range: err = %v", err)
		}
	}
}

// The ownership of files created when not privileged stays the caller's.
func TestApplyStatOwner(t *testing.T) {
	root := t.TempDir()
	mustApply(t, root, tarOf(t, withOwner(file("f", "x"), 4242, 4242)), Options{Rootless: true})
	fi, _ := os.Lstat(filepath.Join(root, "f"))
	if fi.Sys().(*syscall.Stat_t).Uid != uint32(os.Geteuid()) {
		t.Error("rootless mode changed ownership")
	}
}

// TestApplyModesDespiteUmaskAndACL checks that files get exactly the
// archive's modes whatever the umask, and in a directory with a default ACL
// (which decides new files' modes instead of the umask).
func TestApplyModesDespiteUmaskAndACL(t *testing.T) {
	old := syscall.Umask(0o077)
	defer syscall.Umask(old)
	root := t.TempDir()
	// A default ACL with an empty mask: new files in acl/ get no group bits.
	acl := string([]byte{
		2, 0, 0, 0, // version
		0x01, 0, 7, 0, 0xff, 0xff, 0xff, 0xff, // user::rwx
		0x04, 0, 5, 0, 0xff, 0xff, 0xff, 0xff, // group::r-x
		0x10, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, // mask::---
		0x20, 0, 5, 0, 0xff, 0xff, 0xff, 0xff, // other::r-x
	})
	mustApply(t, root, tarOf(t,
		withMode(file("plain", "p"), 0o755),
		withMode(file("open", "o"), 0o666),
		withXattr(dir("acl"), "system.posix_acl_default", acl),
	), Options{})
	_, aclErr := unix.Getxattr(filepath.Join(root, "acl"), "system.posix_acl_default", nil)
	// A later layer writes into acl/ (a new applier, which must find the
	// ACL itself), under a umask that would not change its mode.
	syscall.Umask(0o022)
	mustApply(t, root, tarOf(t, withMode(file("acl/f", "a"), 0o755)), Options{})
	want := map[string]fs.FileMode{"plain": 0o755, "open": 0o666}
	if aclErr == nil {
		want["acl/f"] = 0o755
	} else {
		t.Logf("no default ACL on this filesystem (%v); ACL case not checked", aclErr)
	}
	snap := snapshot(t, root)
	for p, m := range want {
		if got := snap[p].Mode.Perm(); got != m {
			t.Errorf("%s mode %v, want %v", p, got, m)
		}
	}
}

// TestApplyCorruptCompression checks that a compressed layer that does not
// decompress is refused as corrupt (errdef.ErrInvalid), whichever byte is
// wrong: the gzip trailer's checksum, or a zstd frame.
func TestApplyCorruptCompression(t *testing.T) {
	raw := tarOf(t, file("f", strings.Repeat("payload ", 5000)))
	flip := func(b []byte, i int) []byte {
		b = append([]byte(nil), b...)
		b[i] ^= 0xff
		return b
	}
	g, z := gz(t, raw), zst(t, raw)
	for name, blob := range map[string][]byte{
		"gzip last byte":      flip(g, len(g)-1),
		"gzip checksum":       flip(g, len(g)-6),
		"zstd middle of data": flip(z, len(z)/2),
	} {
		t.Run(name, func(t *testing.T) {
			_, err := applyBytes(t, t.TempDir(), blob, Options{})
			if !errors.Is(err, errdef.ErrInvalid) || !strings.Contains(err.Error(), "corrupt") {
				t.Fatalf("err = %v, want a corrupt-data error matching ErrInvalid", err)
			}
		})
	}
}
