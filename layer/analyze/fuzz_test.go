package analyze

import (
	"bytes"
	"context"
	"io"
	"testing"

	"github.com/lading-oci/lading/layer"
)

func FuzzAnalyze(f *testing.F) {
	f.Add([]byte{})
	f.Add(tarBytes(f, dir("d"), file("d/f", 3), hardlink("h", "d/f"), symlink("s", "d")))
	f.Add(tarBytes(f, wh("d"), opq("x"), file("s/y", 2), file("../../e", 1)))
	f.Add(compressed(f, tarBytes(f, file("a", 10), wh("a")), layer.Gzip))
	f.Add(compressed(f, tarBytes(f, symlink("l", "/l/x"), file("l/f", 1)), layer.Zstd))
	f.Fuzz(func(t *testing.T, data []byte) {
		l := Layer{Open: func(context.Context) (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }}
		// The blob twice: the second copy's whiteouts and links meet the first's entries.
		rep, err := Analyze(context.Background(), []Layer{l, l}, Options{Files: true, MaxPaths: 1 << 12})
		if err != nil {
			if rep != nil {
				t.Fatalf("report with error %v", err)
			}
			return
		}
		checkInvariants(t, rep)
		for _, lr := range rep.Layers {
			checkChangesAgree(t, lr)
		}
		if rep.Efficiency < 0 || rep.Efficiency > 1 {
			t.Fatalf("efficiency %v", rep.Efficiency)
		}
		if _, err := Compare(context.Background(), []Layer{l}, []Layer{l, l}, CompareOptions{MaxPaths: 1 << 12}); err != nil {
			t.Fatalf("Compare failed where Analyze did not: %v", err)
		}
	})
}
