package ociarchive_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lading-oci/lading/content"
	"github.com/lading-oci/lading/content/contenttest"
	"github.com/lading-oci/lading/content/ociarchive"
	"github.com/lading-oci/lading/errdef"
	"github.com/lading-oci/lading/ref"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func create(t *testing.T) (*ociarchive.Writer, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "img.tar")
	w, err := ociarchive.Create(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Abort() })
	return w, path
}

func open(t *testing.T, path string) *ociarchive.Reader {
	t.Helper()
	r, err := ociarchive.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func tags(t *testing.T, s content.TagLister) string {
	t.Helper()
	return strings.Join(contenttest.Tags(t, s), ",")
}

func TestWriteThenRead(t *testing.T) {
	ctx := context.Background()
	img := contenttest.MakeImage(t, map[string]string{"etc/hello": "hello\n"}, map[string]string{"bin/x": strings.Repeat("x", 5000)})
	other := contenttest.MakeImage(t, map[string]string{"other": "o"})
	w, path := create(t)
	img.Push(t, w)
	other.Push(t, w)
	img.Push(t, w) // pushing again writes nothing
	for tag, d := range map[string]ocispec.Descriptor{"v1": img.Manifest, "latest": img.Manifest, "other": other.Manifest} {
		if err := w.Tag(ctx, d, tag); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Tag(ctx, other.Manifest, "v1"); err != nil { // retag moves it
		t.Fatal(err)
	}
	if err := w.Tag(ctx, img.Manifest, "v1"); err != nil {
		t.Fatal(err)
	}
	if got := tags(t, w); got != "latest,other,v1" {
		t.Fatalf("writer tags %s", got)
	}
	if d, err := w.Resolve(ctx, "v1"); err != nil || d.Digest != img.Manifest.Digest {
		t.Fatalf("writer resolve: %v %v", d.Digest, err)
	}
	if li, err := content.LoadImage(ctx, w, img.Manifest, nil); err != nil || len(li.Manifest.Layers) != 2 {
		t.Fatalf("load from the writer: %v", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("archive visible before Close")
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	if err := w.Push(ctx, img.Config, bytes.NewReader(img.Blobs[img.Config.Digest])); !errors.Is(err, ociarchive.ErrClosed) {
		t.Fatalf("push after close: %v", err)
	}

	r := open(t, path)
	if got := tags(t, r); got != "latest,other,v1" {
		t.Fatalf("reader tags %s", got)
	}
	d, err := r.Resolve(ctx, "v1")
	if err != nil || d.Digest != img.Manifest.Digest || d.Annotations[ocispec.AnnotationRefName] != "v1" {
		t.Fatalf("resolve v1: %+v %v", d, err)
	}
	li, err := content.LoadImage(ctx, r, d, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range li.Manifest.Layers {
		data, err := content.ReadAll(ctx, r, l, 1<<20)
		if err != nil || !bytes.Equal(data, img.Blobs[l.Digest]) {
			t.Fatalf("layer %s: %v", l.Digest, err)
		}
	}
	// A digest resolves to its index entry, or to the blob with its type.
	if d, err := r.Resolve(ctx, img.Config.Digest.String()); err != nil || d.Size != img.Config.Size {
		t.Fatalf("resolve config digest: %+v %v", d, err)
	}
	if _, err := r.Resolve(ctx, "nope"); !errors.Is(err, errdef.ErrNotFound) {
		t.Fatalf("resolve missing tag: %v", err)
	}
	n := 0
	r.Blobs(ctx, func(ocispec.Descriptor) error { n++; return nil })
	if n != 7 {
		t.Fatalf("Blobs visited %d, want 7", n)
	}
	if st, err := r.Stat(ctx, img.Layers[1].Digest); err != nil || st.Size != img.Layers[1].Size {
		t.Fatalf("stat: %+v %v", st, err)
	}
	if ok, _ := r.Exists(ctx, ocispec.Descriptor{Digest: digest.FromString("missing")}); ok {
		t.Fatal("missing blob exists")
	}
	wrong := img.Layers[0]
	wrong.Size++
	if _, err := r.Fetch(ctx, wrong); !errors.Is(err, errdef.ErrSizeMismatch) {
		t.Fatalf("fetch with the wrong size: %v", err)
	}
	idx, _ := r.Index(ctx)
	if len(idx.Manifests) != 3 {
		t.Fatalf("index has %d entries", len(idx.Manifests))
	}
	for s, want := range map[string]digest.Digest{
		"oci-archive:" + path:                                        img.Manifest.Digest, // latest
		"oci-archive:" + path + ":other":                             other.Manifest.Digest,
		"oci-archive:" + path + "@" + other.Manifest.Digest.String(): other.Manifest.Digest,
	} {
		sel, err := ref.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		if d, err := r.Select(ctx, sel); err != nil || d.Digest != want {
			t.Errorf("select %s: %v %v", s, d.Digest, err)
		}
	}
}

func TestWriterRefusesBadBlobs(t *testing.T) {
	ctx := context.Background()
	img := contenttest.MakeImage(t, map[string]string{"a": "a"})
	w, path := create(t)
	data := img.Blobs[img.Config.Digest]
	bad := img.Config
	bad.Digest = digest.FromString("something else")
	if err := w.Push(ctx, bad, bytes.NewReader(data)); !errors.Is(err, errdef.ErrDigestMismatch) {
		t.Fatalf("wrong digest: %v", err)
	}
	short := img.Config
	short.Size--
	if err := w.Push(ctx, short, bytes.NewReader(data)); !errors.Is(err, errdef.ErrSizeMismatch) {
		t.Fatalf("wrong size: %v", err)
	}
	if ok, _ := w.Exists(ctx, img.Config); ok {
		t.Fatal("refused blob exists")
	}
	if err := w.Push(ctx, ocispec.Descriptor{Digest: "sha256:abc", Size: 1}, strings.NewReader("x")); !errors.Is(err, errdef.ErrInvalid) {
		t.Fatalf("bad digest: %v", err)
	}
	img.Push(t, w)
	if err := w.Tag(ctx, img.Manifest, "bad tag!"); !errors.Is(err, errdef.ErrInvalid) {
		t.Fatalf("bad tag: %v", err)
	}
	if err := w.Tag(ctx, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromString("x"), Size: 1}, "t"); !errors.Is(err, errdef.ErrNotFound) {
		t.Fatalf("tag of a blob not written: %v", err)
	}
	w.Tag(ctx, img.Manifest, "t")
	if err := w.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	// The refused pushes left nothing in the archive.
	r := open(t, path)
	n := 0
	r.Blobs(ctx, func(ocispec.Descriptor) error { n++; return nil })
	if n != 3 {
		t.Fatalf("archive holds %d blobs, want 3", n)
	}
}

func TestWriterIncompleteImage(t *testing.T) {
	ctx := context.Background()
	img := contenttest.MakeImage(t, map[string]string{"a": "a"})
	w, path := create(t)
	for _, d := range []ocispec.Descriptor{img.Config, img.Manifest} { // the layer is missing
		w.Push(ctx, d, bytes.NewReader(img.Blobs[d.Digest]))
	}
	w.Tag(ctx, img.Manifest, "t")
	err := w.Commit(ctx)
	if !errors.Is(err, errdef.ErrNotFound) || !strings.Contains(err.Error(), img.Layers[0].Digest.String()) {
		t.Fatalf("commit of an incomplete image: %v", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("failed commit left a file")
	}
	if ents, _ := os.ReadDir(filepath.Dir(path)); len(ents) != 0 {
		t.Fatalf("failed commit left %v", ents)
	}
}

func TestAbortKeepsExistingFile(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "img.tar")
	os.WriteFile(path, []byte("keep"), 0o644)
	w, err := ociarchive.Create(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	contenttest.MakeImage(t, map[string]string{"a": "a"}).Push(t, w)
	if err := w.Abort(); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); string(b) != "keep" {
		t.Fatalf("existing file changed: %q", b)
	}
	if ents, _ := os.ReadDir(filepath.Dir(path)); len(ents) != 1 {
		t.Fatalf("abort left %v", ents)
	}
}

type member = contenttest.Member

func writeTar(t *testing.T, members ...member) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "hostile.tar")
	os.WriteFile(path, contenttest.TarMembers(t, members...), 0o644)
	return path
}

func TestHostileArchives(t *testing.T) {
	ctx := context.Background()
	layout := member{Name: "oci-layout", Body: `{"imageLayoutVersion":"1.0.0"}`}
	index := member{Name: "index.json", Body: `{"schemaVersion":2,"manifests":[]}`}
	cases := []struct {
		name    string
		members []member
		target  error
		names   string
	}{
		{"no oci-layout", []member{index}, errdef.ErrInvalid, "oci-layout"},
		{"docker-archive", []member{{Name: "manifest.json", Body: "[]"}}, errdef.ErrInvalid, "docker-archive"},
		{"no index.json", []member{layout}, errdef.ErrNotFound, "index.json"},
		{"bad index.json", []member{layout, {Name: "index.json", Body: "{"}}, errdef.ErrInvalid, "index.json"},
		{"schema 1 index", []member{layout, {Name: "index.json", Body: `{"schemaVersion":1}`}}, errdef.ErrInvalid, "index.json"},
		{"layout version 2", []member{{Name: "oci-layout", Body: `{"imageLayoutVersion":"2.0.0"}`}, index}, errdef.ErrUnsupported, "oci-layout"},
		{"dotdot member", []member{layout, index, {Name: "blobs/../../etc/x", Body: "x"}}, errdef.ErrUnsafePath, "blobs/../../etc/x"},
		{"absolute member", []member{layout, index, {Name: "/etc/x", Body: "x"}}, errdef.ErrUnsafePath, "/etc/x"},
		{"duplicate index.json", []member{layout, index, {Name: "./index.json", Body: `{"schemaVersion":2,"manifests":[{}]}`}}, errdef.ErrInvalid, "index.json"},
		{"huge index.json", []member{layout, {Name: "index.json", Body: `{"schemaVersion":2,"x":"` + strings.Repeat("a", 64<<20) + `"}`}}, errdef.ErrTooLarge, "index.json"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := writeTar(t, c.members...)
			_, err := ociarchive.Open(ctx, path)
			if !errors.Is(err, c.target) || !strings.Contains(err.Error(), c.names) {
				t.Fatalf("got %v, want %v naming %q", err, c.target, c.names)
			}
		})
	}
}

func TestHostileBlobs(t *testing.T) {
	ctx := context.Background()
	real := []byte("real content")
	d := contenttest.Describe("application/octet-stream", real)
	lie := contenttest.Describe("application/octet-stream", []byte("other content"))
	path := writeTar(t,
		member{Name: "oci-layout", Body: `{"imageLayoutVersion":"1.0.0"}`},
		member{Name: "index.json", Body: `{"schemaVersion":2,"manifests":[]}`},
		member{Name: "blobs/sha256/" + lie.Digest.Encoded(), Body: "not the content"},
		member{Name: "blobs/sha256/" + d.Digest.Encoded(), Typ: tar.TypeSymlink, Link: "../../../outside"},
	)
	r := open(t, path)
	lie.Size = int64(len("not the content"))
	_, err := content.ReadAll(ctx, r, lie, 0)
	if !errors.Is(err, errdef.ErrDigestMismatch) {
		t.Fatalf("tampered blob: %v", err)
	}
	if _, err := r.Fetch(ctx, d); !errors.Is(err, errdef.ErrUnsafePath) {
		t.Fatalf("blob behind an escaping link: %v", err)
	}
}

func TestCompressedArchive(t *testing.T) {
	ctx := context.Background()
	img := contenttest.MakeImage(t, map[string]string{"a": "a"})
	w, path := create(t)
	img.Push(t, w)
	w.Tag(ctx, img.Manifest, "t")
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	gzPath := path + ".gz"
	os.WriteFile(gzPath, contenttest.Gzipped(data), 0o644)
	r := open(t, gzPath)
	only, _ := ref.Parse("oci-archive:" + gzPath)
	if d, err := r.Select(ctx, only); err != nil || d.Digest != img.Manifest.Digest {
		t.Fatalf("select the only image: %v %v", d.Digest, err)
	}
	d, err := r.Resolve(ctx, "t")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := content.LoadImage(ctx, r, d, nil); err != nil {
		t.Fatal(err)
	}
}

func TestConcurrentPushes(t *testing.T) {
	ctx := context.Background()
	w, path := create(t)
	var imgs []contenttest.Image
	for i := 0; i < 8; i++ {
		imgs = append(imgs, contenttest.MakeImage(t, map[string]string{"f": strings.Repeat(string(rune('a'+i)), 1000*i)}))
	}
	errs := make(chan error, len(imgs))
	for _, img := range imgs {
		go func() {
			for _, d := range append(append([]ocispec.Descriptor(nil), img.Layers...), img.Config, img.Manifest) {
				if err := w.Push(ctx, d, bytes.NewReader(img.Blobs[d.Digest])); err != nil {
					errs <- err
					return
				}
			}
			errs <- w.Tag(ctx, img.Manifest, "i"+img.Manifest.Digest.Encoded()[:8])
		}()
	}
	for range imgs {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	r := open(t, path)
	none, _ := ref.Parse("oci-archive:" + path)
	if _, err := r.Select(ctx, none); !errors.Is(err, errdef.ErrInvalid) {
		t.Fatalf("select among 8 images without latest: %v", err)
	}
	for _, img := range imgs {
		if _, err := content.LoadImage(ctx, r, img.Manifest, nil); err != nil {
			t.Fatal(err)
		}
		rc, _ := r.Fetch(ctx, img.Layers[0])
		if b, err := io.ReadAll(rc); err != nil || !bytes.Equal(b, img.Blobs[img.Layers[0].Digest]) {
			t.Fatalf("layer: %v", err)
		}
	}
}

// FuzzOpen opens arbitrary archives (the seeds are valid ones) and reads
// whatever they resolve to; nothing may panic or read out of bounds.
func FuzzOpen(f *testing.F) {
	ctx := context.Background()
	img := contenttest.MakeImage(f, map[string]string{"a": "a"})
	path := filepath.Join(f.TempDir(), "seed.tar")
	w, err := ociarchive.Create(ctx, path)
	if err != nil {
		f.Fatal(err)
	}
	img.Push(f, w)
	w.Tag(ctx, img.Manifest, "t")
	if err := w.Close(); err != nil {
		f.Fatal(err)
	}
	seed, _ := os.ReadFile(path)
	f.Add(seed)
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 0 && (data[0] == 0x1f || data[0] == 0x28) {
			// gzip and zstd are third-party decoders; a fuzzer finds
			// their high-ratio blocks at once and spends its time writing
			// the output (decompression is capped by archive.MaxExpansion).
			return
		}
		p := filepath.Join(dir, "fuzz.tar")
		os.WriteFile(p, data, 0o644)
		r, err := ociarchive.Open(ctx, p)
		if err != nil {
			return
		}
		defer r.Close()
		idx, _ := r.Index(ctx)
		for _, d := range idx.Manifests {
			content.LoadImage(ctx, r, d, nil)
		}
		r.Blobs(ctx, func(d ocispec.Descriptor) error {
			content.ReadAll(ctx, r, d, 1<<20)
			return nil
		})
	})
}

