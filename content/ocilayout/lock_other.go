//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package ocilayout

import (
	"context"
	"os"
)

// On these systems the layout lock only serialises the goroutines of one
// Store (through its mutex), and GC cannot tell a live ingest from an
// abandoned one, so it relies on GCOptions.IngestMinAge alone.

func flock(ctx context.Context, f *os.File) error { return nil }

func flockShared(ctx context.Context, f *os.File) error { return nil }

func tryFlock(f *os.File) error { return nil }

func funlock(f *os.File) error { return nil }
