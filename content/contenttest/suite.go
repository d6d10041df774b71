// Package contenttest is a conformance suite for content.Store
// implementations. It is imported only from tests.
package contenttest

import (
	"bytes"
	"context"
	"crypto/rand"
	_ "crypto/sha256" // register sha256 with go-digest
	_ "crypto/sha512" // register sha384 and sha512 with go-digest
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/lading-oci/lading/content"
	"github.com/lading-oci/lading/errdef"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Suite runs the conformance tests as subtests of t. newStore returns an
// empty store for each subtest.
func Suite(t *testing.T, newStore func(t *testing.T) content.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s content.Store)
	}{
		{"PushFetch", testPushFetch},
		{"PushExisting", testPushExisting},
		{"PushMismatch", testPushMismatch},
		{"PushSHA512", testPushSHA512},
		{"PushInvalidDigest", testPushInvalidDigest},
		{"Missing", testMissing},
		{"IngestResume", testIngestResume},
		{"IngestSHA512", testIngestSHA512},
		{"IngestUnknownSize", testIngestUnknownSize},
		{"IngestCommitMismatch", testIngestCommitMismatch},
		{"IngestAbort", testIngestAbort},
		{"IngestCommitExisting", testIngestCommitExisting},
		{"IngestBadRef", testIngestBadRef},
		{"IngestRefInUse", testIngestRefInUse},
		{"ConcurrentWriters", testConcurrentWriters},
		{"ConcurrentPush", testConcurrentPush},
		{"Delete", testDelete},
		{"Blobs", testBlobs},
		{"Tags", testTags},
		{"TagMissingBlob", testTagMissingBlob},
		{"TagInvalid", testTagInvalid},
		{"ResolveDigest", testResolveDigest},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, newStore(t))
		})
	}
}

// Blob returns random content of n bytes and its descriptor.
func Blob(t testing.TB, n int) ([]byte, ocispec.Descriptor) {
	t.Helper()
	data := make([]byte, n)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	return data, Describe("application/octet-stream", data)
}

// Describe returns the sha256 descriptor of data with media type mt.
func Describe(mt string, data []byte) ocispec.Descriptor {
	return ocispec.Descriptor{MediaType: mt, Digest: digest.FromBytes(data), Size: int64(len(data))}
}

// Push pushes data under desc and fails the test on error.
func Push(t testing.TB, s content.Pusher, desc ocispec.Descriptor, data []byte) {
	t.Helper()
	if err := s.Push(context.Background(), desc, bytes.NewReader(data)); err != nil {
		t.Fatalf("push %s: %v", desc.Digest, err)
	}
}

func fetchAll(t *testing.T, s content.Store, desc ocispec.Descriptor) []byte {
	t.Helper()
	rc, err := s.Fetch(context.Background(), desc)
	if err != nil {
		t.Fatalf("fetch %s: %v", desc.Digest, err)
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read %s: %v", desc.Digest, err)
	}
	return data
}

func wantContent(t *testing.T, s content.Store, desc ocispec.Descriptor, want []byte) {
	t.Helper()
	if got := fetchAll(t, s, desc); !bytes.Equal(got, want) {
		t.Fatalf("fetch %s: got %d bytes, want %d (content differs)", desc.Digest, len(got), len(want))
	}
	st, err := s.Stat(context.Background(), desc.Digest)
	if err != nil {
		t.Fatalf("stat %s: %v", desc.Digest, err)
	}
	if st.Digest != desc.Digest || st.Size != int64(len(want)) {
		t.Fatalf("stat %s: got %s/%d, want %s/%d", desc.Digest, st.Digest, st.Size, desc.Digest, len(want))
	}
	wantExists(t, s, desc, true)
}

func wantExists(t *testing.T, s content.Store, desc ocispec.Descriptor, want bool) {
	t.Helper()
	ok, err := s.Exists(context.Background(), desc)
	if err != nil {
		t.Fatalf("exists %s: %v", desc.Digest, err)
	}
	if ok != want {
		t.Fatalf("exists %s = %v, want %v", desc.Digest, ok, want)
	}
}

func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: got error %v, want one matching %q", what, err, target)
	}
}

func testPushFetch(t *testing.T, s content.Store) {
	for _, n := range []int{0, 1, 4096, 1<<20 + 3} {
		data, desc := Blob(t, n)
		Push(t, s, desc, data)
		wantContent(t, s, desc, data)
	}
}

