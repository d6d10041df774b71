package storage

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/lading-oci/lading/content/ocilayout"
	"github.com/lading-oci/lading/errdef"
	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func openFS(t testing.TB, root string, opts Options) *FS {
	t.Helper()
	opts.NoSync = true
	s, err := Open(context.Background(), root, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func repoOf(t testing.TB, s *FS, name string) Repository {
	t.Helper()
	r, err := s.Repository(context.Background(), name, true)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func pushBytes(t testing.TB, r Repository, data []byte) ocispec.Descriptor {
	t.Helper()
	desc := ocispec.Descriptor{MediaType: "application/octet-stream", Digest: digest.FromBytes(data), Size: int64(len(data))}
	if _, err := r.PushBlob(context.Background(), desc, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	return desc
}

// testImage pushes a config and a layer to r and returns a manifest
// referencing them (not pushed).
func testImage(t testing.TB, r Repository, subject *ocispec.Descriptor) ManifestPut {
	t.Helper()
	cfg := []byte(fmt.Sprintf(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["%s"]},"x":"%x"}`, digest.FromString("diff"), randomBytes(4)))
	cd := pushBytes(t, r, cfg)
	cd.MediaType = ocispec.MediaTypeImageConfig
	ld := pushBytes(t, r, randomBytes(1000))
	ld.MediaType = ocispec.MediaTypeImageLayerGzip
	m := ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest, Config: cd, Layers: []ocispec.Descriptor{ld}, Subject: subject}
	data, _ := json.Marshal(m)
	put := ManifestPut{
		Desc:     ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromBytes(data), Size: int64(len(data)), ArtifactType: cd.MediaType},
		Data:     data,
		Subject:  subject,
		Requires: []ocispec.Descriptor{cd, ld},
	}
	return put
}

// verifyLayouts checks every repository with the embedded store's Verify.
func verifyLayouts(t testing.TB, s *FS) {
	t.Helper()
	names, _ := s.Repositories(context.Background(), "", -1)
	for _, n := range names {
		st, err := ocilayout.Open(context.Background(), filepath.Join(s.Root(), n))
		if err != nil {
			t.Fatalf("open layout %s: %v", n, err)
		}
		rep, err := st.Verify(context.Background(), ocilayout.VerifyOptions{})
		if err != nil {
			t.Fatalf("verify %s: %v", n, err)
		}
		for _, p := range rep.Problems {
			t.Errorf("layout %s: %s", n, p)
		}
	}
}

func TestBlobsSharedAndIsolated(t *testing.T) {
	ctx := context.Background()
	s := openFS(t, t.TempDir(), Options{})
	a, b := repoOf(t, s, "team/a"), repoOf(t, s, "team/b")
	data := randomBytes(4096)
	desc := pushBytes(t, a, data)

	// b was not given the blob: it cannot read it by digest.
	if _, err := b.OpenBlob(ctx, desc.Digest); !errors.Is(err, errdef.ErrNotFound) {
		t.Fatalf("b reads a's blob: %v", err)
	}
	if _, err := b.StatBlob(ctx, desc.Digest); !errors.Is(err, errdef.ErrNotFound) {
		t.Fatalf("b stats a's blob: %v", err)
	}
	// Pushing the same content to b stores it once.
	pushBytes(t, b, data)
	fa, _ := os.Stat(filepath.Join(s.Root(), "team/a/blobs/sha256", desc.Digest.Encoded()))
	fb, _ := os.Stat(filepath.Join(s.Root(), "team/b/blobs/sha256", desc.Digest.Encoded()))
	if !os.SameFile(fa, fb) || linkCount(fa) != 3 {
		t.Fatalf("blob stored more than once: same file %v, links %d", os.SameFile(fa, fb), linkCount(fa))
	}
	// A mount links without copying.
	c := repoOf(t, s, "c")
	if _, err := c.MountBlob(ctx, desc.Digest, a); err != nil {
		t.Fatal(err)
	}
	bl, err := c.OpenBlob(ctx, desc.Digest)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(bl.Content)
	bl.Close()
	if !bytes.Equal(got, data) {
		t.Fatal("mounted blob differs")
	}
	// Mounting what the source does not have fails.
	if _, err := c.MountBlob(ctx, digest.FromString("nope"), a); !errors.Is(err, errdef.ErrNotFound) {
		t.Fatalf("mount of a missing blob: %v", err)
	}
	// Deleting from one repository leaves the others.
	if err := a.DeleteBlob(ctx, desc.Digest); err != nil {
		t.Fatal(err)
	}
	if _, err := a.StatBlob(ctx, desc.Digest); !errors.Is(err, errdef.ErrNotFound) {
		t.Fatalf("deleted blob still there: %v", err)
	}
	if _, err := b.StatBlob(ctx, desc.Digest); err != nil {
		t.Fatalf("b lost its blob: %v", err)
	}
}

func TestPushBlobMismatchStoresNothing(t *testing.T) {
	ctx := context.Background()
	s := openFS(t, t.TempDir(), Options{})
	r := repoOf(t, s, "r")
	data := []byte("hello")
	_, err := r.PushBlob(ctx, ocispec.Descriptor{Digest: digest.FromString("other"), Size: 5}, bytes.NewReader(data))
	if !errors.Is(err, errdef.ErrDigestMismatch) {
		t.Fatalf("err = %v, want digest mismatch", err)
	}
	_, err = r.PushBlob(ctx, ocispec.Descriptor{Digest: digest.FromBytes(data), Size: 6}, bytes.NewReader(data))
	if !errors.Is(err, errdef.ErrSizeMismatch) {
		t.Fatalf("err = %v, want size mismatch", err)
	}
	for _, dir := range []string{filepath.Join(s.Root(), "r", "blobs"), filepath.Join(s.Root(), stateDir, sharedBlobs), filepath.Join(s.Root(), stateDir, tmpDir)} {
		filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
			if err == nil && !fi.IsDir() {
				t.Errorf("left behind: %s", p)
			}
			return nil
		})
	}
}

func TestManifestsTagsAndLayout(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	s := openFS(t, root, Options{})
	r := repoOf(t, s, "lib/app")
	put := testImage(t, r, nil)
	put.Tags = []string{"v1", "latest"}
	if err := r.PutManifest(ctx, put); err != nil {
		t.Fatal(err)
	}
	desc, data, err := r.Manifest(ctx, "latest")
	if err != nil || desc.Digest != put.Desc.Digest || !bytes.Equal(data, put.Data) || desc.MediaType != ocispec.MediaTypeImageManifest {
		t.Fatalf("Manifest(latest) = %v, %v", desc, err)
	}
	if _, _, err := r.Manifest(ctx, string(put.Desc.Digest)); err != nil {
		t.Fatal(err)
	}
	tags, _ := r.Tags(ctx, "", -1)
	if fmt.Sprint(tags) != "[latest v1]" {
		t.Fatalf("tags = %v", tags)
	}
	if tags, _ := r.Tags(ctx, "latest", 5); fmt.Sprint(tags) != "[v1]" {
		t.Fatalf("tags after latest = %v", tags)
	}
	// The layout is an OCI image layout the embedded store reads.
	st, err := ocilayout.Open(context.Background(), filepath.Join(root, "lib/app"))
	if err != nil {
		t.Fatal(err)
	}
	d, err := st.Resolve(ctx, "v1")
	if err != nil || d.Digest != put.Desc.Digest {
		t.Fatalf("ocilayout resolve v1: %v %v", d, err)
	}
	verifyLayouts(t, s)

	// Untag keeps the manifest; deleting it removes tags too.
	if err := r.Untag(ctx, "v1"); err != nil {
		t.Fatal(err)
	}
	if err := r.Untag(ctx, "v1"); !errors.Is(err, errdef.ErrNotFound) {
		t.Fatalf("second untag: %v", err)
	}
	if err := r.DeleteManifest(ctx, put.Desc.Digest); err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.Manifest(ctx, "latest"); !errors.Is(err, errdef.ErrNotFound) {
		t.Fatalf("tag of a deleted manifest: %v", err)
	}
	if _, _, err := r.Manifest(ctx, string(put.Desc.Digest)); !errors.Is(err, errdef.ErrNotFound) {
		t.Fatalf("deleted manifest: %v", err)
	}
	verifyLayouts(t, s)
}

func TestPutManifestMissingBlobs(t *testing.T) {
	ctx := context.Background()
	s := openFS(t, t.TempDir(), Options{})
	r := repoOf(t, s, "r")
	put := testImage(t, r, nil)
	missing := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: digest.FromString("absent"), Size: 3}
	put.Requires = append(put.Requires, missing)
	err := r.PutManifest(ctx, put)
	var me *MissingBlobsError
	if !errors.As(err, &me) || len(me.Blobs) != 1 || me.Blobs[0].Digest != missing.Digest || !errors.Is(err, errdef.ErrNotFound) {
		t.Fatalf("err = %v, want the missing blob named", err)
	}
	// A blob of another repository is missing too.
	other := repoOf(t, s, "other")
	od := pushBytes(t, other, []byte("theirs"))
	put = testImage(t, r, nil)
	put.Requires = append(put.Requires, od)
	if err := r.PutManifest(ctx, put); !errors.As(err, &me) {
		t.Fatalf("a blob of another repository satisfied the manifest: %v", err)
	}
	// A wrong size is a size mismatch.
	put = testImage(t, r, nil)
	put.Requires[1].Size++
	if err := r.PutManifest(ctx, put); !errors.Is(err, errdef.ErrSizeMismatch) {
		t.Fatalf("err = %v, want size mismatch", err)
	}
}

func TestReferrers(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	s := openFS(t, root, Options{})
	r := repoOf(t, s, "r")
	subject := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromString("not pushed"), Size: 10}
	a := testImage(t, r, &subject)
	a.Desc.ArtifactType = "application/vnd.example.sbom"
	b := testImage(t, r, &subject)
	for _, p := range []ManifestPut{a, b, a} { // a twice: listed once
		if err := r.PutManifest(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	got, err := r.Referrers(ctx, subject.Digest, "")
	if err != nil || len(got) != 2 {
		t.Fatalf("referrers = %v, %v", got, err)
	}
	got, _ = r.Referrers(ctx, subject.Digest, "application/vnd.example.sbom")
	if len(got) != 1 || got[0].Digest != a.Desc.Digest {
		t.Fatalf("filtered referrers = %v", got)
	}
	// A fresh process finds them by reading the manifests.
	s.Close()
	s2 := openFS(t, root, Options{})
	r2 := repoOf(t, s2, "r")
	got, _ = r2.Referrers(ctx, subject.Digest, "")
	if len(got) != 2 || got[0].ArtifactType == "" {
		t.Fatalf("referrers after reopening = %+v", got)
	}
	if err := r2.DeleteManifest(ctx, b.Desc.Digest); err != nil {
		t.Fatal(err)
	}
	if got, _ = r2.Referrers(ctx, subject.Digest, ""); len(got) != 1 {
		t.Fatalf("referrers after delete = %v", got)
	}
}

// TestConcurrentTags has many clients tag one repository at once: none is
// lost, in memory or in index.json.
func TestConcurrentTags(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	s := openFS(t, root, Options{})
	r := repoOf(t, s, "r")
	put := testImage(t, r, nil)
	if err := r.PutManifest(ctx, put); err != nil {
		t.Fatal(err)
	}
	const n = 200
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := put
			p.Tags = []string{fmt.Sprintf("t%03d", i)}
			errs <- r.PutManifest(ctx, p)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	st, err := ocilayout.Open(context.Background(), filepath.Join(root, "r"))
	if err != nil {
		t.Fatal(err)
	}
	var onDisk []string
	st.Tags(ctx, func(tags []string) error { onDisk = append(onDisk, tags...); return nil })
	if len(onDisk) != n {
		t.Fatalf("index.json has %d tags, want %d", len(onDisk), n)
	}
}

// TestIndexSharedWithEmbeddedStore has the embedded store tag the layout
// while the registry has it open: neither loses the other's tags.
func TestIndexSharedWithEmbeddedStore(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	s := openFS(t, root, Options{})
	r := repoOf(t, s, "r")
	put := testImage(t, r, nil)
	put.Tags = []string{"mine"}
	if err := r.PutManifest(ctx, put); err != nil {
		t.Fatal(err)
	}
	st, err := ocilayout.Open(context.Background(), filepath.Join(root, "r"))
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Tag(ctx, put.Desc, "theirs"); err != nil {
		t.Fatal(err)
	}
	put.Tags = []string{"mine2"}
	if err := r.PutManifest(ctx, put); err != nil {
		t.Fatal(err)
	}
	var onDisk []string
	st.Tags(ctx, func(tags []string) error { onDisk = append(onDisk, tags...); return nil })
	if fmt.Sprint(onDisk) != "[mine mine2 theirs]" {
		t.Fatalf("index.json tags = %v", onDisk)
	}
	time.Sleep(1100 * time.Millisecond) // the mirror looks at the file at most once a second
	if tags, _ := r.Tags(ctx, "", -1); fmt.Sprint(tags) != "[mine mine2 theirs]" {
		t.Fatalf("registry tags = %v", tags)
	}
}

// TestUploadSurvivesRestart writes part of an upload, reopens the storage
// (as a restarted server would) and finishes it.
func TestUploadSurvivesRestart(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	s := openFS(t, root, Options{})
	data := randomBytes(3 << 20)
	u, err := s.NewUpload(ctx, "r", "")
	if err != nil {
		t.Fatal(err)
	}
	id := u.ID()
	if _, err := u.Append(ctx, bytes.NewReader(data[:1<<20]), 0, 1<<20); err != nil {
		t.Fatal(err)
	}
	u.Close()
	// Bytes written after the state was saved (a crash between the two)
	// are cut off on resume.
	f, _ := os.OpenFile(filepath.Join(root, stateDir, uploadsDir, id, uploadData), os.O_WRONLY|os.O_APPEND, 0)
	f.Write([]byte("torn write"))
	f.Close()
	s.Close()

	s2 := openFS(t, root, Options{})
	if _, err := s2.Upload(ctx, "other", id); !errors.Is(err, errdef.ErrNotFound) {
		t.Fatalf("upload resumed under another repository: %v", err)
	}
	u2, err := s2.Upload(ctx, "r", id)
	if err != nil {
		t.Fatal(err)
	}
	if u2.Offset() != 1<<20 {
		t.Fatalf("offset after restart = %d", u2.Offset())
	}
	if _, err := u2.Append(ctx, bytes.NewReader(data[1<<20:]), 0, -1); !errors.Is(err, ErrOutOfOrder) {
		t.Fatalf("out-of-order chunk: %v", err)
	}
	if _, err := u2.Append(ctx, bytes.NewReader(data[1<<20:]), 1<<20, int64(len(data)-1<<20)); err != nil {
		t.Fatal(err)
	}
	if _, err := u2.Commit(ctx, digest.FromBytes(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}
	u2.Close()
	r := repoOf(t, s2, "r")
	if _, err := r.StatBlob(ctx, digest.FromBytes(data)); err != nil {
		t.Fatal(err)
	}
	if _, err := s2.Upload(ctx, "r", id); !errors.Is(err, errdef.ErrNotFound) {
		t.Fatalf("finished upload still there: %v", err)
	}
}

func TestUploadSHA512AndMismatch(t *testing.T) {
	ctx := context.Background()
	s := openFS(t, t.TempDir(), Options{})
	data := randomBytes(1000)
	u, _ := s.NewUpload(ctx, "r", digest.SHA512)
	u.Append(ctx, bytes.NewReader(data), -1, -1)
	if _, err := u.Commit(ctx, digest.SHA512.FromBytes(data), -1); err != nil {
		t.Fatal(err)
	}
	u.Close()
	// A sha256 session finished with a sha512 digest re-hashes.
	u, _ = s.NewUpload(ctx, "r", "")
	u.Append(ctx, bytes.NewReader(data[:10]), -1, -1)
	if _, err := u.Commit(ctx, digest.SHA512.FromBytes(data[:10]), -1); err != nil {
		t.Fatal(err)
	}
	u.Close()
	u, _ = s.NewUpload(ctx, "r", "")
	u.Append(ctx, bytes.NewReader(data), -1, -1)
	if _, err := u.Commit(ctx, digest.FromString("other"), -1); !errors.Is(err, errdef.ErrDigestMismatch) {
		t.Fatalf("err = %v", err)
	}
	u.Close()
	r := repoOf(t, s, "r")
	if _, err := r.StatBlob(ctx, digest.FromString("other")); !errors.Is(err, errdef.ErrNotFound) {
		t.Fatal("a mismatched upload was stored")
	}
}

func TestExpireUploads(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	s := openFS(t, root, Options{UploadExpiry: time.Hour})
	u, _ := s.NewUpload(ctx, "r", "")
	id := u.ID()
	u.Close()
	u2, _ := s.NewUpload(ctx, "r", "")
	u2.Close()
	old := time.Now().Add(-2 * time.Hour)
	os.Chtimes(filepath.Join(root, stateDir, uploadsDir, id, uploadState), old, old)
	n, err := s.ExpireUploads(ctx)
	if err != nil || n != 1 {
		t.Fatalf("expired %d, %v", n, err)
	}
	if _, err := s.Upload(ctx, "r", id); !errors.Is(err, errdef.ErrNotFound) {
		t.Fatalf("expired upload: %v", err)
	}
	if u, err := s.Upload(ctx, "r", u2.ID()); err != nil {
		t.Fatalf("fresh upload removed: %v", err)
	} else {
		u.Close()
	}
}

func TestOpenLocksRoot(t *testing.T) {
	root := t.TempDir()
	openFS(t, root, Options{})
	if _, err := Open(context.Background(), root, Options{}); !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open: %v", err)
	}
	ro, err := Open(context.Background(), root, Options{ReadOnly: true})
	if err != nil {
		t.Fatalf("read-only Open beside a writer: %v", err)
	}
	ro.Close()
}

func TestRepositoriesAndReadOnly(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	s := openFS(t, root, Options{})
	for _, n := range []string{"b", "a/x", "a", "c/d/e"} {
		repoOf(t, s, n)
	}
	s.Close()
	s = openFS(t, root, Options{ReadOnly: true})
	names, _ := s.Repositories(ctx, "", -1)
	if fmt.Sprint(names) != "[a a/x b c/d/e]" {
		t.Fatalf("names = %v", names)
	}
	if names, _ := s.Repositories(ctx, "a/x", 1); fmt.Sprint(names) != "[b]" {
		t.Fatalf("page = %v", names)
	}
	if _, err := s.Repository(ctx, "new", true); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("create in read-only: %v", err)
	}
	r, _ := s.Repository(ctx, "a", false)
	if _, err := r.PushBlob(ctx, ocispec.Descriptor{Digest: digest.FromString("x"), Size: 1}, bytes.NewReader([]byte("x"))); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("push in read-only: %v", err)
	}
	if _, err := s.Repository(ctx, "a/blobs", true); !errors.Is(err, errdef.ErrInvalid) {
		t.Fatalf("reserved name: %v", err)
	}
}

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }

// TestUnknownRepositoriesForgotten: asking for repositories that do not
// exist leaves nothing behind.
func TestUnknownRepositoriesForgotten(t *testing.T) {
	s := openFS(t, t.TempDir(), Options{})
	for i := range 100 {
		if _, err := s.Repository(context.Background(), fmt.Sprintf("nope%d", i), false); !errors.Is(err, errdef.ErrNotFound) {
			t.Fatal(err)
		}
	}
	if len(s.repos) != 0 {
		t.Fatalf("%d repositories remembered", len(s.repos))
	}
}

// TestLiveUploads: sessions stay open between requests up to
// maxLiveUploads; past that they are closed and resumed from disk, and
// either way they finish with the right blob. A session kept open answers
// only in its own repository.
func TestLiveUploads(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	s := openFS(t, root, Options{})
	n := maxLiveUploads + 10
	ids := make([]string, n)
	for i := range ids {
		u, err := s.NewUpload(ctx, "r", "")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := u.Append(ctx, bytes.NewReader([]byte{byte(i), byte(i >> 8)}), 0, 2); err != nil {
			t.Fatal(err)
		}
		ids[i] = u.ID()
		if err := u.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if got := s.live.Load(); got != maxLiveUploads {
		t.Fatalf("%d sessions kept open, want %d", got, maxLiveUploads)
	}
	if _, err := s.Upload(ctx, "other", ids[0]); !errors.Is(err, errdef.ErrNotFound) {
		t.Fatalf("a live session answered in another repository: %v", err)
	}
	for i, id := range ids {
		u, err := s.Upload(ctx, "r", id)
		if err != nil {
			t.Fatalf("session %d: %v", i, err)
		}
		if u.Offset() != 2 {
			t.Fatalf("session %d at offset %d", i, u.Offset())
		}
		data := []byte{byte(i), byte(i >> 8), 'x'}
		if _, err := u.Append(ctx, bytes.NewReader(data[2:]), 2, 1); err != nil {
			t.Fatal(err)
		}
		if _, err := u.Commit(ctx, digest.FromBytes(data), 3); err != nil {
			t.Fatalf("session %d: %v", i, err)
		}
		u.Close()
	}
	if got := s.live.Load(); got != 0 {
		t.Fatalf("%d sessions still open after all finished", got)
	}
}

// TestUploadStateTrailingBytes: the state is rewritten in place, so a
// shorter state over a longer one leaves bytes after it; resuming reads
// the first JSON value and ignores them. A state that is not JSON at all
// fails to resume, and nothing is stored.
func TestUploadStateTrailingBytes(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	s := openFS(t, root, Options{})
	data := randomBytes(1 << 20)
	u, _ := s.NewUpload(ctx, "r", "")
	id := u.ID()
	if _, err := u.Append(ctx, bytes.NewReader(data[:1000]), 0, 1000); err != nil {
		t.Fatal(err)
	}
	u.Close()
	bad, _ := s.NewUpload(ctx, "r", "")
	badID := bad.ID()
	bad.Close()
	s.Close()
	state := func(id string) string { return filepath.Join(root, stateDir, uploadsDir, id, uploadState) }
	f, _ := os.OpenFile(state(id), os.O_WRONLY|os.O_APPEND, 0)
	f.Write([]byte(`"hashState":"AAAA"}`))
	f.Close()
	os.WriteFile(state(badID), []byte("\x00\x00\x00"), 0o644)

	s2 := openFS(t, root, Options{})
	u2, err := s2.Upload(ctx, "r", id)
	if err != nil {
		t.Fatal(err)
	}
	if u2.Offset() != 1000 {
		t.Fatalf("offset %d", u2.Offset())
	}
	if _, err := u2.Append(ctx, bytes.NewReader(data[1000:]), 1000, -1); err != nil {
		t.Fatal(err)
	}
	if _, err := u2.Commit(ctx, digest.FromBytes(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}
	u2.Close()
	if _, err := s2.Upload(ctx, "r", badID); !errors.Is(err, errdef.ErrInvalid) {
		t.Fatalf("a garbled state resumed: %v", err)
	}
}
