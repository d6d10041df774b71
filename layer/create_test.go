package layer

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"github.com/lading-oci/lading/progress"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/lading-oci/lading/errdef"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sys/unix"
)

var allCompressions = []Compression{None, Gzip, Zstd}

func ptr[T any](v T) *T { return &v }

// writeFile creates a file with exactly mode and, if set, mtime.
func writeFile(t testing.TB, root, rel, body string, mode os.FileMode) {
	t.Helper()
	p := filepath.Join(root, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(body), mode); err != nil {
		t.Fatal(err)
	}
	if err := unix.Chmod(p, uint32(mode)); err != nil { // raw bits: 0o4755 is setuid
		t.Fatal(err)
	}
}

func mkdir(t testing.TB, root, rel string, mode os.FileMode) {
	t.Helper()
	p := filepath.Join(root, rel)
	if err := os.MkdirAll(p, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Chmod(p, uint32(mode)); err != nil { // raw bits: 0o4755 is setuid
		t.Fatal(err)
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// create runs Create and returns the blob.
func create(t testing.TB, dir string, opts Options) ([]byte, Result) {
	t.Helper()
	var buf bytes.Buffer
	res, err := Create(context.Background(), dir, &buf, opts)
	if err != nil {
		t.Fatalf("Create(%s): %v", dir, err)
	}
	return buf.Bytes(), res
}

func TestCreateEntryTypes(t *testing.T) {
	root := t.TempDir()
	mkdir(t, root, "bin", 0o755)
	writeFile(t, root, "bin/app", "#!/bin/sh\n", 0o755)
	writeFile(t, root, "bin/suid", "s", 0o4755)
	mkdir(t, root, "empty", 0o1777)
	mkdir(t, root, "etc", 0o750)
	writeFile(t, root, "etc/conf", "conf", 0o640)
	must(t, os.Link(filepath.Join(root, "etc/conf"), filepath.Join(root, "etc/hard")))
	must(t, os.Symlink("etc/conf", filepath.Join(root, "link")))
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: filepath.Join(root, "sock"), Net: "unix"})
	must(t, err)
	l.SetUnlinkOnClose(false)
	l.Close()

	type want struct {
		name     string
		typ      byte
		mode     int64
		linkname string
		body     string
		major    int64
		minor    int64
	}
	wants := []want{
		{name: "bin/", typ: tar.TypeDir, mode: 0o755},
		{name: "bin/app", typ: tar.TypeReg, mode: 0o755, body: "#!/bin/sh\n"},
		{name: "bin/suid", typ: tar.TypeReg, mode: 0o4755, body: "s"},
		{name: "empty/", typ: tar.TypeDir, mode: 0o1777},
		{name: "etc/", typ: tar.TypeDir, mode: 0o750},
		{name: "etc/conf", typ: tar.TypeReg, mode: 0o640, body: "conf"},
		{name: "etc/hard", typ: tar.TypeLink, mode: 0o640, linkname: "etc/conf"},
		{name: "link", typ: tar.TypeSymlink, mode: 0o777, linkname: "etc/conf"},
	}
	if os.Geteuid() == 0 {
		must(t, unix.Mkfifo(filepath.Join(root, "fifo"), 0o600))
		must(t, unix.Mknod(filepath.Join(root, "char"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))))
		must(t, unix.Mknod(filepath.Join(root, "blk"), unix.S_IFBLK|0o660, int(unix.Mkdev(7, 300))))
		must(t, os.Chmod(filepath.Join(root, "char"), 0o666))
		must(t, os.Chmod(filepath.Join(root, "blk"), 0o660))
		wants = append(wants,
			want{name: "blk", typ: tar.TypeBlock, mode: 0o660, major: 7, minor: 300},
			want{name: "char", typ: tar.TypeChar, mode: 0o666, major: 1, minor: 3},
			want{name: "fifo", typ: tar.TypeFifo, mode: 0o600},
		)
		slices.SortFunc(wants, func(a, b want) int { return strings.Compare(a.name, b.name) })
	}

	blob, res := create(t, root, Options{})
	got := readEntries(t, blob)
	if names, wantNames := entryNames(got), func() (n []string) {
		for _, w := range wants {
			n = append(n, w.name)
		}
		return n
	}(); !slices.Equal(names, wantNames) {
		t.Fatalf("entries:\n got %q\nwant %q", names, wantNames)
	}
	for i, w := range wants {
		h := got[i].hdr
		if h.Typeflag != w.typ || h.Mode != w.mode || h.Linkname != w.linkname || got[i].body != w.body ||
			h.Devmajor != w.major || h.Devminor != w.minor {
			t.Errorf("%s: got type %q mode %o link %q body %q dev %d,%d; want %+v",
				w.name, h.Typeflag, h.Mode, h.Linkname, got[i].body, h.Devmajor, h.Devminor, w)
		}
		if h.Uname != "" || h.Gname != "" {
			t.Errorf("%s: uname %q gname %q, want empty", w.name, h.Uname, h.Gname)
		}
		if h.Uid != os.Getuid() || h.Gid != os.Getgid() {
			t.Errorf("%s: owner %d:%d, want %d:%d", w.name, h.Uid, h.Gid, os.Getuid(), os.Getgid())
		}
		if !h.AccessTime.IsZero() || !h.ChangeTime.IsZero() {
			t.Errorf("%s: access/change times written", w.name)
		}
	}
	if res.Descriptor.MediaType != ocispec.MediaTypeImageLayer {
		t.Errorf("media type %q", res.Descriptor.MediaType)
	}
}

