package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sync"

	"github.com/lading-oci/lading/errdef"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// OpenBlob implements Repository.
func (r *fsRepo) OpenBlob(ctx context.Context, d digest.Digest) (*Blob, error) {
	if err := checkDigest(d); err != nil {
		return nil, fmt.Errorf("open blob: %w", err)
	}
	f, err := os.Open(r.blobPath(d))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, errNotFound("blob %s in %s", d, r.name)
		}
		return nil, fmt.Errorf("open blob %s in %s: %w", d, r.name, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("open blob %s in %s: %w", d, r.name, err)
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, errNotFound("blob %s in %s", d, r.name)
	}
	return &Blob{Content: f, Desc: ocispec.Descriptor{MediaType: "application/octet-stream", Digest: d, Size: fi.Size()}, ModTime: fi.ModTime()}, nil
}

// StatBlob implements Repository: the blob is pinned as part of a push in
// flight, under the fence, so a collection cannot remove it between this
// answer and the manifest that will reference it.
func (r *fsRepo) StatBlob(ctx context.Context, d digest.Digest) (ocispec.Descriptor, error) {
	if err := checkDigest(d); err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("stat blob: %w", err)
	}
	var desc ocispec.Descriptor
	stat := func() error {
		fi, err := os.Stat(r.blobPath(d))
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return errNotFound("blob %s in %s", d, r.name)
			}
			return fmt.Errorf("stat blob %s in %s: %w", d, r.name, err)
		}
		if !fi.Mode().IsRegular() {
			return errNotFound("blob %s in %s", d, r.name)
		}
		r.fs.touch(r.blobPath(d), fi)
		desc = ocispec.Descriptor{MediaType: "application/octet-stream", Digest: d, Size: fi.Size()}
		return nil
	}
	var err error
	if r.fs.opts.ReadOnly {
		err = stat()
	} else {
		err = r.fs.fence.pin(r.name, d, stat)
	}
	return desc, err
}

// PushBlob implements Repository.
func (r *fsRepo) PushBlob(ctx context.Context, expected ocispec.Descriptor, rd io.Reader) (ocispec.Descriptor, error) {
	if r.fs.opts.ReadOnly {
		return ocispec.Descriptor{}, ErrReadOnly
	}
	if err := checkDigest(expected.Digest); err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("push blob: %w", err)
	}
	tmp, desc, err := r.fs.streamTemp(ctx, expected, rd)
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("push blob to %s: %w", r.name, err)
	}
	defer os.Remove(tmp)
	if err := r.fs.publish(r, desc.Digest, desc.Size, tmp); err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("push blob %s to %s: %w", desc.Digest, r.name, err)
	}
	return desc, nil
}

// MountBlob implements Repository: a hard link to from's file.
func (r *fsRepo) MountBlob(ctx context.Context, d digest.Digest, from Repository) (ocispec.Descriptor, error) {
	if r.fs.opts.ReadOnly {
		return ocispec.Descriptor{}, ErrReadOnly
	}
	if err := checkDigest(d); err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("mount blob: %w", err)
	}
	src, ok := from.(*fsRepo)
	if !ok || src.fs != r.fs {
		return ocispec.Descriptor{}, fmt.Errorf("mount blob %s from %s: %w: another storage", d, from.Name(), errdef.ErrUnsupported)
	}
	var desc ocispec.Descriptor
	err := r.fs.fence.pin(r.name, d, func() error {
		fi, err := os.Stat(src.blobPath(d))
		if err != nil || !fi.Mode().IsRegular() {
			return errNotFound("blob %s in %s", d, src.name)
		}
		if src != r {
			// The name is synced by the manifest PUT that references it.
			if err := r.fs.link(src.blobPath(d), r.blobPath(d), false); err != nil {
				return fmt.Errorf("mount blob %s from %s into %s: %w", d, src.name, r.name, err)
			}
		}
		r.fs.touch(r.blobPath(d), fi)
		desc = ocispec.Descriptor{MediaType: "application/octet-stream", Digest: d, Size: fi.Size()}
		return nil
	})
	return desc, err
}

// DeleteBlob implements Repository. The shared copy stays until GC finds
// no repository linking it.
func (r *fsRepo) DeleteBlob(ctx context.Context, d digest.Digest) error {
	if r.fs.opts.ReadOnly {
		return ErrReadOnly
	}
	if err := checkDigest(d); err != nil {
		return fmt.Errorf("delete blob: %w", err)
	}
	return r.fs.fence.drop(r.name, d, func() error {
		err := os.Remove(r.blobPath(d))
		if errors.Is(err, fs.ErrNotExist) {
			return errNotFound("blob %s in %s", d, r.name)
		}
		if err != nil {
			return fmt.Errorf("delete blob %s in %s: %w", d, r.name, err)
		}
		return nil
	})
}

// manifestCache keeps verified manifest bytes by digest, up to a byte
// budget, evicting the oldest first. Content is addressed by digest, so one
// cache serves every repository; which repository may see a manifest is
// decided before the cache is asked.
type manifestCache struct {
	mu    sync.Mutex
	max   int64
	size  int64
	data  map[digest.Digest][]byte
	order []digest.Digest
}

func newManifestCache(max int64) *manifestCache {
	return &manifestCache{max: max, data: map[digest.Digest][]byte{}}
}

func (c *manifestCache) get(d digest.Digest) []byte {
	if c.max <= 0 {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.data[d]
}

func (c *manifestCache) put(d digest.Digest, data []byte) {
	if c.max <= 0 || int64(len(data)) > c.max/4 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.data[d]; ok {
		return
	}
	for c.size+int64(len(data)) > c.max && len(c.order) > 0 {
		old := c.order[0]
		c.order = c.order[1:]
		c.size -= int64(len(c.data[old]))
		delete(c.data, old)
	}
	c.data[d] = data
	c.order = append(c.order, d)
	c.size += int64(len(data))
}
