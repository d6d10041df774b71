package layer

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// genTree writes about size bytes in files files under root: text-like
// content that compresses like source code, some incompressible blobs, and
// a directory fan-out of a source tree.
func genTree(tb testing.TB, root string, files int, size int64) int64 {
	tb.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	words := strings.Fields("func return if else for range var const type struct interface map chan go defer select case switch package import error nil true false string int byte len cap make new append copy delete panic recover the a of to in is that it with as for was on are be this by")
	var total int64
	buf := make([]byte, 0, 1<<20)
	for i := range files {
		dir := filepath.Join(root, fmt.Sprintf("pkg%02d", i%40), fmt.Sprintf("sub%d", i%7))
		must(tb, os.MkdirAll(dir, 0o755))
		n := rng.Int64N(2*size/int64(files)) + 1
		buf = buf[:0]
		if i%10 == 0 {
			for int64(len(buf)) < n {
				buf = binary.LittleEndian.AppendUint64(buf, rng.Uint64()) // stand-in for binaries: poorly compressible
			}
		} else {
			for int64(len(buf)) < n {
				buf = append(buf, words[rng.IntN(len(words))]...)
				if rng.IntN(8) == 0 {
					buf = append(buf, '\n', '\t')
				} else {
					buf = append(buf, ' ')
				}
			}
		}
		buf = buf[:n]
		must(tb, os.WriteFile(filepath.Join(dir, fmt.Sprintf("file%05d.go", i)), buf, 0o644))
		total += n
	}
	return total
}

// BenchmarkCreate builds a layer of a generated tree of about 50 MB in
// 4000 files, or of the tree named by LADING_BENCH_TREE.
func BenchmarkCreate(b *testing.B) {
	root := os.Getenv("LADING_BENCH_TREE")
	var size int64
	if root == "" {
		root = b.TempDir()
		size = genTree(b, root, 4000, 50<<20)
	} else {
		must(b, filepath.Walk(root, func(_ string, fi os.FileInfo, err error) error {
			if err == nil && fi.Mode().IsRegular() {
				size += fi.Size()
			}
			return err
		}))
	}
	for _, c := range allCompressions {
		b.Run(c.String(), func(b *testing.B) {
			b.SetBytes(size)
			b.ReportAllocs()
			var res Result
			cpu0 := cpuTime()
			for b.Loop() {
				var err error
				if res, err = Create(context.Background(), root, io.Discard, Options{Compression: c}); err != nil {
					b.Fatal(err)
				}
			}
			// CPU time says more than wall time on a shared machine.
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N)/1e6, "cpu-ms/op")
			b.ReportMetric(float64(res.Descriptor.Size)/float64(res.UncompressedSize), "ratio")
		})
	}
}

// cpuTime is the user and system time of the process so far.
func cpuTime() time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
