package client

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"

	"github.com/lading-oci/lading/content"
	"github.com/lading-oci/lading/content/ocilayout"
	"github.com/lading-oci/lading/ref"
)

// blobServer serves one blob from memory and takes uploads into io.Discard:
// the client's own cost, without a registry's.
func blobServer(b *testing.B, data []byte) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/v2/":
		case r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/"):
			w.Header().Set("Content-Length", strconv.Itoa(len(data)))
			w.Write(data)
		case r.Method == http.MethodHead:
			w.WriteHeader(http.StatusNotFound)
		case r.Method == http.MethodPost:
			w.Header().Set("Location", "/v2/b/blobs/uploads/1")
			w.WriteHeader(http.StatusAccepted)
		case r.Method == http.MethodPut:
			io.Copy(io.Discard, r.Body)
			w.WriteHeader(http.StatusCreated)
		}
	}))
	b.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

func benchRepo(b *testing.B, host string, opts ...Option) *Repository {
	c, err := New(opts...)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	r, err := c.Repository(host, "b")
	if err != nil {
		b.Fatal(err)
	}
	return r
}

// BenchmarkFetchBlob streams a 64 MiB blob through Fetch, verified.
func BenchmarkFetchBlob(b *testing.B) {
	data := make([]byte, 64<<20)
	rand.Read(data)
	desc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: digest.FromBytes(data), Size: int64(len(data))}
	for _, verify := range []bool{true, false} {
		b.Run(fmt.Sprintf("verify=%v", verify), func(b *testing.B) {
			repo := benchRepo(b, blobServer(b, data), WithVerifyOnFetch(verify))
			buf := make([]byte, 1<<20)
			b.SetBytes(desc.Size)
			for b.Loop() {
				rc, err := repo.Fetch(context.Background(), desc)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := io.CopyBuffer(io.Discard, rc, buf); err != nil {
					b.Fatal(err)
				}
				rc.Close()
			}
		})
	}
}

// BenchmarkPushBlob uploads a 64 MiB blob from a file (sent by the kernel)
// and from a stream.
func BenchmarkPushBlob(b *testing.B) {
	data := make([]byte, 64<<20)
	rand.Read(data)
	desc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: digest.FromBytes(data), Size: int64(len(data))}
	path := b.TempDir() + "/blob"
	if err := os.WriteFile(path, data, 0o644); err != nil {
		b.Fatal(err)
	}
	repo := benchRepo(b, blobServer(b, data))
	b.Run("file", func(b *testing.B) {
		b.SetBytes(desc.Size)
		for b.Loop() {
			f, _ := os.Open(path)
			if err := repo.Push(context.Background(), desc, f); err != nil {
				b.Fatal(err)
			}
			f.Close()
		}
	})
	b.Run("stream", func(b *testing.B) {
		b.SetBytes(desc.Size)
		for b.Loop() {
			if err := repo.Push(context.Background(), desc, io.MultiReader(bytes.NewReader(data))); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestBenchCopy is the driver bench/registry.sh times when the lading CLI
// has no copy command: it copies an image between an OCI layout and a
// registry as a copy would (blobs four at a time, then the manifest).
// It runs only when LADING_BENCH_COPY is set, to
//
//	push LAYOUT TAG HOST/REPO:TAG
//	pull HOST/REPO:TAG LAYOUT TAG
func TestBenchCopy(t *testing.T) {
	spec := os.Getenv("LADING_BENCH_COPY")
	if spec == "" {
		t.Skip("LADING_BENCH_COPY is not set: this is bench/registry.sh's driver")
	}
	args := strings.Fields(spec)
	if len(args) != 4 {
		t.Fatalf("LADING_BENCH_COPY=%q: want push LAYOUT TAG REF or pull REF LAYOUT TAG", spec)
	}
	ctx := context.Background()
	opts := []Option{WithVerifyOnFetch(false)} // the layout verifies what it stores
	if os.Getenv("LADING_BENCH_LOG") != "" {
		opts = append(opts, WithLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))))
	}
	c, err := New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	switch args[0] {
	case "push":
		st, err := ocilayout.Open(ctx, args[1])
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		r, err := ref.Parse(args[3])
		if err != nil {
			t.Fatal(err)
		}
		repo, err := c.RepositoryOf(r)
		if err != nil {
			t.Fatal(err)
		}
		root, err := st.Resolve(ctx, args[2])
		if err != nil {
			t.Fatal(err)
		}
		if err := copyImage(ctx, st, repo, root); err != nil {
			t.Fatal(err)
		}
		if err := repo.Tag(ctx, root, r.Tag()); err != nil {
			t.Fatal(err)
		}
	case "pull":
		r, err := ref.Parse(args[1])
		if err != nil {
			t.Fatal(err)
		}
		repo, err := c.RepositoryOf(r)
		if err != nil {
			t.Fatal(err)
		}
		st, err := ocilayout.Init(ctx, args[2])
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		root, err := repo.Resolve(ctx, r.Tag())
		if err != nil {
			t.Fatal(err)
		}
		if err := copyImage(ctx, repo, st, root); err != nil {
			t.Fatal(err)
		}
		if err := st.Tag(ctx, root, args[3]); err != nil {
			t.Fatal(err)
		}
	default:
		t.Fatalf("unknown mode %q", args[0])
	}
}

// copyImage copies root's graph from src to dst: the leaves four at a
// time, then the manifests, children before parents.
func copyImage(ctx context.Context, src content.Fetcher, dst content.Storage, root ocispec.Descriptor) error {
	var manifests []ocispec.Descriptor
	var blobs []ocispec.Descriptor
	err := content.WalkGraph(ctx, src, []ocispec.Descriptor{root}, func(ctx context.Context, d ocispec.Descriptor) error {
		if isManifestType(d.MediaType) {
			manifests = append(manifests, d)
			return nil
		}
		blobs = append(blobs, d)
		return content.ErrSkip
	})
	if err != nil {
		return err
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(4)
	for _, d := range blobs {
		g.Go(func() error { return content.Copy(gctx, src, dst, d) })
	}
	if err := g.Wait(); err != nil {
		return err
	}
	for i := len(manifests) - 1; i >= 0; i-- {
		if err := content.Copy(ctx, src, dst, manifests[i]); err != nil {
			return err
		}
	}
	return nil
}
