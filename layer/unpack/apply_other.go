//go:build !linux

package unpack

import (
	"context"
	"fmt"
	"io"
	"runtime"

	"github.com/lading-oci/lading/errdef"
)

// Apply applies a layer blob to root. Only Linux is supported.
func Apply(ctx context.Context, root string, r io.Reader, opts Options) (Stats, error) {
	return Stats{}, fmt.Errorf("apply layer on %s: %w", runtime.GOOS, errdef.ErrUnsupported)
}
