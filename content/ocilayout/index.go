package ocilayout

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"github.com/lading-oci/lading/internal/atomicfile"

	"github.com/lading-oci/lading/content"
	"github.com/lading-oci/lading/errdef"
	"github.com/lading-oci/lading/image"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// withLock runs fn holding the layout lock: the Store's mutex and an
// exclusive flock on the layout directory.
func (s *Store) withLock(ctx context.Context, fn func() error) error {
	s.indexMu.Lock()
	defer s.indexMu.Unlock()
	d, err := openLocked(ctx, s.dir, flock)
	if err != nil {
		return fmt.Errorf("lock layout %s: %w", s.dir, err)
	}
	defer func() {
		funlock(d)
		d.Close()
	}()
	return fn()
}

// openLocked opens path and locks it with lock (flock or flockShared),
// waiting until ctx ends.
func openLocked(ctx context.Context, path string, lock func(context.Context, *os.File) error) (*os.File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	if err := lock(ctx, f); err != nil {
		if !errors.As(err, new(errAbandoned)) {
			f.Close()
		}
		return nil, err
	}
	return f, nil
}

// errAbandoned reports that flock gave up waiting for the lock when its
// context ended; the file it was locking is no longer the caller's.
type errAbandoned struct{ err error }

func (e errAbandoned) Error() string { return e.err.Error() }
func (e errAbandoned) Unwrap() error { return e.err }

// readIndex reads and decodes index.json with the image package, as every
// reader in lading does (what it tolerates, Verify reports as warnings).
func (s *Store) readIndex() (ocispec.Index, error) {
	var idx ocispec.Index
	data, err := readCapped(s.path(indexFile), maxIndexBytes)
	if errors.Is(err, fs.ErrNotExist) {
		return idx, fmt.Errorf("%s: %w: no %s file", s.dir, errdef.ErrInvalid, indexFile)
	}
	if err != nil {
		return idx, fmt.Errorf("read %s: %w", s.path(indexFile), err)
	}
	dec, err := image.DecodeIndex(data)
	if err != nil {
		return idx, fmt.Errorf("read %s: %w", s.path(indexFile), err)
	}
	return *dec, nil
}

func (s *Store) writeIndexLocked(idx ocispec.Index) error {
	if idx.Manifests == nil {
		idx.Manifests = []ocispec.Descriptor{}
	}
	data, err := json.Marshal(idx)
	if err != nil {
		return fmt.Errorf("write %s: %w", s.path(indexFile), err)
	}
	if err := atomicfile.Write(filepath.Join(s.dir, indexFile), data, 0o644, true); err != nil {
		return fmt.Errorf("write %s: %w", s.path(indexFile), err)
	}
	return nil
}

// Index returns the layout's index.json.
func (s *Store) Index(ctx context.Context) (ocispec.Index, error) {
	return s.readIndex()
}

// UpdateIndex changes index.json: under the layout lock it reads the index,
// calls fn, and, if fn returns nil, writes the result atomically. Other
// processes updating the same layout through this package wait for it.
func (s *Store) UpdateIndex(ctx context.Context, fn func(*ocispec.Index) error) error {
	return s.withLock(ctx, func() error {
		idx, err := s.readIndex()
		if err != nil {
			return err
		}
		if err := fn(&idx); err != nil {
			return err
		}
		if idx.SchemaVersion != 2 {
			return fmt.Errorf("update %s: %w: schemaVersion %d, want 2", s.path(indexFile), errdef.ErrInvalid, idx.SchemaVersion)
		}
		return s.writeIndexLocked(idx)
	})
}

func refName(d ocispec.Descriptor) string {
	return d.Annotations[ocispec.AnnotationRefName]
}

// Tag points tag at desc, which must be stored with desc's size: any
// index.json entry with that tag is replaced, other entries are kept, and
// desc's platform and annotations are kept with the ref name added.
func (s *Store) Tag(ctx context.Context, desc ocispec.Descriptor, tag string) error {
	if err := content.CheckTag(tag); err != nil {
		return err
	}
	if err := content.CheckDigest(desc.Digest); err != nil {
		return fmt.Errorf("tag %q: %w", tag, err)
	}
	if desc.MediaType == "" {
		return fmt.Errorf("tag %q: descriptor %s: %w: no media type", tag, desc.Digest, errdef.ErrInvalid)
	}
	st, err := s.Stat(ctx, desc.Digest)
	if err != nil {
		return fmt.Errorf("tag %q: %w", tag, err)
	}
	if st.Size != desc.Size {
		return fmt.Errorf("tag %q: blob %s: %w: stored blob has %d bytes, descriptor says %d", tag, desc.Digest, errdef.ErrSizeMismatch, st.Size, desc.Size)
	}
	entry := desc
	entry.Annotations = make(map[string]string, len(desc.Annotations)+1)
	for k, v := range desc.Annotations {
		entry.Annotations[k] = v
	}
	entry.Annotations[ocispec.AnnotationRefName] = tag
	err = s.UpdateIndex(ctx, func(idx *ocispec.Index) error {
		idx.Manifests = slices.DeleteFunc(idx.Manifests, func(d ocispec.Descriptor) bool { return refName(d) == tag })
		idx.Manifests = append(idx.Manifests, entry)
		return nil
	})
	if err != nil {
		return fmt.Errorf("tag %q: %w", tag, err)
	}
	return nil
}

