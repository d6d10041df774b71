package container

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lading-oci/lading/layer/unpack"
)

// BenchmarkNewRootfs makes a writable tree over a cached one of 2000 small
// files in 40 directories, by overlay (root only) and by copy, and removes
// it again, as a run does.
func BenchmarkNewRootfs(b *testing.B) {
	lower := b.TempDir()
	data := []byte(strings.Repeat("x", 4096))
	for d := 0; d < 40; d++ {
		dir := filepath.Join(lower, fmt.Sprintf("d%02d", d))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			b.Fatal(err)
		}
		for f := 0; f < 50; f++ {
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%02d", f)), data, 0o644); err != nil {
				b.Fatal(err)
			}
		}
	}
	for _, mode := range []RootfsMode{RootfsOverlay, RootfsCopy} {
		b.Run(mode.String(), func(b *testing.B) {
			if mode == RootfsOverlay && os.Geteuid() != 0 {
				b.Skip("overlays need root")
			}
			work := b.TempDir()
			for i := 0; b.Loop(); i++ {
				dir := filepath.Join(work, fmt.Sprint(i))
				r, err := NewRootfs(context.Background(), lower, dir, mode)
				if err != nil {
					b.Fatal(err)
				}
				if err := r.Release(); err != nil {
					b.Fatal(err)
				}
				unpack.RemoveAll(dir)
			}
		})
	}
}
