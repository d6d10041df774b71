//go:build !linux

package container

import (
	"context"
	"fmt"

	"github.com/lading-oci/lading/errdef"
)

func copyTree(_ context.Context, src, _ string) error {
	return fmt.Errorf("copy %s: %w: containers run on Linux only", src, errdef.ErrUnsupported)
}