func testPushExisting(t *testing.T, s content.Store) {
	ctx := context.Background()
	data, desc := Blob(t, 1000)
	Push(t, s, desc, data)
	// The second push need not read the reader; if it does, it still verifies.
	Push(t, s, desc, data)
	wantContent(t, s, desc, data)
	// A push of different bytes under an existing digest never replaces it.
	other := bytes.Repeat([]byte{'x'}, len(data))
	err := s.Push(ctx, desc, bytes.NewReader(other))
	if err != nil && !errors.Is(err, errdef.ErrDigestMismatch) {
		t.Fatalf("push of wrong bytes under an existing digest: %v", err)
	}
	wantContent(t, s, desc, data)
}

func testPushMismatch(t *testing.T, s content.Store) {
	ctx := context.Background()
	data, desc := Blob(t, 3000)
	cases := []struct {
		name   string
		desc   ocispec.Descriptor
		data   []byte
		target error
	}{
		{"wrong digest", ocispec.Descriptor{Digest: digest.FromString("other"), Size: desc.Size}, data, errdef.ErrDigestMismatch},
		{"declared size too small", ocispec.Descriptor{Digest: desc.Digest, Size: desc.Size - 1}, data, errdef.ErrSizeMismatch},
		{"declared size too large", ocispec.Descriptor{Digest: desc.Digest, Size: desc.Size + 1}, data, errdef.ErrSizeMismatch},
		{"content too long", desc, append(append([]byte(nil), data...), 'x'), errdef.ErrSizeMismatch},
		{"content too short", desc, data[:len(data)-1], errdef.ErrSizeMismatch},
		{"empty content", desc, nil, errdef.ErrSizeMismatch},
	}
	for _, c := range cases {
		err := s.Push(ctx, c.desc, bytes.NewReader(c.data))
		wantErr(t, c.name, err, c.target)
		wantExists(t, s, c.desc, false)
		wantExists(t, s, desc, false)
		wantErr(t, c.name+": stat", statErr(s, c.desc.Digest), errdef.ErrNotFound)
	}
	// A reader that fails stores nothing either.
	boom := errors.New("boom")
	err := s.Push(ctx, desc, io.MultiReader(bytes.NewReader(data[:10]), errReader{boom}))
	wantErr(t, "failing reader", err, boom)
	wantExists(t, s, desc, false)
}

func statErr(s content.Store, d digest.Digest) error {
	_, err := s.Stat(context.Background(), d)
	return err
}

// FailReader returns a reader that fails the test if it is read: for pushes
// that must not read their input.
func FailReader(t testing.TB) io.Reader {
	return failReader{t}
}

type failReader struct{ t testing.TB }

