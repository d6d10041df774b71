package ocilayout_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"io"
	"os"
	"runtime"
	"testing"

	"github.com/lading-oci/lading/content/contenttest"
	"github.com/lading-oci/lading/content/ocilayout"
)

// benchLayout fills a layout with about 256 MiB of random 8 MiB blobs.
func benchLayout(b *testing.B) (*ocilayout.Store, []string, int64) {
	b.Helper()
	s := newLayout(b)
	buf := make([]byte, 8<<20)
	var paths []string
	var total int64
	for range 32 {
		rand.Read(buf)
		d := contenttest.Describe("application/octet-stream", buf)
		contenttest.Push(b, s, d, buf)
		p, _ := s.BlobPath(d.Digest)
		paths = append(paths, p)
		total += d.Size
	}
	return s, paths, total
}

// BenchmarkVerify hashes the whole layout with one worker per CPU. Compare
// its MB/s with BenchmarkSHA256 times the number of CPUs in use.
func BenchmarkVerify(b *testing.B) {
	s, _, total := benchLayout(b)
	b.ReportMetric(float64(runtime.GOMAXPROCS(0)), "workers")
	b.SetBytes(total)
	b.ResetTimer()
	for b.Loop() {
		rep, err := s.Verify(context.Background(), ocilayout.VerifyOptions{})
		if err != nil || !rep.OK() || rep.Bytes != total {
			b.Fatalf("verify: %v %v", err, rep)
		}
	}
}

// BenchmarkSHA256 is the baseline: the same files hashed one after the
// other on one goroutine.
func BenchmarkSHA256(b *testing.B) {
	_, paths, total := benchLayout(b)
	buf := make([]byte, 1<<20)
	b.SetBytes(total)
	b.ResetTimer()
	for b.Loop() {
		for _, p := range paths {
			f, err := os.Open(p)
			if err != nil {
				b.Fatal(err)
			}
			h := sha256.New()
			if _, err := io.CopyBuffer(h, f, buf); err != nil {
				b.Fatal(err)
			}
			f.Close()
		}
	}
}

// BenchmarkPush pushes distinct 16 MiB blobs.
func BenchmarkPush(b *testing.B) {
	s := newLayout(b)
	data := make([]byte, 16<<20)
	rand.Read(data)
	b.SetBytes(int64(len(data)))
	i := 0
	for b.Loop() {
		b.StopTimer()
		i++
		data[0], data[1], data[2] = byte(i), byte(i>>8), byte(i>>16)
		d := contenttest.Describe("application/octet-stream", data)
		b.StartTimer()
		if err := s.Push(context.Background(), d, bytes.NewReader(data)); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		s.Delete(context.Background(), d.Digest)
		b.StartTimer()
	}
}
