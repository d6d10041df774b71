package dockerarchive_test

import (
	"archive/tar"
	"bytes"
	"context"
	"math/rand"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/lading-oci/lading/content/contenttest"
	"github.com/lading-oci/lading/content/dockerarchive"
	"github.com/lading-oci/lading/content/ocilayout"
	"github.com/lading-oci/lading/internal/testutil"
	"github.com/lading-oci/lading/layer"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// gzipLayout writes an image of n gzip layers, each a tar of about size
// bytes of half-compressible data, into a new layout tagged "t".
func gzipLayout(tb testing.TB, n int, size int) (string, ocispec.Descriptor) {
	tb.Helper()
	dir := filepath.Join(tb.TempDir(), "layout")
	s, err := ocilayout.Init(context.Background(), dir)
	if err != nil {
		tb.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	rng := rand.New(rand.NewSource(1))
	var layers []ocispec.Descriptor
	var diffIDs []digest.Digest
	for i := 0; i < n; i++ {
		var raw bytes.Buffer
		tw := tar.NewWriter(&raw)
		for f := 0; f < size/(1<<20); f++ {
			body := make([]byte, 1<<20)
			for j := range body {
				body[j] = byte('a' + rng.Intn(16))
			}
			tw.WriteHeader(&tar.Header{Name: filepath.Join("d", string(rune('a'+i)), string(rune('a'+f%26))+string(rune('a'+f/26))), Mode: 0o644, Size: int64(len(body))})
			tw.Write(body)
		}
		tw.Close()
		var gz bytes.Buffer
		zw, _ := layer.Compress(&gz, layer.Gzip)
		zw.Write(raw.Bytes())
		zw.Close()
		d := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: digest.FromBytes(gz.Bytes()), Size: int64(gz.Len())}
		if err := s.Push(ctx, d, bytes.NewReader(gz.Bytes())); err != nil {
			tb.Fatal(err)
		}
		layers = append(layers, d)
		diffIDs = append(diffIDs, digest.FromBytes(raw.Bytes()))
	}
	return dir, contenttest.PushManifest(tb, s, layers, diffIDs, "t")
}

// copyToArchive copies image md of layout dir into a new docker-archive.
func copyToArchive(tb testing.TB, dir string, md ocispec.Descriptor, out string) {
	tb.Helper()
	ctx := context.Background()
	src, err := ocilayout.Open(context.Background(), dir)
	if err != nil {
		tb.Fatal(err)
	}
	w, err := dockerarchive.Create(ctx, out)
	if err != nil {
		tb.Fatal(err)
	}
	contenttest.CopyImage(tb, src, md, w, "example.com/bench:t")
}

func BenchmarkCopyGzipImageToArchive(b *testing.B) {
	const size = 32 << 20
	dir, md := gzipLayout(b, 3, size)
	out := filepath.Join(b.TempDir(), "out.tar")
	b.SetBytes(3 * size) // uncompressed bytes written
	for b.Loop() {
		copyToArchive(b, dir, md, out)
	}
}

func BenchmarkReadArchive(b *testing.B) {
	const size = 32 << 20
	dir, md := gzipLayout(b, 3, size)
	out := filepath.Join(b.TempDir(), "out.tar")
	copyToArchive(b, dir, md, out)
	ctx := context.Background()
	b.SetBytes(3 * size)
	for b.Loop() {
		r, err := dockerarchive.Open(ctx, out)
		if err != nil {
			b.Fatal(err)
		}
		d, err := r.Image(ctx, 0)
		if err != nil {
			b.Fatal(err)
		}
		contenttest.ReadLayers(b, r, d)
		r.Close()
	}
}

// TestCompareSkopeo times writing a 3-layer gzip image (3 x 64 MiB of
// tar) as a docker-archive with lading and with skopeo, alternating, and
// logs medians and the ratio. It runs only with LADING_COMPARE=1.
func TestCompareSkopeo(t *testing.T) {
	if os.Getenv("LADING_COMPARE") == "" {
		t.Skip("set LADING_COMPARE=1 to time lading against skopeo")
	}
	skopeo := testutil.Tool(t, "skopeo")
	dir, md := gzipLayout(t, 3, 64<<20)
	tmp := t.TempDir()
	var ours, theirs []time.Duration
	for i := 0; i < 5; i++ {
		start := time.Now()
		copyToArchive(t, dir, md, filepath.Join(tmp, "ours.tar"))
		ours = append(ours, time.Since(start))
		start = time.Now()
		testutil.Run(t, skopeo, "copy", "-q", "oci:"+dir+":t", "docker-archive:"+filepath.Join(tmp, "theirs.tar")+":example.com/bench:t")
		theirs = append(theirs, time.Since(start))
		os.Remove(filepath.Join(tmp, "theirs.tar"))
	}
	med := testutil.Median
	t.Logf("layout (gzip) -> docker-archive (192 MiB of tar): lading %v, skopeo %v, ratio %.2f", med(ours), med(theirs), float64(med(ours))/float64(med(theirs)))
}