func TestCreateHardlinks(t *testing.T) {
	root := t.TempDir()
	writeFile(t, root, "b/first", "shared", 0o644)
	must(t, os.Link(filepath.Join(root, "b/first"), filepath.Join(root, "a")))
	must(t, os.Link(filepath.Join(root, "b/first"), filepath.Join(root, "z")))
	writeFile(t, root, "single", "alone", 0o644)

	got := readEntries(t, func() []byte { b, _ := create(t, root, Options{}); return b }())
	want := []string{"a 0 ", "b/ 5 ", "b/first 1 a", "single 0 ", "z 1 a"}
	var have []string
	for _, e := range got {
		have = append(have, fmt.Sprintf("%s %c %s", e.hdr.Name, e.hdr.Typeflag, e.hdr.Linkname))
	}
	if !slices.Equal(have, want) {
		t.Fatalf("entries:\n got %q\nwant %q", have, want)
	}
	if got[0].body != "shared" || got[2].hdr.Size != 0 {
		t.Errorf("first name carries %q; link size %d", got[0].body, got[2].hdr.Size)
	}
}

func TestCreateXattrs(t *testing.T) {
	root := t.TempDir()
	writeFile(t, root, "f", "x", 0o644)
	mkdir(t, root, "d", 0o755)
	if err := unix.Lsetxattr(filepath.Join(root, "f"), "user.greeting", []byte("hi\x00there"), 0); err != nil {
		if errors.Is(err, unix.ENOTSUP) || errors.Is(err, unix.EPERM) {
			t.Skipf("user xattrs not supported here: %v", err)
		}
		t.Fatal(err)
	}
	must(t, unix.Lsetxattr(filepath.Join(root, "d"), "user.dir", []byte("1"), 0))
	long := strings.Repeat("v", 3000) // larger than the first listing buffer
	must(t, unix.Lsetxattr(filepath.Join(root, "d"), "user.long", []byte(long), 0))

	blob, _ := create(t, root, Options{})
	got := readEntries(t, blob)
	if len(got) != 2 {
		t.Fatalf("entries %q", entryNames(got))
	}
	if v := got[0].hdr.PAXRecords["SCHILY.xattr.user.dir"]; v != "1" {
		t.Errorf("d/ user.dir = %q", v)
	}
	if v := got[0].hdr.PAXRecords["SCHILY.xattr.user.long"]; v != long {
		t.Errorf("d/ user.long has %d bytes, want %d", len(v), len(long))
	}
	if v := got[1].hdr.PAXRecords["SCHILY.xattr.user.greeting"]; v != "hi\x00there" {
		t.Errorf("f user.greeting = %q", v)
	}
	tree := treeOf(t, blob)
	if e, _ := tree.Lookup("f"); e.Xattrs["user.greeting"] != "hi\x00there" {
		t.Errorf("tree xattrs of f: %q", e.Xattrs)
	}
}