func TestIngest(t *testing.T) {
	ctx := context.Background()
	w, path := create(t)
	data := bytes.Repeat([]byte("layer data "), 10000)
	d := digest.FromBytes(data)

	iw, err := w.Ingest(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	ref := iw.Ref()
	iw.Write(data[:5000])
	if _, err := w.Ingest(ctx, ref); !errors.Is(err, errdef.ErrUnavailable) {
		t.Fatalf("second writer of an open ingest: %v", err)
	}
	iw.Close()
	iw, err = w.Ingest(ctx, ref)
	if err != nil || iw.Offset() != 5000 {
		t.Fatalf("resume: %v at %d", err, iw.Offset())
	}
	iw.Write(data[5000:])
	if _, err := iw.Commit(ctx, int64(len(data)), digest.FromString("other")); !errors.Is(err, errdef.ErrDigestMismatch) {
		t.Fatalf("commit with the wrong digest: %v", err)
	}
	if ok, _ := w.Exists(ctx, ocispec.Descriptor{Digest: digest.FromString("other")}); ok {
		t.Fatal("mismatched ingest stored")
	}
	iw, _ = w.Ingest(ctx, "")
	iw.Write(data)
	if _, err := iw.Commit(ctx, 1, d); !errors.Is(err, errdef.ErrSizeMismatch) {
		t.Fatalf("commit with the wrong size: %v", err)
	}
	iw, _ = w.Ingest(ctx, "")
	iw.Write(data)
	desc, err := iw.Commit(ctx, -1, d)
	if err != nil || desc.Size != int64(len(data)) {
		t.Fatalf("commit: %+v %v", desc, err)
	}
	aborted, _ := w.Ingest(ctx, "")
	aborted.Write([]byte("dropped"))
	aborted.Abort(ctx)
	left, _ := w.Ingest(ctx, "") // left open: dropped by Close
	left.Write([]byte("open"))
	desc.MediaType = "application/octet-stream"
	w.Tag(ctx, desc, "blob")
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(filepath.Dir(path)); len(ents) != 1 {
		t.Fatalf("left in the directory: %v", ents)
	}
	r := open(t, path)
	got, err := content.ReadAll(ctx, r, desc, 1<<20)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read back: %v", err)
	}
	n := 0
	r.Blobs(ctx, func(ocispec.Descriptor) error { n++; return nil })
	if n != 1 {
		t.Fatalf("%d blobs in the archive, want 1", n)
	}
}

