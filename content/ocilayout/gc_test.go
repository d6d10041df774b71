package ocilayout_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/lading-oci/lading/content/contenttest"
	"github.com/lading-oci/lading/content/ocilayout"
	"github.com/lading-oci/lading/errdef"
	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func gc(t *testing.T, s *ocilayout.Store, opts ocilayout.GCOptions) *ocilayout.GCReport {
	t.Helper()
	rep, err := s.GC(context.Background(), opts)
	if err != nil {
		t.Fatalf("gc: %v", err)
	}
	return rep
}

func present(t *testing.T, s *ocilayout.Store) []digest.Digest {
	t.Helper()
	var out []digest.Digest
	if err := s.Blobs(context.Background(), func(d ocispec.Descriptor) error { out = append(out, d.Digest); return nil }); err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

func TestGC(t *testing.T) {
	s := newLayout(t)
	ctx := context.Background()

	// Kept: a tagged image, a referrer of it and the referrer's referrer,
	// and an image reached through a tagged index.
	kept := pushImage(t, s, map[string]string{"kept": "1"})
	tag(t, s, kept.manifest, "kept")
	sig, sigBlob := pushArtifact(t, s, kept.manifest, "sig of kept")
	sigOfSig, sigOfSigBlob := pushArtifact(t, s, sig, "sig of sig")
	child := pushImage(t, s, map[string]string{"child": "1"})
	idx := pushJSON(t, s, ocispec.MediaTypeImageIndex, ocispec.Index{
		Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex,
		Manifests: []ocispec.Descriptor{withPlatform(child.manifest, "arm64")},
	})
	tag(t, s, idx, "index")

	// Removed: an untagged image, its referrer, a stray blob.
	gone := pushImage(t, s, map[string]string{"gone": "1"})
	goneSig, goneSigBlob := pushArtifact(t, s, gone.manifest, "sig of gone")
	strayData, stray := contenttest.Blob(t, 1000)
	contenttest.Push(t, s, stray, strayData)

	wantGone := []digest.Digest{gone.manifest.Digest, gone.config.Digest, gone.layers[0].Digest, goneSig.Digest, goneSigBlob.Digest, stray.Digest}
	slices.Sort(wantGone)
	var wantFreed int64
	for _, d := range []ocispec.Descriptor{gone.manifest, gone.config, gone.layers[0], goneSig, goneSigBlob, stray} {
		wantFreed += d.Size
	}
	wantKept := []digest.Digest{kept.manifest.Digest, kept.config.Digest, kept.layers[0].Digest, sig.Digest, sigBlob.Digest,
		sigOfSig.Digest, sigOfSigBlob.Digest, child.manifest.Digest, child.config.Digest, child.layers[0].Digest, idx.Digest,
		ocispec.DescriptorEmptyJSON.Digest}
	slices.Sort(wantKept)
	all := present(t, s)

	removed := func(rep *ocilayout.GCReport) []digest.Digest {
		var out []digest.Digest
		for _, r := range rep.Blobs {
			out = append(out, r.Digest)
		}
		return out
	}

	// A grace period keeps everything just written.
	rep := gc(t, s, ocilayout.GCOptions{MinBlobAge: time.Hour})
	if len(rep.Blobs) != 0 || !slices.Equal(present(t, s), all) {
		t.Fatalf("gc with a grace period removed %v", removed(rep))
	}

	rep = gc(t, s, ocilayout.GCOptions{DryRun: true})
	if !slices.Equal(removed(rep), wantGone) || rep.FreedBytes != wantFreed {
		t.Fatalf("dry run would remove %v (%d bytes), want %v (%d bytes)", removed(rep), rep.FreedBytes, wantGone, wantFreed)
	}
	if !slices.Equal(present(t, s), all) {
		t.Fatal("dry run removed blobs")
	}

	rep = gc(t, s, ocilayout.GCOptions{})
	if !slices.Equal(removed(rep), wantGone) || rep.FreedBytes != wantFreed || rep.Kept != len(wantKept) {
		t.Fatalf("gc removed %v (%d bytes, kept %d), want %v (%d bytes, kept %d)", removed(rep), rep.FreedBytes, rep.Kept, wantGone, wantFreed, len(wantKept))
	}
	if got := present(t, s); !slices.Equal(got, wantKept) {
		t.Fatalf("after gc the store holds %v, want %v", got, wantKept)
	}
	if vr := verify(t, s); !vr.OK() {
		t.Fatalf("layout broken by gc:\n%v", vr.Err())
	}

	// Untagging makes the image and its referrers garbage.
	if err := s.Untag(ctx, "kept"); err != nil {
		t.Fatal(err)
	}
	rep = gc(t, s, ocilayout.GCOptions{})
	if len(rep.Blobs) != 8 {
		t.Fatalf("gc after untag removed %d blobs, want 8 (image, two referrers, their blobs, the empty config)", len(rep.Blobs))
	}
}

func TestGCIngests(t *testing.T) {
	s := newLayout(t)
	ctx := context.Background()
	data, _ := contenttest.Blob(t, 5000)

	stale, err := s.Ingest(ctx, "stale")
	if err != nil {
		t.Fatal(err)
	}
	stale.Write(data)
	stale.Close()
	live, err := s.Ingest(ctx, "live")
	if err != nil {
		t.Fatal(err)
	}
	live.Write(data[:100])
	defer live.Abort(ctx)
	// An abandoned temporary file of a push and of an index update.
	os.WriteFile(filepath.Join(s.Dir(), "ingest", ".push-123"), data[:10], 0o644)
	os.WriteFile(filepath.Join(s.Dir(), ".index.json-1.tmp"), []byte("{"), 0o644)

	rep := gc(t, s, ocilayout.GCOptions{IngestMinAge: time.Hour})
	if len(rep.Ingests) != 1 || rep.Ingests[0].Name != ".index.json-1.tmp" {
		t.Fatalf("gc with a minimum ingest age removed %+v, want only the index temporary file", rep.Ingests)
	}
	rep = gc(t, s, ocilayout.GCOptions{DryRun: true})
	if len(rep.Ingests) != 2 {
		t.Fatalf("dry run lists %+v", rep.Ingests)
	}
	if _, err := os.Stat(filepath.Join(s.Dir(), "ingest", "stale", "data")); err != nil {
		t.Fatalf("dry run removed an ingest: %v", err)
	}
	rep = gc(t, s, ocilayout.GCOptions{})
	var names []string
	for _, r := range rep.Ingests {
		names = append(names, r.Name)
	}
	slices.Sort(names)
	if !slices.Equal(names, []string{".push-123", "stale"}) || rep.FreedBytes != 5010 {
		t.Fatalf("gc removed ingests %v (%d bytes), want .push-123 and stale (5010 bytes)", names, rep.FreedBytes)
	}
	// The live writer goes on.
	live.Write(data[100:])
	desc := contenttest.Describe("", data)
	if _, err := live.Commit(ctx, desc.Size, desc.Digest); err != nil {
		t.Fatalf("commit of the live ingest after gc: %v", err)
	}
	w, err := s.Ingest(ctx, "stale")
	if err != nil || w.Offset() != 0 {
		t.Fatalf("stale ingest survived gc: %v offset %d", err, w.Offset())
	}
	w.Abort(ctx)
}

func TestGCRefusesUnreadableManifest(t *testing.T) {
	s := newLayout(t)
	bad := []byte(`{"schemaVersion":2,"layers":[`)
	d := contenttest.Describe(ocispec.MediaTypeImageManifest, bad)
	contenttest.Push(t, s, d, bad)
	tag(t, s, d, "bad")
	data, stray := contenttest.Blob(t, 10)
	contenttest.Push(t, s, stray, data)
	if _, err := s.GC(context.Background(), ocilayout.GCOptions{}); !errors.Is(err, errdef.ErrInvalid) {
		t.Fatalf("gc with a tagged manifest it cannot parse: %v, want ErrInvalid", err)
	}
	if ok, _ := s.Exists(context.Background(), stray); !ok {
		t.Fatal("a failed gc removed blobs")
	}
}

// TestGCWaitsForWriters checks that GC does not collect the untagged blobs
// of another Store that has written to the layout and not closed, and
// that it does once that Store is closed.
func TestGCWaitsForWriters(t *testing.T) {
	ctx := context.Background()
	a := newLayout(t)
	b, err := ocilayout.Open(context.Background(), a.Dir())
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	untagged := pushJSON(t, a, ocispec.MediaTypeImageConfig, map[string]string{"about": "to be tagged"})

	if _, err := b.GC(ctx, ocilayout.GCOptions{}); !errors.Is(err, errdef.ErrUnavailable) {
		t.Fatalf("gc with another writer active: err = %v, want ErrUnavailable", err)
	}
	if rep := gc(t, b, ocilayout.GCOptions{DryRun: true}); len(rep.Blobs) != 1 {
		t.Errorf("dry run lists %d blobs, want the untagged one", len(rep.Blobs))
	}
	if rep := gc(t, b, ocilayout.GCOptions{MinBlobAge: time.Hour}); len(rep.Blobs) != 0 {
		t.Errorf("gc with a minimum age removed %+v", rep.Blobs)
	}
	if ok, _ := a.Exists(ctx, untagged); !ok {
		t.Fatal("the writer's blob is gone")
	}

	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if rep := gc(t, b, ocilayout.GCOptions{}); len(rep.Blobs) != 1 || rep.Blobs[0].Digest != untagged.Digest {
		t.Errorf("gc once the writer closed removed %+v, want the untagged blob", rep.Blobs)
	}
	// A closed Store can write again, and its own writes never block its
	// own GC.
	again := pushJSON(t, a, ocispec.MediaTypeImageConfig, map[string]string{"about": "again"})
	if rep := gc(t, a, ocilayout.GCOptions{}); len(rep.Blobs) != 1 || rep.Blobs[0].Digest != again.Digest {
		t.Errorf("gc by the writer itself removed %+v", rep.Blobs)
	}
}

// TestPushOfPresentBlobDoesNotHoldGCOff checks that a Store whose pushes all
// found their blobs present (no write) does not count as a writer: GC in
// another Store runs.
func TestPushOfPresentBlobDoesNotHoldGCOff(t *testing.T) {
	ctx := context.Background()
	a := newLayout(t)
	blob := pushJSON(t, a, ocispec.MediaTypeImageConfig, map[string]string{"present": "yes"})
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := ocilayout.Open(context.Background(), a.Dir())
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	data, err := os.ReadFile(filepath.Join(a.Dir(), "blobs", "sha256", blob.Digest.Encoded()))
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Push(ctx, blob, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	if rep := gc(t, a, ocilayout.GCOptions{}); len(rep.Blobs) != 1 {
		t.Fatalf("gc after a no-op push elsewhere removed %+v, want the unreferenced blob", rep.Blobs)
	}
}
