package storage

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/lading-oci/lading/content/ocilayout"
	"github.com/lading-oci/lading/errdef"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func TestGCRemovesUnreferenced(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	s := openFS(t, root, Options{})
	r := repoOf(t, s, "r")
	keep := testImage(t, r, nil)
	keep.Tags = []string{"keep"}
	drop := testImage(t, r, nil)
	drop.Tags = []string{"drop"}
	for _, p := range []ManifestPut{keep, drop} {
		if err := r.PutManifest(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.DeleteManifest(ctx, drop.Desc.Digest); err != nil {
		t.Fatal(err)
	}
	dry, err := s.GC(ctx, GCOptions{DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(dry.Links) != 2 || !exists(r.(*fsRepo).blobPath(drop.Requires[0].Digest)) {
		t.Fatalf("dry run: %+v", dry)
	}
	rep, err := s.GC(ctx, GCOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// The config and the layer leave the repository; their shared copies
	// go, with the deleted manifest's (whose link went with it).
	if len(rep.Links) != 2 || len(rep.Blobs) != 3 || len(rep.Problems) != 0 {
		t.Fatalf("report: %+v", rep)
	}
	for _, d := range drop.Requires {
		if exists(r.(*fsRepo).blobPath(d.Digest)) || exists(s.sharedPath(d.Digest)) {
			t.Fatalf("%s survived", d.Digest)
		}
	}
	for _, d := range append(keep.Requires, keep.Desc) {
		if !exists(r.(*fsRepo).blobPath(d.Digest)) || !exists(s.sharedPath(d.Digest)) {
			t.Fatalf("referenced %s removed", d.Digest)
		}
	}
	verifyLayouts(t, s)
}

// TestGCFenceKeepsPushInFlight: blobs uploaded without their manifest yet
// survive a collection with no grace, and the manifest then succeeds.
func TestGCFenceKeepsPushInFlight(t *testing.T) {
	ctx := context.Background()
	s := openFS(t, t.TempDir(), Options{})
	r := repoOf(t, s, "r")
	put := testImage(t, r, nil)
	rep, err := s.GC(ctx, GCOptions{Grace: 0})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Links) != 0 || rep.Kept != 2 {
		t.Fatalf("in-flight blobs collected: %+v", rep)
	}
	if err := r.PutManifest(ctx, put); err != nil {
		t.Fatal(err)
	}
}

// TestGCFenceHeadPins: a blob left unreferenced (its manifest deleted, so
// no pin protects it) is found by a HEAD of a new push; the collection that
// follows keeps it, and the push's manifest succeeds. Without the fence
// this is the MANIFEST_BLOB_UNKNOWN of registries that collect online.
func TestGCFenceHeadPins(t *testing.T) {
	ctx := context.Background()
	s := openFS(t, t.TempDir(), Options{})
	r := repoOf(t, s, "r")
	put := testImage(t, r, nil)
	if err := r.PutManifest(ctx, put); err != nil {
		t.Fatal(err)
	}
	if err := r.DeleteManifest(ctx, put.Desc.Digest); err != nil {
		t.Fatal(err)
	}
	// The blobs are unreferenced and their pins committed: collectable.
	for _, d := range put.Requires {
		if _, err := r.StatBlob(ctx, d.Digest); err != nil { // the new push asks
			t.Fatal(err)
		}
	}
	rep, err := s.GC(ctx, GCOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Links) != 0 || len(rep.Blobs) != 1 { // only the deleted manifest's own blob goes
		t.Fatalf("report: %+v", rep)
	}
	if err := r.PutManifest(ctx, put); err != nil {
		t.Fatalf("manifest after HEAD and GC: %v", err)
	}
}

// TestGCPushWindowExpires: a pin older than the push window protects
// nothing.
func TestGCPushWindowExpires(t *testing.T) {
	ctx := context.Background()
	s := openFS(t, t.TempDir(), Options{PushWindow: time.Hour})
	r := repoOf(t, s, "r")
	s.fence.now = func() time.Time { return time.Now().Add(-2 * time.Hour) }
	put := testImage(t, r, nil)
	s.fence.now = time.Now
	rep, err := s.GC(ctx, GCOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Links) != 2 {
		t.Fatalf("abandoned push kept: %+v", rep)
	}
	var me *MissingBlobsError
	if err := r.PutManifest(ctx, put); !errors.As(err, &me) {
		t.Fatalf("manifest of collected blobs: %v", err)
	}
}

// TestGCPinsSurviveRestart: the journal brings pins back.
func TestGCPinsSurviveRestart(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	s := openFS(t, root, Options{})
	put := testImage(t, repoOf(t, s, "r"), nil)
	s.Close()
	s2 := openFS(t, root, Options{})
	rep, err := s2.GC(ctx, GCOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Links) != 0 {
		t.Fatalf("pins lost across a restart: %+v", rep)
	}
	if err := repoOf(t, s2, "r").PutManifest(ctx, put); err != nil {
		t.Fatal(err)
	}
}

func TestGCGraceKeepsRecent(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	s := openFS(t, root, Options{})
	r := repoOf(t, s, "r")
	// A blob that reached the layout without the fence (another tool).
	blob := filepath.Join(root, "r", "blobs", "sha256", digest.FromString("x").Encoded())
	os.MkdirAll(filepath.Dir(blob), 0o755)
	os.WriteFile(blob, []byte("x"), 0o644)
	rep, _ := s.GC(ctx, GCOptions{Grace: time.Hour})
	if len(rep.Links) != 0 || !exists(blob) {
		t.Fatalf("grace did not keep a recent blob: %+v", rep)
	}
	rep, _ = s.GC(ctx, GCOptions{})
	if len(rep.Links) != 1 || exists(blob) {
		t.Fatalf("unprotected blob kept: %+v", rep)
	}
	_ = r
}

// TestGCSkipsLayoutWithWriter: a writer of the embedded store holds the
// layout; its untagged blobs are left alone.
func TestGCSkipsLayoutWithWriter(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	s := openFS(t, root, Options{})
	repoOf(t, s, "r")
	st, err := ocilayout.Open(context.Background(), filepath.Join(root, "r"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	data := []byte("written by another tool")
	desc := ocispec.Descriptor{Digest: digest.FromBytes(data), Size: int64(len(data))}
	if err := st.Push(ctx, desc, bytesReader(data)); err != nil {
		t.Fatal(err)
	}
	rep, _ := s.GC(ctx, GCOptions{})
	if len(rep.Problems) != 1 || !exists(filepath.Join(root, "r", "blobs", "sha256", desc.Digest.Encoded())) {
		t.Fatalf("report: %+v", rep)
	}
	st.Close()
	rep, _ = s.GC(ctx, GCOptions{})
	if len(rep.Links) != 1 {
		t.Fatalf("after the writer closed: %+v", rep)
	}
}

func TestGCExpiresUploads(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	s := openFS(t, root, Options{UploadExpiry: time.Minute})
	u, _ := s.NewUpload(ctx, "r", "")
	id := u.ID()
	u.Close()
	old := time.Now().Add(-time.Hour)
	os.Chtimes(filepath.Join(root, stateDir, uploadsDir, id, uploadState), old, old)
	rep, err := s.GC(ctx, GCOptions{})
	if err != nil || rep.Uploads != 1 {
		t.Fatalf("report %+v, %v", rep, err)
	}
	if _, err := s.Upload(ctx, "r", id); !errors.Is(err, errdef.ErrNotFound) {
		t.Fatal("expired upload kept")
	}
}

// BenchmarkTag measures pointing a tag at a manifest in a repository that
// has 10,000 tags: the in-memory index is changed and index.json rewritten
// (concurrent changes share one rewrite).
func BenchmarkTag(b *testing.B) {
	for _, sync := range []bool{false, true} {
		b.Run(fmt.Sprintf("fsync=%v", sync), func(b *testing.B) {
			ctx := context.Background()
			s, err := Open(ctx, b.TempDir(), Options{NoSync: !sync})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			r, _ := s.repo(ctx, "r", true)
			put := testImage(b, r, nil)
			if err := r.PutManifest(ctx, put); err != nil {
				b.Fatal(err)
			}
			var ops []pendingOp
			for i := range 10000 {
				ops = append(ops, pendingOp{kind: opTag, tag: fmt.Sprintf("tag-%05d", i), desc: put.Desc})
			}
			if err := r.change(ctx, ops...); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			b.SetParallelism(4)
			var n int64
			var mu = make(chan struct{}, 1)
			mu <- struct{}{}
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					<-mu
					n++
					i := n
					mu <- struct{}{}
					if err := r.change(ctx, pendingOp{kind: opTag, tag: fmt.Sprintf("new-%d", i), desc: put.Desc}); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// TestPinsPrunedWithoutGC: where garbage is never collected, expiring
// uploads still forgets committed pins and rewrites the journal.
func TestPinsPrunedWithoutGC(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	s := openFS(t, root, Options{})
	r := repoOf(t, s, "r")
	for range 5 {
		put := testImage(t, r, nil)
		if err := r.PutManifest(ctx, put); err != nil {
			t.Fatal(err)
		}
	}
	pins := func() int {
		n := 0
		for i := range s.fence.shards {
			n += len(s.fence.shards[i].pins)
		}
		return n
	}
	if pins() == 0 {
		t.Fatal("no pins recorded")
	}
	if _, err := s.ExpireUploads(ctx); err != nil {
		t.Fatal(err)
	}
	if n := pins(); n != 0 {
		t.Fatalf("%d pins left", n)
	}
	if fi, err := os.Stat(filepath.Join(root, stateDir, pinsFile)); err != nil || fi.Size() != 0 {
		t.Fatalf("journal not compacted: %v %v", fi.Size(), err)
	}
	// A push in flight keeps its pin.
	testImage(t, r, nil)
	s.ExpireUploads(ctx)
	if pins() != 2 {
		t.Fatalf("in-flight pins: %d", pins())
	}
}
