package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/lading-oci/lading/content"
	"github.com/lading-oci/lading/errdef"
	"github.com/lading-oci/lading/image"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// GC implements Registry. It runs while the registry serves pushes and
// pulls:
//
//  1. For each repository, it takes the descriptors index.json lists (from
//     the mirror, which includes changes not yet written) and marks what
//     they reach through the repository's own blobs.
//  2. Each blob file of the repository that is not marked is removed under
//     the fence (see fence.go), unless a pin protects it (a push in flight,
//     or a manifest committed since the collection started) or it changed
//     within opts.Grace.
//  3. Each shared copy no repository links any more (link count 1) is
//     removed under the same fence.
//  4. Upload sessions idle for longer than the upload expiry, and stale
//     temporary files, are removed.
//
// A repository whose blobs directory another process holds as a writer
// (lading's embedded store, writing without having tagged yet) is skipped,
// as is one with a reachable manifest that cannot be read (what it
// references is unknown); both are listed in GCReport.Problems.
func (s *FS) GC(ctx context.Context, opts GCOptions) (*GCReport, error) {
	if s.opts.ReadOnly {
		return nil, fmt.Errorf("gc: %w", ErrReadOnly)
	}
	s.gcMu.Lock()
	defer s.gcMu.Unlock()
	markStart := time.Now()
	windowStart := markStart.Add(-s.opts.PushWindow)
	graceCut := markStart.Add(-opts.Grace)
	rep := &GCReport{}
	names, err := s.Repositories(ctx, "", -1)
	if err != nil {
		return nil, err
	}
	for _, name := range names {
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		r, err := s.repo(ctx, name, false)
		if err != nil {
			rep.Problems = append(rep.Problems, fmt.Sprintf("%s: %v", name, err))
			continue
		}
		rep.Repositories++
		if err := s.gcRepo(ctx, r, opts, markStart, windowStart, graceCut, rep); err != nil {
			if ctx.Err() != nil {
				return rep, ctx.Err()
			}
			rep.Problems = append(rep.Problems, fmt.Sprintf("%s: %v", name, err))
		}
	}
	if err := s.gcShared(ctx, opts, graceCut, rep); err != nil {
		return rep, err
	}
	n, err := s.expireUploads(ctx, markStart.Add(-s.opts.UploadExpiry), opts.DryRun)
	rep.Uploads = n
	if err != nil {
		return rep, err
	}
	if !opts.DryRun {
		s.sweepTemp(markStart.Add(-max(time.Hour, opts.Grace)))
		if err := s.fence.prune(markStart, windowStart); err != nil {
			rep.Problems = append(rep.Problems, err.Error())
		}
	}
	sort.Strings(rep.Links)
	sort.Slice(rep.Blobs, func(i, j int) bool { return rep.Blobs[i] < rep.Blobs[j] })
	return rep, nil
}

func (s *FS) gcRepo(ctx context.Context, r *fsRepo, opts GCOptions, markStart, windowStart, graceCut time.Time, rep *GCReport) error {
	// A writer of lading's embedded store holds blobs/ shared; skip the
	// repository while one does, as that store's own GC would.
	bd, err := os.Open(filepath.Join(r.dir, blobsDir))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer bd.Close()
	if ok, err := tryFlockFile(bd); err != nil || !ok {
		return fmt.Errorf("%w: another process is writing to the layout; skipped", errdef.ErrUnavailable)
	}
	defer unflockFile(bd)

	marked, err := r.reachable(ctx)
	if err != nil {
		return err
	}
	return r.walkBlobs(ctx, func(d digest.Digest, path string, fi os.FileInfo) error {
		if marked[d] {
			s.adopt(d, path, fi)
			return nil
		}
		if fi.ModTime().After(graceCut) {
			rep.Kept++
			return nil
		}
		if opts.DryRun {
			if s.fence.isProtected(r.name, d, markStart, windowStart) {
				rep.Kept++
			} else {
				rep.Links = append(rep.Links, r.name+"@"+string(d))
			}
			return nil
		}
		removed, err := s.fence.sweep(r.name, d, markStart, windowStart, func() error {
			err := os.Remove(path)
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		})
		if err != nil {
			return fmt.Errorf("remove %s: %w", path, err)
		}
		if removed {
			rep.Links = append(rep.Links, r.name+"@"+string(d))
		} else {
			rep.Kept++
		}
		return nil
	})
}

// adopt links a repository's blob that has no shared copy (written by
// another tool straight into the layout) into the shared store, so later
// pushes of it share one copy.
func (s *FS) adopt(d digest.Digest, path string, fi os.FileInfo) {
	if linkCount(fi) > 1 {
		return
	}
	_ = s.fence.locked(d, func() error {
		shared := s.sharedPath(d)
		if _, err := os.Lstat(shared); err == nil {
			return nil
		}
		return s.linkInto(path, shared)
	})
}