func TestCreateLongAndNonASCIINames(t *testing.T) {
	root := t.TempDir()
	longDir := strings.Repeat("d", 90)
	longFile := strings.Repeat("f", 150)
	writeFile(t, root, filepath.Join(longDir, longFile), "long", 0o644)
	writeFile(t, root, "ünïcødé/日本語.txt", "utf8", 0o644)
	must(t, os.Symlink(strings.Repeat("t", 120), filepath.Join(root, "longlink")))

	for _, c := range allCompressions {
		t.Run(c.String(), func(t *testing.T) {
			blob, _ := create(t, root, Options{Compression: c})
			got := readEntries(t, blob)
			want := []string{longDir + "/", longDir + "/" + longFile, "longlink", "ünïcødé/", "ünïcødé/日本語.txt"}
			if names := entryNames(got); !slices.Equal(names, want) {
				t.Fatalf("entries:\n got %q\nwant %q", names, want)
			}
			if got[1].body != "long" || got[2].hdr.Linkname != strings.Repeat("t", 120) || got[4].body != "utf8" {
				t.Errorf("content lost: %q %q %q", got[1].body, got[2].hdr.Linkname, got[4].body)
			}
			systemTarList(t, c, blob, want)
		})
	}
}

// systemTarList checks that the system tar (and zstd) list the layer as
// want, when they are installed.
func systemTarList(t *testing.T, c Compression, blob []byte, want []string) {
	t.Helper()
	tarBin, err := exec.LookPath("tar")
	if err != nil {
		return
	}
	var cmd *exec.Cmd
	switch c {
	case None:
		cmd = exec.Command(tarBin, "-tf", "-")
	case Gzip:
		if _, err := exec.LookPath("gzip"); err != nil {
			return
		}
		cmd = exec.Command(tarBin, "-tzf", "-")
	case Zstd:
		if _, err := exec.LookPath("zstd"); err != nil {
			return
		}
		cmd = exec.Command("sh", "-c", "zstd -dc | "+tarBin+" -tf -")
	}
	cmd.Stdin = bytes.NewReader(blob)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%v: %v: %s", cmd.Args, err, stderr.String())
	}
	if stderr.Len() > 0 {
		t.Errorf("%v warned: %s", cmd.Args, stderr.String())
	}
	if got := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n"); !slices.Equal(got, want) {
		t.Errorf("%v listed:\n %q\nwant %q", cmd.Args, got, want)
	}
}

func TestCreateOwner(t *testing.T) {
	root := t.TempDir()
	writeFile(t, root, "f", "x", 0o644)
	mkdir(t, root, "d", 0o755)
	owned := os.Geteuid() == 0
	if owned {
		must(t, os.Lchown(filepath.Join(root, "f"), 123, 456))
	}
	fUID, fGID := os.Getuid(), os.Getgid()
	if owned {
		fUID, fGID = 123, 456
	}
	tests := []struct {
		name     string
		opts     Options
		uid, gid [2]int // for d/ and f
	}{
		{"kept", Options{}, [2]int{os.Getuid(), fUID}, [2]int{os.Getgid(), fGID}},
		{"both overridden", Options{UID: ptr(0), GID: ptr(0)}, [2]int{0, 0}, [2]int{0, 0}},
		{"uid only", Options{UID: ptr(1000)}, [2]int{1000, 1000}, [2]int{os.Getgid(), fGID}},
		{"large ids", Options{UID: ptr(1 << 30), GID: ptr(1<<30 + 1)}, [2]int{1 << 30, 1 << 30}, [2]int{1<<30 + 1, 1<<30 + 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			blob, _ := create(t, root, tt.opts)
			got := readEntries(t, blob)
			for i, e := range got {
				if e.hdr.Uid != tt.uid[i] || e.hdr.Gid != tt.gid[i] {
					t.Errorf("%s: owner %d:%d, want %d:%d", e.hdr.Name, e.hdr.Uid, e.hdr.Gid, tt.uid[i], tt.gid[i])
				}
			}
		})
	}
}