// gateReader gives its first half, then waits for open to close.
type gateReader struct {
	data    []byte
	off     int
	open    chan struct{}
	halfway chan struct{}
}

func (g *gateReader) Read(p []byte) (int, error) {
	if g.off == len(g.data)/2 {
		close(g.halfway)
		<-g.open
	}
	if g.off >= len(g.data) {
		return 0, io.EOF
	}
	end := len(g.data)
	if g.off < len(g.data)/2 {
		end = len(g.data) / 2
	}
	n := copy(p, g.data[g.off:end])
	g.off += n
	return n, nil
}

// eofReader closes eof when r is read to its end.
type eofReader struct {
	r   io.Reader
	eof chan struct{}
}

func (e *eofReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err == io.EOF {
		close(e.eof)
	}
	return n, err
}

func TestPushWhileBusySpills(t *testing.T) {
	ctx := context.Background()
	w, path := create(t)
	slow := bytes.Repeat([]byte("s"), 1<<20)
	gate := &gateReader{data: slow, open: make(chan struct{}), halfway: make(chan struct{})}
	done := make(chan error)
	go func() { done <- w.Push(ctx, contenttest.Describe("application/octet-stream", slow), gate) }()
	<-gate.halfway
	// The archive is busy: these pushes complete their reads meanwhile.
	good := []byte("good blob")
	errs := make(chan error, 2)
	read := make(chan struct{})
	go func() {
		errs <- w.Push(ctx, contenttest.Describe("application/octet-stream", good), &eofReader{r: bytes.NewReader(good), eof: read})
	}()
	bad := contenttest.Describe("application/octet-stream", []byte("claimed"))
	go func() { errs <- w.Push(ctx, bad, strings.NewReader("not the claimed content at all")) }()
	select {
	case <-read:
	case <-time.After(10 * time.Second):
		t.Fatal("a push waited for the busy archive instead of reading its blob")
	}
	close(gate.open)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	var got []error
	got = append(got, <-errs, <-errs)
	okCount, mismatch := 0, 0
	for _, err := range got {
		switch {
		case err == nil:
			okCount++
		case errors.Is(err, errdef.ErrSizeMismatch) || errors.Is(err, errdef.ErrDigestMismatch):
			mismatch++
		default:
			t.Fatalf("push: %v", err)
		}
	}
	if okCount != 1 || mismatch != 1 {
		t.Fatalf("results %v", got)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(filepath.Dir(path)); len(ents) != 1 {
		t.Fatalf("spill files left: %v", ents)
	}
	r := open(t, path)
	for _, b := range [][]byte{slow, good} {
		if data, err := content.ReadAll(ctx, r, contenttest.Describe("", b), 2<<20); err != nil || !bytes.Equal(data, b) {
			t.Fatalf("read back: %v", err)
		}
	}
}

func TestReaderIsReadOnly(t *testing.T) {
	ctx := context.Background()
	img := contenttest.MakeImage(t, map[string]string{"a": "a"})
	w, path := create(t)
	img.Push(t, w)
	w.Close()
	r := open(t, path)
	if err := r.Push(ctx, img.Config, bytes.NewReader(img.Blobs[img.Config.Digest])); !errors.Is(err, errdef.ErrUnsupported) {
		t.Fatalf("push: %v", err)
	}
	if err := r.Tag(ctx, img.Manifest, "x"); !errors.Is(err, errdef.ErrUnsupported) {
		t.Fatalf("tag: %v", err)
	}
}