// walkBlobs calls fn for every regular file under the repository's blobs/
// whose name is a digest.
func (r *fsRepo) walkBlobs(ctx context.Context, fn func(d digest.Digest, path string, fi os.FileInfo) error) error {
	return walkDigestDir(ctx, filepath.Join(r.dir, blobsDir), fn)
}

func walkDigestDir(ctx context.Context, root string, fn func(d digest.Digest, path string, fi os.FileInfo) error) error {
	algs, err := os.ReadDir(root)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, a := range algs {
		alg := digest.Algorithm(a.Name())
		if !a.IsDir() || !alg.Available() {
			continue
		}
		dir := filepath.Join(root, a.Name())
		ents, err := os.ReadDir(dir)
		if err != nil {
			return err
		}
		for _, e := range ents {
			if err := ctx.Err(); err != nil {
				return err
			}
			d := digest.NewDigestFromEncoded(alg, e.Name())
			if d.Validate() != nil || !e.Type().IsRegular() {
				continue
			}
			path := filepath.Join(dir, e.Name())
			fi, err := os.Stat(path)
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if err != nil {
				return err
			}
			if err := fn(d, path, fi); err != nil {
				return err
			}
		}
	}
	return nil
}

// reachable marks what the repository's index.json leads to through its
// own blobs: manifests, indexes, configs, layers, subjects. A blob that is
// not there (a sparse manifest's layer) is marked and not followed.
func (r *fsRepo) reachable(ctx context.Context) (map[digest.Digest]bool, error) {
	marked := map[digest.Digest]bool{}
	queue := r.roots()
	for len(queue) > 0 {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		d := queue[len(queue)-1]
		queue = queue[:len(queue)-1]
		if marked[d.Digest] {
			continue
		}
		marked[d.Digest] = true
		if image.IsLayer(d.MediaType) || image.IsConfig(d.MediaType) || d.Size > r.fs.opts.MaxManifestBytes || checkDigest(d.Digest) != nil {
			continue
		}
		data, err := r.readBlobCapped(d.Digest)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", d.Digest, err)
		}
		mt := d.MediaType
		if !image.IsManifest(mt) && !image.IsIndex(mt) {
			if mt = image.MediaTypeOf(data); !image.IsManifest(mt) && !image.IsIndex(mt) {
				continue
			}
		}
		if got := d.Digest.Algorithm().FromBytes(data); got != d.Digest {
			return nil, fmt.Errorf("%s %s: %w: content hashes to %s, so what it refers to is unknown", mt, d.Digest, errdef.ErrDigestMismatch, got)
		}
		children, err := content.SuccessorsOf(ocispec.Descriptor{MediaType: mt, Digest: d.Digest, Size: int64(len(data))}, data)
		if err != nil {
			return nil, fmt.Errorf("%s %s cannot be read, so what it refers to is unknown: %w", mt, d.Digest, err)
		}
		queue = append(queue, children...)
	}
	return marked, nil
}

func (r *fsRepo) readBlobCapped(d digest.Digest) ([]byte, error) {
	if data := r.fs.mcache.get(d); data != nil {
		return data, nil
	}
	f, err := os.Open(r.blobPath(d))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, r.fs.opts.MaxManifestBytes+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > r.fs.opts.MaxManifestBytes {
		return nil, fmt.Errorf("%w: larger than %d bytes", errdef.ErrTooLarge, r.fs.opts.MaxManifestBytes)
	}
	return data, nil
}

// gcShared removes shared copies that no repository links.
func (s *FS) gcShared(ctx context.Context, opts GCOptions, graceCut time.Time, rep *GCReport) error {
	return walkDigestDir(ctx, filepath.Join(s.state, sharedBlobs), func(d digest.Digest, path string, fi os.FileInfo) error {
		if linkCount(fi) > 1 {
			return nil
		}
		if fi.ModTime().After(graceCut) {
			rep.Kept++
			return nil
		}
		if opts.DryRun {
			rep.Blobs = append(rep.Blobs, d)
			rep.FreedBytes += fi.Size()
			return nil
		}
		return s.fence.locked(d, func() error {
			fi, err := os.Stat(path)
			if err != nil || linkCount(fi) > 1 {
				return nil // linked meanwhile
			}
			if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("remove %s: %w", path, err)
			}
			rep.Blobs = append(rep.Blobs, d)
			rep.FreedBytes += fi.Size()
			return nil
		})
	})
}

// sweepTemp removes temporary files older than cutoff.
func (s *FS) sweepTemp(cutoff time.Time) {
	dir := filepath.Join(s.state, tmpDir)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		if fi, err := e.Info(); err == nil && fi.ModTime().Before(cutoff) {
			_ = os.Remove(filepath.Join(dir, e.Name()))
		}
	}
}