func TestCreateTimestamp(t *testing.T) {
	root := t.TempDir()
	old := time.Date(2000, 1, 2, 3, 4, 5, 600_000_000, time.UTC)
	future := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	epoch := time.Date(2020, 6, 1, 0, 0, 0, 0, time.UTC)
	writeFile(t, root, "old", "o", 0o644)
	writeFile(t, root, "new", "n", 0o644)
	must(t, os.Chtimes(filepath.Join(root, "old"), old, old))
	must(t, os.Chtimes(filepath.Join(root, "new"), future, future))

	tests := []struct {
		name      string
		ts        *time.Time
		old, new_ time.Time
	}{
		{"unset keeps seconds", nil, old.Truncate(time.Second), future},
		{"clamps later times only", &epoch, old.Truncate(time.Second), epoch},
		{"sub-second timestamp", ptr(epoch.Add(700 * time.Millisecond)), old.Truncate(time.Second), epoch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			blob, _ := create(t, root, Options{Timestamp: tt.ts, Compression: Gzip})
			got := readEntries(t, blob)
			if len(got) != 2 || !got[0].hdr.ModTime.Equal(tt.new_) || !got[1].hdr.ModTime.Equal(tt.old) {
				t.Fatalf("mtimes %v %v, want new %v old %v", got[0].hdr.ModTime, got[1].hdr.ModTime, tt.new_, tt.old)
			}
			for _, e := range got {
				for k := range e.hdr.PAXRecords {
					if k == "atime" || k == "ctime" || k == "mtime" {
						t.Errorf("%s: PAX time record %s", e.hdr.Name, k)
					}
				}
			}
		})
	}
}

func TestTimestampFromEnv(t *testing.T) {
	tests := []struct {
		val     string
		want    *time.Time
		wantErr bool
	}{
		{"", nil, false},
		{"0", ptr(time.Unix(0, 0)), false},
		{" 1700000000\n", ptr(time.Unix(1700000000, 0)), false},
		{"-1", nil, true},
		{"soon", nil, true},
		{"1.5", nil, true},
	}
	for _, tt := range tests {
		t.Setenv("SOURCE_DATE_EPOCH", tt.val)
		got, err := TimestampFromEnv()
		if (err != nil) != tt.wantErr || (err != nil && !errors.Is(err, errdef.ErrInvalid)) {
			t.Errorf("%q: error %v, want error %v", tt.val, err, tt.wantErr)
		}
		if (got == nil) != (tt.want == nil) || got != nil && !got.Equal(*tt.want) {
			t.Errorf("%q: got %v, want %v", tt.val, got, tt.want)
		}
	}
}

// buildSample makes the same tree in a different order each time, with
// mtimes that depend on when it was made.
func buildSample(t testing.TB, root string, reverse bool, mtime time.Time) {
	t.Helper()
	files := []string{"a/1", "a/2", "b/c/d", "z", "a/b"}
	if reverse {
		slices.Reverse(files)
	}
	for _, f := range files {
		writeFile(t, root, f, strings.Repeat(f, 100*len(f)), 0o644)
	}
	must(t, os.Symlink("a/1", filepath.Join(root, "s")))
	must(t, os.Link(filepath.Join(root, "z"), filepath.Join(root, "y")))
	must(t, filepath.Walk(root, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		ts := []unix.Timespec{unix.NsecToTimespec(mtime.UnixNano()), unix.NsecToTimespec(mtime.UnixNano())}
		return unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, unix.AT_SYMLINK_NOFOLLOW)
	}))
}

func TestCreateReproducible(t *testing.T) {
	epoch := time.Unix(1600000000, 0)
	a, b := t.TempDir(), t.TempDir()
	buildSample(t, a, false, time.Now())
	buildSample(t, b, true, time.Now().Add(time.Hour+123456789))
	for _, c := range allCompressions {
		t.Run(c.String(), func(t *testing.T) {
			opts := Options{Compression: c, Timestamp: &epoch}
			blobA, resA := create(t, a, opts)
			blobA2, _ := create(t, a, opts)
			blobB, resB := create(t, b, opts)
			if !bytes.Equal(blobA, blobA2) {
				t.Fatal("two layers of the same tree differ")
			}
			if !bytes.Equal(blobA, blobB) || resA.Descriptor.Digest != resB.Descriptor.Digest || resA.DiffID != resB.DiffID {
				t.Fatalf("layers of equal trees differ: %s vs %s", resA.Descriptor.Digest, resB.Descriptor.Digest)
			}
		})
	}
}