func (f failReader) Read([]byte) (int, error) {
	f.t.Error("reader was read")
	return 0, io.ErrUnexpectedEOF
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

func sha512Desc(data []byte) ocispec.Descriptor {
	return ocispec.Descriptor{MediaType: "application/octet-stream", Digest: digest.SHA512.FromBytes(data), Size: int64(len(data))}
}

func testPushSHA512(t *testing.T, s content.Store) {
	data, _ := Blob(t, 5000)
	desc := sha512Desc(data)
	Push(t, s, desc, data)
	wantContent(t, s, desc, data)
	bad := desc
	bad.Digest = digest.SHA512.FromString("other")
	wantErr(t, "sha512 mismatch", s.Push(context.Background(), bad, bytes.NewReader(data)), errdef.ErrDigestMismatch)
	wantExists(t, s, bad, false)
}

func testPushInvalidDigest(t *testing.T, s content.Store) {
	ctx := context.Background()
	for _, d := range []digest.Digest{"", "sha256:abc", "sha256:" + digest.Digest(strings.Repeat("G", 64)), "nohash"} {
		err := s.Push(ctx, ocispec.Descriptor{Digest: d, Size: 1}, strings.NewReader("x"))
		if !errors.Is(err, errdef.ErrInvalid) && !errors.Is(err, errdef.ErrUnsupported) {
			t.Errorf("push with digest %q: got %v, want ErrInvalid or ErrUnsupported", d, err)
		}
	}
	err := s.Push(ctx, ocispec.Descriptor{Digest: "md5:d41d8cd98f00b204e9800998ecf8427e", Size: 0}, strings.NewReader(""))
	wantErr(t, "push with an md5 digest", err, errdef.ErrUnsupported)
}

func testMissing(t *testing.T, s content.Store) {
	ctx := context.Background()
	_, desc := Blob(t, 10)
	_, err := s.Fetch(ctx, desc)
	wantErr(t, "fetch missing", err, errdef.ErrNotFound)
	wantErr(t, "stat missing", statErr(s, desc.Digest), errdef.ErrNotFound)
	wantExists(t, s, desc, false)
	wantErr(t, "delete missing", s.Delete(ctx, desc.Digest), errdef.ErrNotFound)
	_, err = s.Resolve(ctx, desc.Digest.String())
	wantErr(t, "resolve missing digest", err, errdef.ErrNotFound)
	_, err = s.Resolve(ctx, "no-such-tag")
	wantErr(t, "resolve missing tag", err, errdef.ErrNotFound)
	wantErr(t, "untag missing", s.Untag(ctx, "no-such-tag"), errdef.ErrNotFound)
}

func write(t *testing.T, w content.Writer, p []byte) {
	t.Helper()
	n, err := w.Write(p)
	if err != nil || n != len(p) {
		t.Fatalf("write %d bytes to ingest %q: wrote %d, %v", len(p), w.Ref(), n, err)
	}
}

func testIngestResume(t *testing.T, s content.Store) {
	ctx := context.Background()
	data, desc := Blob(t, 300_000)
	w, err := s.Ingest(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	ref := w.Ref()
	if ref == "" {
		t.Fatal("a new ingest has an empty ref")
	}
	write(t, w, data[:1000])
	write(t, w, data[1000:100_000])
	if w.Offset() != 100_000 {
		t.Fatalf("offset %d after writing 100000 bytes", w.Offset())
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("x")); err == nil {
		t.Fatal("write after close succeeded")
	}
	wantExists(t, s, desc, false)

	w, err = s.Ingest(ctx, ref)
	if err != nil {
		t.Fatalf("resume %q: %v", ref, err)
	}
	if w.Ref() != ref || w.Offset() != 100_000 {
		t.Fatalf("resumed ingest: ref %q offset %d, want %q 100000", w.Ref(), w.Offset(), ref)
	}
	write(t, w, data[100_000:])
	got, err := w.Commit(ctx, desc.Size, desc.Digest)
	if err != nil {
		t.Fatalf("commit: %v", err)
	}
	if got.Digest != desc.Digest || got.Size != desc.Size {
		t.Fatalf("commit returned %s/%d, want %s/%d", got.Digest, got.Size, desc.Digest, desc.Size)
	}
	wantContent(t, s, desc, data)
	if _, err := w.Write([]byte("x")); err == nil {
		t.Fatal("write after commit succeeded")
	}
	// The ingest is over: its ref starts afresh.
	w, err = s.Ingest(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort(ctx)
	if w.Offset() != 0 {
		t.Fatalf("ingest %q after commit starts at offset %d, want 0", ref, w.Offset())
	}
}

func testIngestSHA512(t *testing.T, s content.Store) {
	ctx := context.Background()
	data, _ := Blob(t, 70_000)
	desc := sha512Desc(data)
	w, err := s.Ingest(ctx, "sha512-ingest")
	if err != nil {
		t.Fatal(err)
	}
	write(t, w, data[:5000])
	w.Close()
	w, err = s.Ingest(ctx, "sha512-ingest")
	if err != nil {
		t.Fatal(err)
	}
	write(t, w, data[5000:])
	if _, err := w.Commit(ctx, desc.Size, desc.Digest); err != nil {
		t.Fatalf("commit sha512: %v", err)
	}
	wantContent(t, s, desc, data)
}

func testIngestUnknownSize(t *testing.T, s content.Store) {
	ctx := context.Background()
	data, desc := Blob(t, 1234)
	w, err := s.Ingest(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	write(t, w, data)
	got, err := w.Commit(ctx, -1, desc.Digest)
	if err != nil {
		t.Fatalf("commit with size -1: %v", err)
	}
	if got.Size != desc.Size {
		t.Fatalf("commit returned size %d, want %d", got.Size, desc.Size)
	}
	wantContent(t, s, desc, data)
}

func testIngestCommitMismatch(t *testing.T, s content.Store) {
	ctx := context.Background()
	data, desc := Blob(t, 2000)
	cases := []struct {
		name   string
		size   int64
		dgst   digest.Digest
		target error
	}{
		{"wrong digest", desc.Size, digest.FromString("other"), errdef.ErrDigestMismatch},
		{"wrong sha512 digest", desc.Size, digest.SHA512.FromString("other"), errdef.ErrDigestMismatch},
		{"wrong size", desc.Size + 1, desc.Digest, errdef.ErrSizeMismatch},
	}
	for _, c := range cases {
		ref := "mismatch-" + strings.ReplaceAll(c.name, " ", "-")
		w, err := s.Ingest(ctx, ref)
		if err != nil {
			t.Fatal(err)
		}
		write(t, w, data)
		_, err = w.Commit(ctx, c.size, c.dgst)
		wantErr(t, c.name, err, c.target)
		wantExists(t, s, desc, false)
		wantExists(t, s, ocispec.Descriptor{Digest: c.dgst}, false)
		// The data was discarded.
		w, err = s.Ingest(ctx, ref)
		if err != nil {
			t.Fatal(err)
		}
		if w.Offset() != 0 {
			t.Fatalf("%s: ingest kept %d bytes after a failed commit", c.name, w.Offset())
		}
		if err := w.Abort(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

func testIngestAbort(t *testing.T, s content.Store) {
	ctx := context.Background()
	data, desc := Blob(t, 2000)
	w, err := s.Ingest(ctx, "to-abort")
	if err != nil {
		t.Fatal(err)
	}
	write(t, w, data)
	if err := w.Abort(ctx); err != nil {
		t.Fatalf("abort: %v", err)
	}
	_, err = w.Commit(ctx, desc.Size, desc.Digest)
	wantErr(t, "commit after abort", err, errdef.ErrClosed)
	_, err = w.Write([]byte("x"))
	wantErr(t, "write after abort", err, errdef.ErrClosed)
	wantExists(t, s, desc, false)
	w, err = s.Ingest(ctx, "to-abort")
	if err != nil {
		t.Fatal(err)
	}
	if w.Offset() != 0 {
		t.Fatalf("aborted ingest resumed at offset %d", w.Offset())
	}
	w.Close()
}

func testIngestCommitExisting(t *testing.T, s content.Store) {
	ctx := context.Background()
	data, desc := Blob(t, 500)
	Push(t, s, desc, data)
	w, err := s.Ingest(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	write(t, w, data)
	if _, err := w.Commit(ctx, desc.Size, desc.Digest); err != nil {
		t.Fatalf("commit of a blob already stored: %v", err)
	}
	wantContent(t, s, desc, data)
}

func testIngestBadRef(t *testing.T, s content.Store) {
	for _, ref := range []string{"a/b", "..", "../x", ".", ".hidden", "a\\b", "a\x00b", strings.Repeat("r", 300)} {
		w, err := s.Ingest(context.Background(), ref)
		if err == nil {
			w.Abort(context.Background())
			t.Errorf("ingest ref %q accepted", ref)
			continue
		}
		wantErr(t, fmt.Sprintf("ingest ref %q", ref), err, errdef.ErrInvalid)
	}
}

func testIngestRefInUse(t *testing.T, s content.Store) {
	ctx := context.Background()
	w, err := s.Ingest(ctx, "busy")
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Ingest(ctx, "busy")
	wantErr(t, "second writer on an open ingest", err, errdef.ErrUnavailable)
	w.Close()
	w, err = s.Ingest(ctx, "busy")
	if err != nil {
		t.Fatalf("ingest after the first writer closed: %v", err)
	}
	w.Abort(ctx)
}

func testConcurrentWriters(t *testing.T, s content.Store) {
	ctx := context.Background()
	data, desc := Blob(t, 256<<10)
	const n = 4
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			w, err := s.Ingest(ctx, "")
			if err != nil {
				errs[i] = err
				return
			}
			for off := 0; off < len(data); off += 8 << 10 {
				if _, err := w.Write(data[off:min(off+8<<10, len(data))]); err != nil {
					errs[i] = err
					return
				}
			}
			_, errs[i] = w.Commit(ctx, desc.Size, desc.Digest)
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("writer %d: %v", i, err)
		}
	}
	wantContent(t, s, desc, data)
}

func testConcurrentPush(t *testing.T, s content.Store) {
	ctx := context.Background()
	blobs := make([][]byte, 4)
	descs := make([]ocispec.Descriptor, 4)
	for i := range blobs {
		blobs[i], descs[i] = Blob(t, 64<<10+i)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for i := range 16 {
		wg.Go(func() {
			j := i % len(blobs)
			if err := s.Push(ctx, descs[j], bytes.NewReader(blobs[j])); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for i := range blobs {
		wantContent(t, s, descs[i], blobs[i])
	}
}

func testDelete(t *testing.T, s content.Store) {
	ctx := context.Background()
	data, desc := Blob(t, 100)
	keep, keepDesc := Blob(t, 100)
	Push(t, s, desc, data)
	Push(t, s, keepDesc, keep)
	if err := s.Delete(ctx, desc.Digest); err != nil {
		t.Fatalf("delete: %v", err)
	}
	wantExists(t, s, desc, false)
	_, err := s.Fetch(ctx, desc)
	wantErr(t, "fetch deleted", err, errdef.ErrNotFound)
	wantErr(t, "delete again", s.Delete(ctx, desc.Digest), errdef.ErrNotFound)
	wantContent(t, s, keepDesc, keep)
	// A deleted blob can be pushed again.
	Push(t, s, desc, data)
	wantContent(t, s, desc, data)
}

func testBlobs(t *testing.T, s content.Store) {
	ctx := context.Background()
	want := map[digest.Digest]int64{}
	for i := range 5 {
		data, desc := Blob(t, 10*i)
		if i == 4 {
			desc = sha512Desc(data)
		}
		Push(t, s, desc, data)
		want[desc.Digest] = desc.Size
	}
	got := map[digest.Digest]int64{}
	err := s.Blobs(ctx, func(d ocispec.Descriptor) error {
		if _, dup := got[d.Digest]; dup {
			t.Errorf("walk visited %s twice", d.Digest)
		}
		got[d.Digest] = d.Size
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("walk found %v, want %v", got, want)
	}
	stop := errors.New("stop")
	calls := 0
	err = s.Blobs(ctx, func(ocispec.Descriptor) error { calls++; return stop })
	if !errors.Is(err, stop) || calls != 1 {
		t.Fatalf("walk with a failing callback: err %v after %d calls, want %v after 1", err, calls, stop)
	}
}

// manifest returns a small image manifest document (its blobs need not exist).
func manifest(t testing.TB, s content.Store, tag string) ([]byte, ocispec.Descriptor) {
	t.Helper()
	cfg := []byte(`{}`)
	doc := fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":%q,"size":2},"layers":[],"annotations":{"t":%q}}`,
		ocispec.MediaTypeImageManifest, digest.FromBytes(cfg), tag)
	data := []byte(doc)
	desc := Describe(ocispec.MediaTypeImageManifest, data)
	Push(t, s, Describe("application/vnd.oci.empty.v1+json", cfg), cfg)
	Push(t, s, desc, data)
	return data, desc
}

// Tags lists every tag of s, in the order s gives them.
func Tags(t testing.TB, s content.TagLister) []string {
	t.Helper()
	var all []string
	err := s.Tags(context.Background(), func(page []string) error {
		all = append(all, page...)
		return nil
	})
	if err != nil {
		t.Fatalf("tags: %v", err)
	}
	return all
}

func resolve(t *testing.T, s content.Store, ref string) ocispec.Descriptor {
	t.Helper()
	d, err := s.Resolve(context.Background(), ref)
	if err != nil {
		t.Fatalf("resolve %q: %v", ref, err)
	}
	return d
}

func testTags(t *testing.T, s content.Store) {
	ctx := context.Background()
	_, m1 := manifest(t, s, "one")
	_, m2 := manifest(t, s, "two")
	if got := Tags(t, s); len(got) != 0 {
		t.Fatalf("new store has tags %v", got)
	}
	for _, tag := range []string{"v1", "latest", "a/b:c", "x_y-1.2"} {
		if err := s.Tag(ctx, m1, tag); err != nil {
			t.Fatalf("tag %q: %v", tag, err)
		}
	}
	if err := s.Tag(ctx, m2, "other"); err != nil {
		t.Fatal(err)
	}
	want := []string{"a/b:c", "latest", "other", "v1", "x_y-1.2"}
	if got := Tags(t, s); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("tags = %v, want %v", got, want)
	}
	if d := resolve(t, s, "latest"); d.Digest != m1.Digest || d.Size != m1.Size || d.MediaType != m1.MediaType {
		t.Fatalf("resolve latest = %+v, want %+v", d, m1)
	}
	// Retagging moves the tag and leaves the others alone.
	if err := s.Tag(ctx, m2, "latest"); err != nil {
		t.Fatal(err)
	}
	if d := resolve(t, s, "latest"); d.Digest != m2.Digest {
		t.Fatalf("retagged latest resolves to %s, want %s", d.Digest, m2.Digest)
	}
	if d := resolve(t, s, "v1"); d.Digest != m1.Digest {
		t.Fatalf("v1 resolves to %s after retagging latest, want %s", d.Digest, m1.Digest)
	}
	if got := Tags(t, s); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("tags after retag = %v, want %v", got, want)
	}
	// A descriptor resolved in another store carries that store's ref.name:
	// the tag recorded is the one given.
	foreign := m1
	foreign.Annotations = map[string]string{ocispec.AnnotationRefName: "elsewhere", "k": "v"}
	if err := s.Tag(ctx, foreign, "copied"); err != nil {
		t.Fatal(err)
	}
	if d := resolve(t, s, "copied"); d.Annotations[ocispec.AnnotationRefName] != "copied" || d.Annotations["k"] != "v" {
		t.Fatalf("resolve copied: annotations %v, want ref.name copied and k=v", d.Annotations)
	}
	if _, err := s.Resolve(ctx, "elsewhere"); !errors.Is(err, errdef.ErrNotFound) {
		t.Fatalf("the foreign ref.name became a tag: %v", err)
	}
	if foreign.Annotations[ocispec.AnnotationRefName] != "elsewhere" {
		t.Fatal("Tag changed the caller's descriptor")
	}
	if err := s.Untag(ctx, "copied"); err != nil {
		t.Fatal(err)
	}
	if err := s.Untag(ctx, "v1"); err != nil {
		t.Fatalf("untag: %v", err)
	}
	_, err := s.Resolve(ctx, "v1")
	wantErr(t, "resolve untagged", err, errdef.ErrNotFound)
	wantErr(t, "untag twice", s.Untag(ctx, "v1"), errdef.ErrNotFound)
	wantExists(t, s, m1, true)
	if d := resolve(t, s, "a/b:c"); d.Digest != m1.Digest {
		t.Fatalf("a/b:c resolves to %s, want %s", d.Digest, m1.Digest)
	}
	want = []string{"a/b:c", "latest", "other", "x_y-1.2"}
	if got := Tags(t, s); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("tags after untag = %v, want %v", got, want)
	}
	stop := errors.New("stop")
	if err := s.Tags(ctx, func([]string) error { return stop }); !errors.Is(err, stop) {
		t.Fatalf("tags with a failing callback returned %v", err)
	}
}

func testTagMissingBlob(t *testing.T, s content.Store) {
	_, desc := Blob(t, 10)
	desc.MediaType = ocispec.MediaTypeImageManifest
	wantErr(t, "tag a missing blob", s.Tag(context.Background(), desc, "t"), errdef.ErrNotFound)
	if got := Tags(t, s); len(got) != 0 {
		t.Fatalf("tags after a failed tag: %v", got)
	}
}

func testTagInvalid(t *testing.T, s content.Store) {
	_, desc := manifest(t, s, "x")
	for _, tag := range []string{"", "has space", "new\nline", "tab\t", strings.Repeat("t", 5000)} {
		wantErr(t, fmt.Sprintf("tag %q", tag), s.Tag(context.Background(), desc, tag), errdef.ErrInvalid)
	}
}

func testResolveDigest(t *testing.T, s content.Store) {
	_, m := manifest(t, s, "resolve")
	d := resolve(t, s, m.Digest.String())
	if d.Digest != m.Digest || d.Size != m.Size || d.MediaType != m.MediaType {
		t.Fatalf("resolve by digest = %+v, want %+v", d, m)
	}
	data, b := Blob(t, 64)
	Push(t, s, b, data)
	d = resolve(t, s, b.Digest.String())
	if d.Digest != b.Digest || d.Size != b.Size {
		t.Fatalf("resolve raw blob by digest = %+v, want %+v", d, b)
	}
	// Tags resolve before digests, and listing them stays sorted.
	if err := s.Tag(context.Background(), m, "zz"); err != nil {
		t.Fatal(err)
	}
	tags := Tags(t, s)
	if !sort.StringsAreSorted(tags) {
		t.Fatalf("tags not sorted: %v", tags)
	}
}
