//go:build !linux

package container

import (
	"fmt"

	"github.com/lading-oci/lading/errdef"
)

func mountOverlay(_, _, _, target string) error {
	return fmt.Errorf("mount overlay on %s: %w: overlays are a Linux feature", target, errdef.ErrUnsupported)
}

func unmount(string) error { return nil }
