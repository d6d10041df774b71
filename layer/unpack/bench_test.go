//go:build linux

package unpack

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"testing"

	"github.com/lading-oci/lading/layer"
)

// writeBenchLayer writes a gzip'd layer of about files regular files (sizes
// from a few bytes to a few MiB, compressible like binaries) in nested
// directories, with some symlinks, and returns its uncompressed size.
func writeBenchLayer(b *testing.B, path string, files int) int64 {
	b.Helper()
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	zw, err := layer.Compress(f, layer.Gzip)
	if err != nil {
		b.Fatal(err)
	}
	cw := &countWriter{w: zw}
	tw := tar.NewWriter(cw)
	rng := rand.New(rand.NewSource(42))
	// A pool of "words" gives data that gzip compresses about 3:1.
	words := make([][]byte, 512)
	for i := range words {
		w := make([]byte, 2+rng.Intn(10))
		rng.Read(w)
		words[i] = w
	}
	body := make([]byte, 8<<20)
	for n := 0; n < len(body); {
		n += copy(body[n:], words[rng.Intn(len(words))])
	}
	dirs := []string{"usr"}
	tw.WriteHeader(&tar.Header{Name: "usr/", Typeflag: tar.TypeDir, Mode: 0o755})
	for i := 0; i < files; i++ {
		if i%25 == 0 {
			d := fmt.Sprintf("%s/d%d", dirs[rng.Intn(len(dirs))], i)
			dirs = append(dirs, d)
			tw.WriteHeader(&tar.Header{Name: d + "/", Typeflag: tar.TypeDir, Mode: 0o755})
		}
		d := dirs[len(dirs)-1]
		if i%20 == 0 {
			tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("%s/l%d", d, i), Typeflag: tar.TypeSymlink, Linkname: "f0"})
			continue
		}
		size := int64(rng.ExpFloat64() * (16 << 10))
		if i%1000 == 999 {
			size = 4 << 20
		}
		size = min(size, int64(len(body)))
		off := rng.Int63n(int64(len(body)) - size + 1)
		if err := tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("%s/f%d", d, i), Typeflag: tar.TypeReg, Mode: 0o644, Size: size}); err != nil {
			b.Fatal(err)
		}
		tw.Write(body[off : off+size])
	}
	if err := tw.Close(); err != nil {
		b.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		b.Fatal(err)
	}
	return cw.n
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

func BenchmarkApply(b *testing.B) {
	dir := b.TempDir()
	blob := filepath.Join(dir, "layer.tar.gz")
	size := writeBenchLayer(b, blob, 5000)
	b.SetBytes(size)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		root := filepath.Join(dir, "root")
		os.RemoveAll(root)
		f, err := os.Open(blob)
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if _, err := Apply(context.Background(), root, f, Options{}); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		f.Close()
		b.StartTimer()
	}
}