func TestCreateResult(t *testing.T) {
	root := t.TempDir()
	buildSample(t, root, false, time.Unix(1234567890, 0))
	writeFile(t, root, "big", strings.Repeat("0123456789abcdef", 300_000), 0o644) // several compression blocks
	for _, c := range allCompressions {
		t.Run(c.String(), func(t *testing.T) {
			blob, res := create(t, root, Options{Compression: c})
			var raw []byte
			var err error
			switch c {
			case None:
				raw = blob
			case Gzip:
				zr, err := gzip.NewReader(bytes.NewReader(blob))
				must(t, err)
				if !zr.ModTime.IsZero() || zr.Name != "" || zr.Comment != "" || zr.Extra != nil {
					t.Errorf("gzip header carries %v %q %q %q", zr.ModTime, zr.Name, zr.Comment, zr.Extra)
				}
				if !bytes.Equal(blob[4:8], []byte{0, 0, 0, 0}) {
					t.Errorf("gzip MTIME field % x, want zero", blob[4:8])
				}
				raw, err = io.ReadAll(zr)
				must(t, err)
			case Zstd:
				zr, err := zstd.NewReader(bytes.NewReader(blob))
				must(t, err)
				raw, err = io.ReadAll(zr)
				zr.Close()
				must(t, err)
			}
			must(t, err)
			sum := sha256.Sum256(raw)
			if want := digest.NewDigestFromBytes(digest.SHA256, sum[:]); res.DiffID != want {
				t.Errorf("DiffID %s, want %s", res.DiffID, want)
			}
			if tool := map[Compression]string{Gzip: "gzip", Zstd: "zstd"}[c]; tool != "" {
				if _, err := exec.LookPath(tool); err == nil {
					cmd := exec.Command(tool, "-dc")
					cmd.Stdin = bytes.NewReader(blob)
					out, err := cmd.Output()
					if err != nil || !bytes.Equal(out, raw) {
						t.Errorf("%s -dc: %d bytes, %v; want the %d bytes of the tar", tool, len(out), err, len(raw))
					}
				}
			}
			if res.UncompressedSize != int64(len(raw)) {
				t.Errorf("UncompressedSize %d, want %d", res.UncompressedSize, len(raw))
			}
			if want := digest.FromBytes(blob); res.Descriptor.Digest != want || res.Descriptor.Size != int64(len(blob)) {
				t.Errorf("descriptor %s %d, want %s %d", res.Descriptor.Digest, res.Descriptor.Size, want, len(blob))
			}
			if res.Descriptor.MediaType != MediaType(c) {
				t.Errorf("media type %s, want %s", res.Descriptor.MediaType, MediaType(c))
			}
			if c != None && res.Descriptor.Size >= res.UncompressedSize {
				t.Errorf("%v did not compress: %d >= %d", c, res.Descriptor.Size, res.UncompressedSize)
			}
			tr := tar.NewReader(bytes.NewReader(raw))
			n := 0
			for {
				if _, err := tr.Next(); err == io.EOF {
					break
				} else if err != nil {
					t.Fatalf("entry %d: %v", n, err)
				}
				n++
			}
			if n != 11 {
				t.Errorf("%d entries, want 11", n)
			}
			if tree := treeOf(t, blob); tree.Len() != 11 {
				t.Errorf("tree of the %v layer has %d entries, want 11", c, tree.Len())
			} else if e, _ := tree.Lookup("big"); e.Digest != sha(strings.Repeat("0123456789abcdef", 300_000)) {
				t.Errorf("tree digest of big: %s", e.Digest)
			}
		})
	}
}