// Untag removes the index.json entries named tag.
func (s *Store) Untag(ctx context.Context, tag string) error {
	return s.UpdateIndex(ctx, func(idx *ocispec.Index) error {
		n := len(idx.Manifests)
		idx.Manifests = slices.DeleteFunc(idx.Manifests, func(d ocispec.Descriptor) bool { return refName(d) == tag })
		if len(idx.Manifests) == n {
			return fmt.Errorf("untag: %w", &errdef.NotFoundError{What: errdef.WhatTag, Name: tag, In: s.dir})
		}
		return nil
	})
}

// RemoveDigest removes every index.json entry whose digest is dgst, tagged
// or not, and returns the tags those entries had (nil for untagged ones).
// The content stays until garbage collection. No entry with dgst is an
// *errdef.NotFoundError.
func (s *Store) RemoveDigest(ctx context.Context, dgst digest.Digest) ([]string, error) {
	var tags []string
	err := s.UpdateIndex(ctx, func(idx *ocispec.Index) error {
		tags = nil
		n := len(idx.Manifests)
		idx.Manifests = slices.DeleteFunc(idx.Manifests, func(d ocispec.Descriptor) bool {
			if d.Digest != dgst {
				return false
			}
			if t := refName(d); t != "" {
				tags = append(tags, t)
			}
			return true
		})
		if len(idx.Manifests) == n {
			return &errdef.NotFoundError{What: errdef.WhatManifest, Name: string(dgst), In: s.dir + "/index.json"}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("remove %s: %w", dgst, err)
	}
	slices.Sort(tags)
	return tags, nil
}

// Tags passes the distinct ref names of index.json, sorted, to fn in pages.
func (s *Store) Tags(ctx context.Context, fn func(tags []string) error) error {
	idx, err := s.readIndex()
	if err != nil {
		return err
	}
	var tags []string
	for _, d := range idx.Manifests {
		if t := refName(d); t != "" {
			tags = append(tags, t)
		}
	}
	return content.ListTags(tags, fn)
}

// Resolve finds the descriptor for a tag (an index.json ref name) or a
// digest. A digest resolves to its entry in index.json or in an index
// reachable from it (as listed there, platform included), or else to the
// stored blob, with the media type its JSON names if it is a small
// document.
func (s *Store) Resolve(ctx context.Context, reference string) (ocispec.Descriptor, error) {
	idx, err := s.readIndex()
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("resolve %q: %w", reference, err)
	}
	for i := len(idx.Manifests) - 1; i >= 0; i-- {
		if refName(idx.Manifests[i]) == reference {
			return idx.Manifests[i], nil
		}
	}
	dgst, err := digest.Parse(reference)
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("resolve: %w", &errdef.NotFoundError{What: errdef.WhatTag, Name: reference, In: s.dir})
	}
	if d, ok := s.findInIndexes(ctx, idx.Manifests, dgst); ok {
		return d, nil
	}
	st, err := s.Stat(ctx, dgst)
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("resolve %q: %w", reference, err)
	}
	if st.Size <= s.maxMetadata {
		if data, err := readCapped(s.blobPath(dgst), s.maxMetadata); err == nil {
			if mt := image.MediaTypeOf(data); mt != "" {
				st.MediaType = mt
			}
		}
	}
	return st, nil
}

// findInIndexes looks for dgst among descs and, breadth first, in the
// stored indexes they lead to.
func (s *Store) findInIndexes(ctx context.Context, descs []ocispec.Descriptor, dgst digest.Digest) (ocispec.Descriptor, bool) {
	seen := map[digest.Digest]bool{}
	for len(descs) > 0 && ctx.Err() == nil {
		var next []ocispec.Descriptor
		for _, d := range descs {
			if d.Digest == dgst {
				return d, true
			}
		}
		for _, d := range descs {
			if !image.IsIndex(d.MediaType) || seen[d.Digest] || d.Size > s.maxMetadata || content.CheckDigest(d.Digest) != nil {
				continue
			}
			seen[d.Digest] = true
			data, err := readCapped(s.blobPath(d.Digest), s.maxMetadata)
			if err != nil {
				continue
			}
			if n, err := content.DecodeNode(d, data); err == nil && n != nil {
				next = append(next, n.Index.Manifests...)
			}
		}
		descs = next
	}
	return ocispec.Descriptor{}, false
}
