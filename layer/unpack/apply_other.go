//go:build !linux

package unpack

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime"

	"github.com/lading-oci/lading/errdef"
)

// Apply applies a layer blob to root. Only Linux is supported.
func Apply(ctx context.Context, root string, r io.Reader, opts Options) (Stats, error) {
	return Stats{}, fmt.Errorf("apply layer on %s: %w", runtime.GOOS, errdef.ErrUnsupported)
}

// ApplyLayers applies layer blobs in order to root. Only Linux is supported.
func ApplyLayers(ctx context.Context, root string, layers []Layer, opts Options) ([]Stats, error) {
	return nil, fmt.Errorf("apply layers on %s: %w", runtime.GOOS, errdef.ErrUnsupported)
}

func punchHole(f *os.File, off, n int64) {}
