//go:build !(linux || darwin)

package layer

import (
	"context"
	"fmt"
	"runtime"

	"github.com/lading-oci/lading/errdef"
)

// fsWalker reads directories only on Unix systems.
type fsWalker struct{ diff *DiffOptions }

func newFSWalker(context.Context, string, *packer, Options) (*fsWalker, error) {
	return nil, fmt.Errorf("layer: reading directories on %s: %w", runtime.GOOS, errdef.ErrUnsupported)
}

func (*fsWalker) close()               {}
func (*fsWalker) create() error        { return nil }
func (*fsWalker) walkRoot(*node) error { return nil }