func TestCreateErrors(t *testing.T) {
	t.Run("missing dir", func(t *testing.T) {
		_, err := Create(context.Background(), filepath.Join(t.TempDir(), "nope"), io.Discard, Options{})
		if !errors.Is(err, errdef.ErrNotFound) {
			t.Fatalf("error %v, want ErrNotFound", err)
		}
	})
	t.Run("canceled", func(t *testing.T) {
		root := t.TempDir()
		writeFile(t, root, "f", "x", 0o644)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := Create(ctx, root, io.Discard, Options{Compression: Zstd}); !errors.Is(err, context.Canceled) {
			t.Fatalf("error %v, want context.Canceled", err)
		}
	})
	t.Run("failing writer", func(t *testing.T) {
		root := t.TempDir()
		writeFile(t, root, "f", strings.Repeat("x", 3<<20), 0o644)
		for _, c := range allCompressions {
			if _, err := Create(context.Background(), root, failWriter{}, Options{Compression: c}); !errors.Is(err, errFail) {
				t.Errorf("%v: error %v, want the writer's", c, err)
			}
		}
	})
	t.Run("unreadable", func(t *testing.T) {
		if os.Geteuid() == 0 {
			t.Skip("root reads everything")
		}
		root := t.TempDir()
		writeFile(t, root, "secret", "x", 0o000)
		_, err := Create(context.Background(), root, io.Discard, Options{})
		if err == nil || !strings.Contains(err.Error(), "secret") {
			t.Fatalf("error %v, want one naming the file", err)
		}
	})
}

var errFail = errors.New("disk full")

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errFail }

// TestCopyFileSizeChange reads a file whose size differs from the one it
// had when stat'ed, as happens when it is written during the walk.
func TestCopyFileSizeChange(t *testing.T) {
	root := t.TempDir()
	tests := []struct {
		name   string
		change func(f *os.File) error
		want   string
	}{
		{"grew", func(f *os.File) error { _, err := f.WriteAt([]byte("more"), 10); return err }, "grew"},
		{"grew past a buffer", func(f *os.File) error { _, err := f.WriteAt(make([]byte, 3*copyBufSize), 10); return err }, "grew"},
		{"shrank", func(f *os.File) error { return f.Truncate(4) }, "shrank"},
		{"unchanged", func(*os.File) error { return nil }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			writeFile(t, root, "f", "0123456789", 0o644)
			p := filepath.Join(root, "f")
			f, err := os.OpenFile(p, os.O_RDWR, 0)
			must(t, err)
			defer f.Close()
			e := fsEntry{rel: "f", fd: int(f.Fd())}
			must(t, unix.Fstat(e.fd, &e.st))
			must(t, tt.change(f))
			w := &fsWalker{root: root, bufp: copyBufPool.Get().(*[]byte)}
			defer copyBufPool.Put(w.bufp)
			var out bytes.Buffer
			err = w.copyFile(&e, &out)
			if tt.want == "" {
				if err != nil || out.String() != "0123456789" {
					t.Fatalf("copy = %q, %v", out.String(), err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), p) || !errors.Is(err, errdef.ErrSizeMismatch) {
				t.Fatalf("error %v, want one saying %q and naming %s", err, tt.want, p)
			}
		})
	}
}

func TestCreateExclude(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string]string{
		".git/config": "x", "src/main.go": "package main", "src/debug.log": "log", "keep.log": "k", "other.log": "o",
		"build/out.bin": "bin", "build/keep/me.txt": "me", "node_modules/a/b.js": "js", "docs/readme.md": "r",
	} {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	var events []progress.Event
	_, err := Create(context.Background(), dir, &buf, Options{
		Exclude:  []string{".git", "**/*.log", "!keep.log", "build", "!build/keep/me.txt", "node_modules/"},
		Progress: func(e progress.Event) { events = append(events, e) },
	})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range readEntries(t, buf.Bytes()) {
		names = append(names, e.hdr.Name)
	}
	want := []string{"build/", "build/keep/", "build/keep/me.txt", "docs/", "docs/readme.md", "keep.log", "src/", "src/main.go"}
	if strings.Join(names, " ") != strings.Join(want, " ") {
		t.Errorf("entries %v, want %v", names, want)
	}
	if len(events) < 3 || events[0].State != progress.Started || events[len(events)-1].State != progress.Finished ||
		events[len(events)-1].Current != int64(len(readTar(t, buf.Bytes()))) {
		t.Errorf("progress events %+v", events)
	}
	if _, err := Create(context.Background(), dir, io.Discard, Options{Exclude: []string{"["}}); !errors.Is(err, errdef.ErrInvalid) {
		t.Errorf("bad pattern: %v", err)
	}
}

// readTar returns the uncompressed bytes of a layer.
func readTar(t *testing.T, blob []byte) []byte {
	t.Helper()
	rc, _, err := Decompress(bytes.NewReader(blob))
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
