package archive

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lading-oci/lading/errdef"
)

// entry is one member of a tar built for a test.
type entry struct {
	name, link string
	typ        byte
	data       string
	size       int64 // declared size when not len(data)
	pax        map[string]string
	format     tar.Format
}

func buildTar(t testing.TB, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		typ := e.typ
		if typ == 0 {
			typ = tar.TypeReg
		}
		size := int64(len(e.data))
		if e.size != 0 {
			size = e.size
		}
		hdr := &tar.Header{Name: e.name, Linkname: e.link, Typeflag: typ, Size: size, Mode: 0o644, PAXRecords: e.pax, Format: e.format}
		if typ != tar.TypeReg {
			hdr.Size = 0
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if typ == tar.TypeReg {
			if _, err := tw.Write([]byte(e.data)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func scanBytes(t testing.TB, data []byte) (*Index, error) {
	t.Helper()
	return Scan(context.Background(), bytes.NewReader(data), int64(len(data)))
}

func readMember(t testing.TB, ix *Index, name string) string {
	t.Helper()
	m, err := ix.Lookup(name)
	if err != nil {
		t.Fatalf("lookup %s: %v", name, err)
	}
	b, err := io.ReadAll(ix.Open(m))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestScanOffsets(t *testing.T) {
	long := strings.Repeat("d/", 80) + "file" // needs a PAX or GNU long name
	big := strings.Repeat("x", 3000)
	data := buildTar(t,
		entry{name: "./", typ: tar.TypeDir},
		entry{name: "./blobs/", typ: tar.TypeDir},
		entry{name: "./blobs/sha256/a", data: "alpha"},
		entry{name: "empty"},
		entry{name: long, data: big},
		entry{name: "pax", data: "with records", pax: map[string]string{"comment": "hello"}},
		entry{name: "gnu", data: "gnu format", format: tar.FormatGNU},
		entry{name: "dir/link", typ: tar.TypeSymlink, link: "../blobs/sha256/a"},
		entry{name: "hard", typ: tar.TypeLink, link: "./gnu"},
		entry{name: "chain", typ: tar.TypeSymlink, link: "dir/link"},
	)
	ix, err := scanBytes(t, data)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{
		"blobs/sha256/a": "alpha", "./blobs/sha256/a": "alpha", "empty": "", long: big, "pax": "with records",
		"gnu": "gnu format", "dir/link": "alpha", "hard": "gnu format", "chain": "alpha",
	} {
		if got := readMember(t, ix, name); got != want {
			t.Errorf("member %s: got %q, want %q", name, got, want)
		}
	}
	if got := strings.Join(ix.Dir("blobs/sha256"), ","); got != "blobs/sha256/a" {
		t.Errorf("Dir = %q", got)
	}
	if _, err := ix.Lookup("missing"); !errors.Is(err, errdef.ErrNotFound) {
		t.Errorf("missing member: %v", err)
	}
	if _, err := ix.Lookup("blobs"); !errors.Is(err, errdef.ErrInvalid) {
		t.Errorf("directory looked up as a file: %v", err)
	}
	if b, err := ix.ReadAll("pax", 100); err != nil || string(b) != "with records" {
		t.Errorf("ReadAll = %q, %v", b, err)
	}
	if _, err := ix.ReadAll("pax", 3); !errors.Is(err, errdef.ErrTooLarge) {
		t.Errorf("ReadAll over the cap: %v", err)
	}
}

func TestScanHostile(t *testing.T) {
	truncated := buildTar(t, entry{name: "a", data: strings.Repeat("x", 5000)})
	truncated = truncated[:1024]
	cases := []struct {
		name   string
		data   []byte
		target error
		member string
	}{
		{"absolute", buildTar(t, entry{name: "/etc/passwd", data: "x"}), errdef.ErrUnsafePath, "/etc/passwd"},
		{"dotdot", buildTar(t, entry{name: "blobs/../../x", data: "x"}), errdef.ErrUnsafePath, "blobs/../../x"},
		{"dotdot inside", buildTar(t, entry{name: "a/../b", data: "x"}), errdef.ErrUnsafePath, "a/../b"},
		{"duplicate", buildTar(t, entry{name: "index.json", data: "1"}, entry{name: "./index.json", data: "2"}), errdef.ErrInvalid, "index.json"},
		{"past the end", truncated, errdef.ErrInvalid, `"a"`},
		{"sparse", withType(buildTar(t, entry{name: "s", data: "x", format: tar.FormatGNU}), tar.TypeGNUSparse), errdef.ErrUnsupported, `"s"`},
		{"root not a dir", buildTar(t, entry{name: ".", data: ""}), errdef.ErrInvalid, ""},
		{"garbage", bytes.Repeat([]byte{'z'}, 1024), errdef.ErrInvalid, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := scanBytes(t, c.data)
			if !errors.Is(err, c.target) {
				t.Fatalf("got %v, want %v", err, c.target)
			}
			if !strings.Contains(err.Error(), c.member) {
				t.Fatalf("error %q does not name %q", err, c.member)
			}
		})
	}
}

func TestLookupLinks(t *testing.T) {
	ix, err := scanBytes(t, buildTar(t,
		entry{name: "f", data: "x"},
		entry{name: "abs", typ: tar.TypeSymlink, link: "/etc/passwd"},
		entry{name: "a/out", typ: tar.TypeSymlink, link: "../../etc/passwd"},
		entry{name: "loop1", typ: tar.TypeSymlink, link: "loop2"},
		entry{name: "loop2", typ: tar.TypeSymlink, link: "loop1"},
		entry{name: "hardout", typ: tar.TypeLink, link: "../f"},
		entry{name: "dangling", typ: tar.TypeSymlink, link: "nothing"},
		entry{name: "fifo", typ: tar.TypeFifo},
	))
	if err != nil {
		t.Fatal(err)
	}
	for name, target := range map[string]error{
		"abs": errdef.ErrUnsafePath, "a/out": errdef.ErrUnsafePath, "loop1": errdef.ErrInvalid,
		"hardout": errdef.ErrUnsafePath, "dangling": errdef.ErrNotFound, "fifo": errdef.ErrInvalid,
		"../f": errdef.ErrUnsafePath, "/f": errdef.ErrUnsafePath,
	} {
		_, err := ix.Lookup(name)
		if !errors.Is(err, target) || !strings.Contains(err.Error(), name) {
			t.Errorf("lookup %s: got %v, want %v naming it", name, err, target)
		}
	}
}

func TestOpenFileCompressed(t *testing.T) {
	dir := t.TempDir()
	plain := buildTar(t, entry{name: "a", data: "alpha"})
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(plain)
	zw.Close()
	os.WriteFile(filepath.Join(dir, "plain.tar"), plain, 0o644)
	os.WriteFile(filepath.Join(dir, "c.tar.gz"), gz.Bytes(), 0o644)
	os.WriteFile(filepath.Join(dir, "c.tar.xz"), []byte{0xfd, '7', 'z', 'X', 'Z', 0, 1, 2}, 0o644)
	ctx := context.Background()
	dec := func(r io.Reader) (io.ReadCloser, error) { return gzip.NewReader(r) }

	for _, name := range []string{"plain.tar", "c.tar.gz"} {
		f, err := OpenFile(ctx, filepath.Join(dir, name), dec)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got := readMember(t, f.Index, "a"); got != "alpha" {
			t.Errorf("%s: got %q", name, got)
		}
		f.Close()
	}
	if _, err := OpenFile(ctx, filepath.Join(dir, "c.tar.gz"), nil); !errors.Is(err, errdef.ErrUnsupported) {
		t.Errorf("gzip without a decompressor: %v", err)
	}
	if _, err := OpenFile(ctx, filepath.Join(dir, "c.tar.xz"), dec); !errors.Is(err, errdef.ErrUnsupported) || !strings.Contains(err.Error(), "xz") {
		t.Errorf("xz: %v", err)
	}
	if _, err := OpenFile(ctx, filepath.Join(dir, "none.tar"), dec); !errors.Is(err, errdef.ErrNotFound) {
		t.Errorf("missing file: %v", err)
	}
	if _, err := OpenFile(ctx, dir, dec); !errors.Is(err, errdef.ErrInvalid) {
		t.Errorf("directory: %v", err)
	}
	// Nothing was left in the temporary directory by the decompressed copy.
	ents, _ := os.ReadDir(os.TempDir())
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".lading-archive-") {
			t.Errorf("left behind: %s", e.Name())
		}
	}
}

func TestWriterRoundTrip(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "out.tar")
	w, err := Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.AddDir("blobs"); err != nil {
		t.Fatal(err)
	}
	if _, err := w.AddBytes(ctx, "blobs/a", []byte("alpha")); err != nil {
		t.Fatal(err)
	}
	// A short reader rolls the member back; so does a long one.
	mark := w.Offset()
	if _, err := w.AddFile(ctx, "short", 10, strings.NewReader("abc")); !errors.Is(err, errdef.ErrSizeMismatch) {
		t.Fatalf("short: %v", err)
	}
	if _, err := w.AddFile(ctx, "long", 2, strings.NewReader("abc")); !errors.Is(err, errdef.ErrSizeMismatch) {
		t.Fatalf("long: %v", err)
	}
	boom := errors.New("boom")
	if _, err := w.AddFile(ctx, "failing", 4, io.MultiReader(strings.NewReader("ab"), errReader{boom})); !errors.Is(err, boom) {
		t.Fatalf("failing reader: %v", err)
	}
	if w.Offset() != mark {
		t.Fatalf("offset %d after failed members, want %d", w.Offset(), mark)
	}
	if _, err := w.AddBytes(ctx, "blobs/a", []byte("again")); !errors.Is(err, errdef.ErrAlreadyExists) {
		t.Fatalf("duplicate: %v", err)
	}
	p, err := w.Begin()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.AddBytes(ctx, "during", nil); err == nil {
		t.Fatal("add while a pending member is open succeeded")
	}
	io.WriteString(p, strings.Repeat("p", 700))
	if _, err := p.Finish("pending"); err != nil {
		t.Fatal(err)
	}
	p2, _ := w.Begin()
	io.WriteString(p2, "dropped")
	p2.Cancel()
	m, _ := w.Member("pending")
	if b, _ := io.ReadAll(w.Open(m)); string(b) != strings.Repeat("p", 700) {
		t.Fatalf("read back pending member: %d bytes", len(b))
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("archive visible before commit: %v", err)
	}
	if err := w.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(ctx); !errors.Is(err, ErrClosed) {
		t.Fatalf("second commit: %v", err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	ix, err := scanBytes(t, data)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(ix.Names(), ","); got != "blobs,blobs/a,pending" {
		t.Fatalf("members %s", got)
	}
	if readMember(t, ix, "pending") != strings.Repeat("p", 700) || readMember(t, ix, "blobs/a") != "alpha" {
		t.Fatal("content differs")
	}
	// The standard reader agrees, to the end of the archive.
	tr := tar.NewReader(bytes.NewReader(data))
	n := 0
	for {
		_, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	if n != 3 {
		t.Fatalf("archive/tar found %d members", n)
	}
	assertOnly(t, dir, "out.tar")
}

func TestWriterAbortKeepsExisting(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "out.tar")
	os.WriteFile(path, []byte("old"), 0o644)
	w, err := Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w.AddBytes(ctx, "a", []byte("new"))
	if err := w.Abort(); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); string(b) != "old" {
		t.Fatalf("existing file changed: %q", b)
	}
	assertOnly(t, dir, "out.tar")
	if _, err := w.AddBytes(ctx, "b", nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("add after abort: %v", err)
	}
	// A cancelled commit leaves nothing either.
	w, _ = Create(filepath.Join(dir, "other.tar"))
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := w.Commit(cctx); err == nil {
		t.Fatal("commit with a cancelled context succeeded")
	}
	assertOnly(t, dir, "out.tar")
}

func TestCreateErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := Create(filepath.Join(dir, "missing", "x.tar")); !errors.Is(err, errdef.ErrNotFound) {
		t.Errorf("missing directory: %v", err)
	}
	if _, err := Create(dir); !errors.Is(err, errdef.ErrInvalid) {
		t.Errorf("directory in the way: %v", err)
	}
}

func TestLargeHeaderStaysOneBlock(t *testing.T) {
	hdr, err := header(strings.Repeat("h", 64)+".tar", tar.TypeReg, 9<<30, tar.FormatGNU)
	if err != nil || len(hdr) != blockSize {
		t.Fatalf("header of a 9 GiB member: %d bytes, %v", len(hdr), err)
	}
	// archive/tar reads the size back.
	data := append(append([]byte(nil), hdr...), make([]byte, 1024)...)
	h, err := tar.NewReader(bytes.NewReader(data)).Next()
	if err != nil || h.Size != 9<<30 {
		t.Fatalf("read back: %v, size %d", err, h.Size)
	}
}

func assertOnly(t *testing.T, dir string, names ...string) {
	t.Helper()
	ents, _ := os.ReadDir(dir)
	var got []string
	for _, e := range ents {
		got = append(got, e.Name())
	}
	if strings.Join(got, ",") != strings.Join(names, ",") {
		t.Fatalf("directory holds %v, want %v", got, names)
	}
}

// withType changes the type flag of the first header of a tar and fixes
// its checksum: for types archive/tar does not write.
func withType(data []byte, typ byte) []byte {
	data[156] = typ
	copy(data[148:156], "        ")
	sum := 0
	for _, b := range data[:512] {
		sum += int(b)
	}
	copy(data[148:156], fmt.Sprintf("%06o\x00 ", sum))
	return data
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

func FuzzScan(f *testing.F) {
	f.Add(buildTar(f, entry{name: "a", data: "alpha"}, entry{name: "l", typ: tar.TypeSymlink, link: "a"}))
	f.Add(buildTar(f, entry{name: "./blobs/sha256/x", data: "x", format: tar.FormatGNU}, entry{name: "p", data: "y", pax: map[string]string{"comment": "c"}}))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		ix, err := scanBytes(t, data)
		if err != nil {
			return
		}
		for _, n := range ix.Names() {
			m, err := ix.Lookup(n)
			if err != nil {
				continue
			}
			if m.Offset < 0 || m.Size < 0 || m.Offset+m.Size > int64(len(data)) {
				t.Fatalf("member %s out of bounds: %d+%d of %d", n, m.Offset, m.Size, len(data))
			}
			if strings.HasPrefix(m.Name, "/") || strings.Contains("/"+m.Name+"/", "/../") {
				t.Fatalf("unsafe name indexed: %q", m.Name)
			}
		}
	})
}
