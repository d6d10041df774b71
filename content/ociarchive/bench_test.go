package ociarchive_test

import (
	"context"
	"crypto/rand"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/lading-oci/lading/content"
	"github.com/lading-oci/lading/content/contenttest"
	"github.com/lading-oci/lading/content/ociarchive"
	"github.com/lading-oci/lading/content/ocilayout"
	"github.com/lading-oci/lading/internal/testutil"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// bigLayout writes an image of n layers of size bytes each (random, so
// nothing compresses) into a new layout tagged "t".
func bigLayout(tb testing.TB, n int, size int64) (string, ocispec.Descriptor) {
	tb.Helper()
	dir := filepath.Join(tb.TempDir(), "layout")
	s, err := ocilayout.Init(context.Background(), dir)
	if err != nil {
		tb.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	var layers []ocispec.Descriptor
	var diffIDs []digest.Digest
	for i := 0; i < n; i++ {
		w, err := s.Ingest(ctx, "")
		if err != nil {
			tb.Fatal(err)
		}
		h := digest.SHA256.Digester()
		if _, err := io.CopyN(io.MultiWriter(w, h.Hash()), rand.Reader, size); err != nil {
			tb.Fatal(err)
		}
		d, err := w.Commit(ctx, size, h.Digest())
		if err != nil {
			tb.Fatal(err)
		}
		d.MediaType = ocispec.MediaTypeImageLayerGzip
		layers = append(layers, d)
		diffIDs = append(diffIDs, d.Digest)
	}
	return dir, contenttest.PushManifest(tb, s, layers, diffIDs, "t")
}

// copyToArchive copies the image md of layout dir into a new archive.
func copyToArchive(tb testing.TB, dir string, md ocispec.Descriptor, out string) {
	tb.Helper()
	ctx := context.Background()
	src, err := ocilayout.Open(context.Background(), dir)
	if err != nil {
		tb.Fatal(err)
	}
	w, err := ociarchive.Create(ctx, out)
	if err != nil {
		tb.Fatal(err)
	}
	contenttest.CopyImage(tb, src, md, w, "t")
}

func BenchmarkCopyToArchive(b *testing.B) {
	const size = 32 << 20
	dir, md := bigLayout(b, 3, size)
	out := filepath.Join(b.TempDir(), "out.tar")
	b.SetBytes(3 * size)
	for b.Loop() {
		copyToArchive(b, dir, md, out)
	}
}

func BenchmarkReadArchive(b *testing.B) {
	const size = 32 << 20
	dir, md := bigLayout(b, 3, size)
	out := filepath.Join(b.TempDir(), "out.tar")
	copyToArchive(b, dir, md, out)
	ctx := context.Background()
	b.SetBytes(3 * size)
	for b.Loop() {
		r, err := ociarchive.Open(ctx, out)
		if err != nil {
			b.Fatal(err)
		}
		contenttest.ReadLayers(b, r, md)
		r.Close()
	}
}

// TestCompareSkopeo times writing and reading a 3 x 64 MiB image as an
// oci-archive with lading and with skopeo, alternating, and logs medians
// and ratios. It runs only with LADING_COMPARE=1.
func TestCompareSkopeo(t *testing.T) {
	if os.Getenv("LADING_COMPARE") == "" {
		t.Skip("set LADING_COMPARE=1 to time lading against skopeo")
	}
	skopeo := testutil.Tool(t, "skopeo")
	dir, md := bigLayout(t, 3, 64<<20)
	tmp := t.TempDir()
	var ours, theirs, oursRead, theirsRead []time.Duration
	for i := 0; i < 5; i++ {
		out := filepath.Join(tmp, "ours.tar")
		start := time.Now()
		copyToArchive(t, dir, md, out)
		ours = append(ours, time.Since(start))

		start = time.Now()
		testutil.Run(t, skopeo, "copy", "-q", "oci:"+dir+":t", "oci-archive:"+filepath.Join(tmp, "theirs.tar")+":t")
		theirs = append(theirs, time.Since(start))

		start = time.Now()
		copyFromArchive(t, out, md, filepath.Join(tmp, "back-ours"))
		oursRead = append(oursRead, time.Since(start))

		start = time.Now()
		testutil.Run(t, skopeo, "copy", "-q", "oci-archive:"+out+":t", "oci:"+filepath.Join(tmp, "back-theirs")+":t")
		theirsRead = append(theirsRead, time.Since(start))
		for _, p := range []string{"theirs.tar", "back-ours", "back-theirs"} {
			os.RemoveAll(filepath.Join(tmp, p))
		}
	}
	med := testutil.Median
	t.Logf("layout -> oci-archive (192 MiB): lading %v, skopeo %v, ratio %.2f", med(ours), med(theirs), float64(med(ours))/float64(med(theirs)))
	t.Logf("oci-archive -> layout (192 MiB): lading %v, skopeo %v, ratio %.2f", med(oursRead), med(theirsRead), float64(med(oursRead))/float64(med(theirsRead)))
}

// copyFromArchive copies the image md of archive path into a new layout.
func copyFromArchive(tb testing.TB, path string, md ocispec.Descriptor, dir string) {
	tb.Helper()
	ctx := context.Background()
	r, err := ociarchive.Open(ctx, path)
	if err != nil {
		tb.Fatal(err)
	}
	defer r.Close()
	dst, err := ocilayout.Init(context.Background(), dir)
	if err != nil {
		tb.Fatal(err)
	}
	defer dst.Close()
	err = content.WalkGraph(ctx, r, []ocispec.Descriptor{md}, func(ctx context.Context, d ocispec.Descriptor) error {
		return content.Copy(ctx, r, dst, d)
	})
	if err == nil {
		err = dst.Tag(ctx, md, "t")
	}
	if err != nil {
		tb.Fatal(err)
	}
}
