package container

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/lading-oci/lading/content"
	"github.com/lading-oci/lading/errdef"
	"github.com/lading-oci/lading/layer/unpack"
	"github.com/lading-oci/lading/mutate"
	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/identity"
)

// Cache keeps unpacked root filesystems, one per chain of layers (named by
// its chain ID, so images sharing all their layers share one tree), and the
// directories of containers. A cached tree is never changed once made: a
// container runs on an overlay over it or on a copy of it.
//
// Layout under Dir:
//
//	rootfs/<chain-id hex>/   unpacked trees, complete and read-only by use
//	containers/<name>/       one container's bundle, state and changes
//	runtimes.json            which OCI runtimes work here
type Cache struct {
	// Dir is the cache's directory.
	Dir string
	// Logger receives debug messages; nil discards them.
	Logger *slog.Logger
}

// DefaultCacheDir is $XDG_CACHE_HOME/lading, or ~/.cache/lading.
func DefaultCacheDir() (string, error) {
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("cache directory: %w", err)
	}
	return filepath.Join(d, "lading"), nil
}

// OpenCache makes (if needed) and returns the cache in dir.
func OpenCache(dir string) (*Cache, error) {
	if dir == "" {
		var err error
		if dir, err = DefaultCacheDir(); err != nil {
			return nil, err
		}
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	for _, sub := range []string{"rootfs", "containers"} {
		if err := os.MkdirAll(filepath.Join(abs, sub), 0o700); err != nil {
			return nil, fmt.Errorf("cache %s: %w", abs, err)
		}
	}
	return &Cache{Dir: abs}, nil
}

func (c *Cache) logger() *slog.Logger {
	if c.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return c.Logger
}

// ChainKey names the unpacked tree of a stack of layers: the chain ID's hex
// (image-spec's identity.ChainID), or "empty" for no layers.
func ChainKey(diffIDs []digest.Digest) string {
	if len(diffIDs) == 0 {
		return "empty"
	}
	return identity.ChainID(diffIDs).Encoded()
}

// Rootfs returns the cached root filesystem of img, unpacking it first if
// it is not cached yet. The tree must not be changed: run on a copy or an
// overlay (see Prepare). Two processes unpacking the same image at once
// each unpack into a directory of their own; the first to finish is kept.
func (c *Cache) Rootfs(ctx context.Context, f content.Fetcher, img *content.LoadedImage) (string, error) {
	if img == nil || img.ConfigFile == nil {
		return "", fmt.Errorf("cache: %w: no image", errdef.ErrInvalid)
	}
	key := ChainKey(img.ConfigFile.RootFS.DiffIDs)
	dst := filepath.Join(c.Dir, "rootfs", key)
	if fi, err := os.Stat(dst); err == nil && fi.IsDir() {
		c.logger().Debug("rootfs cache hit", "image", img.Desc.Digest, "chain", key)
		return dst, nil
	}
	tmp, err := os.MkdirTemp(filepath.Join(c.Dir, "rootfs"), ".unpack-")
	if err != nil {
		return "", fmt.Errorf("cache: %w", err)
	}
	c.logger().Debug("unpacking into the rootfs cache", "image", img.Desc.Digest, "chain", key)
	if err := mutate.Unpack(ctx, f, img, tmp, mutate.UnpackOptions{Rootless: os.Geteuid() != 0, Logger: c.Logger}); err != nil {
		unpack.RemoveAll(tmp)
		return "", fmt.Errorf("unpack %s: %w", img.Desc.Digest, err)
	}
	// The tree's top is the container's "/".
	if err := os.Chmod(tmp, 0o755); err != nil {
		unpack.RemoveAll(tmp)
		return "", err
	}
	if err := os.Rename(tmp, dst); err != nil {
		unpack.RemoveAll(tmp)
		if fi, serr := os.Stat(dst); serr == nil && fi.IsDir() {
			return dst, nil // another process finished first
		}
		return "", fmt.Errorf("cache: %w", err)
	}
	return dst, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
