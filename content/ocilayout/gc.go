package ocilayout

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/lading-oci/lading/content"
	"github.com/lading-oci/lading/image"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// GCOptions tunes GC.
type GCOptions struct {
	// DryRun reports what would be removed without removing anything.
	DryRun bool
	// MinBlobAge keeps unreferenced blobs modified more recently than this,
	// so content pushed but not yet tagged by a concurrent writer survives.
	// Zero keeps nothing back.
	MinBlobAge time.Duration
	// IngestMinAge keeps unfinished ingests modified more recently than
	// this. An ingest whose writer is open (it holds a flock) is always
	// kept. Zero removes every ingest without an open writer.
	IngestMinAge time.Duration
}

// Removed is one thing GC removed (or, in a dry run, would remove).
type Removed struct {
	// Digest names a removed blob; empty for an ingest or temporary file.
	Digest digest.Digest
	// Name is the ingest ref or temporary file name; empty for a blob.
	Name string
	// Path is the file or directory.
	Path string
	// Size is how many bytes it held.
	Size int64
}

// GCReport is the outcome of GC.
type GCReport struct {
	// Blobs lists the unreferenced blobs removed, sorted by digest.
	Blobs []Removed
	// Ingests lists the stale ingests and temporary files removed.
	Ingests []Removed
	// FreedBytes is the total size of what was removed.
	FreedBytes int64
	// Kept counts the blobs kept.
	Kept int
}

// GC removes the blobs that nothing in index.json leads to, plus stale
// ingests and temporary files.
//
// A blob is kept if it is reachable from index.json through indexes,
// manifests, configs, layers and subjects, or if it is a manifest or index
// whose subject is kept (a referrer, such as a signature or an SBOM),
// together with everything that referrer leads to. Referrers are found by
// reading every otherwise unreachable blob small enough to be metadata.
//
// GC holds the layout lock throughout, so tags cannot change underneath
// it, and the writers' lock, so no other Store (in this process or another)
// that has written to the layout since it was opened, and may be about to
// tag what it wrote, is active: if one is, GC fails with an error matching
// errdef.ErrUnavailable, unless opts.MinBlobAge is set to protect recent
// blobs instead or opts.DryRun only reports. Writers wait while GC runs.
// GC first gives up the writers' lock of s itself: the caller sequences its
// own writes around it (a server whose goroutines write while it collects
// sets MinBlobAge).
//
// A reachable manifest or index that cannot be parsed stops GC with an
// error matching errdef.ErrInvalid, since what it leads to is unknown.
func (s *Store) GC(ctx context.Context, opts GCOptions) (*GCReport, error) {
	release, err := s.excludeWriters(opts)
	if err != nil {
		return nil, err
	}
	defer release()
	rep := &GCReport{}
	err = s.withLock(ctx, func() error {
		idx, err := s.readIndex()
		if err != nil {
			return err
		}
		blobs := map[digest.Digest]blobFile{}
		if err := s.walkBlobs(ctx, func(b blobFile) error {
			blobs[b.desc.Digest] = b
			return nil
		}); err != nil {
			return err
		}
		roots := append([]ocispec.Descriptor(nil), idx.Manifests...)
		if idx.Subject != nil {
			roots = append(roots, *idx.Subject)
		}
		marked := map[digest.Digest]bool{}
		if err := s.mark(ctx, roots, blobs, marked, nil); err != nil {
			return err
		}
		// Referrers are looked for among the blobs not yet kept, and kept
		// (with what they lead to, referrers of referrers included) if
		// their subject is.
		referrers, err := s.findReferrers(ctx, blobs, marked)
		if err != nil {
			return err
		}
		var more []ocispec.Descriptor
		for subject, rs := range referrers {
			if marked[subject] {
				more = append(more, rs...)
			}
		}
		if err := s.mark(ctx, more, blobs, marked, referrers); err != nil {
			return err
		}
		now := time.Now()
		for d, b := range blobs {
			if marked[d] || (opts.MinBlobAge > 0 && now.Sub(b.info.ModTime()) < opts.MinBlobAge) {
				rep.Kept++
				continue
			}
			if !opts.DryRun {
				if err := os.Remove(b.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
					return fmt.Errorf("remove blob %s: %w", d, err)
				}
			}
			rep.Blobs = append(rep.Blobs, Removed{Digest: d, Path: b.path, Size: b.desc.Size})
			rep.FreedBytes += b.desc.Size
		}
		sort.Slice(rep.Blobs, func(i, j int) bool { return rep.Blobs[i].Digest < rep.Blobs[j].Digest })
		return s.sweepIngests(ctx, opts, rep)
	})
	if err != nil {
		return nil, fmt.Errorf("gc layout %s: %w", s.dir, err)
	}
	return rep, nil
}

// findReferrers maps each subject digest to the stored manifests and
// indexes, among the blobs not in skip, that name it as their subject.
func (s *Store) findReferrers(ctx context.Context, blobs map[digest.Digest]blobFile, skip map[digest.Digest]bool) (map[digest.Digest][]ocispec.Descriptor, error) {
	out := map[digest.Digest][]ocispec.Descriptor{}
	for d, b := range blobs {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if skip[d] || b.desc.Size > s.maxMetadata || b.desc.Size < 2 {
			continue
		}
		data, err := readCapped(b.path, s.maxMetadata)
		if err != nil || !bytes.Contains(data, []byte(`"subject"`)) {
			continue
		}
		desc := ocispec.Descriptor{MediaType: image.MediaTypeOf(data), Digest: d, Size: b.desc.Size}
		n, err := content.DecodeNode(desc, data)
		if err != nil || n == nil || n.Subject() == nil {
			continue // not a manifest or index with a subject, to any reader
		}
		subject := n.Subject().Digest
		out[subject] = append(out[subject], desc)
	}
	return out, nil
}

// mark adds to marked the digests reachable from roots and, for each
// digest marked, its referrers.
func (s *Store) mark(ctx context.Context, roots []ocispec.Descriptor, blobs map[digest.Digest]blobFile, marked map[digest.Digest]bool, referrers map[digest.Digest][]ocispec.Descriptor) error {
	queue := append([]ocispec.Descriptor(nil), roots...)
	for len(queue) > 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		d := queue[len(queue)-1]
		queue = queue[:len(queue)-1]
		if marked[d.Digest] {
			continue
		}
		marked[d.Digest] = true
		queue = append(queue, referrers[d.Digest]...)
		b, ok := blobs[d.Digest]
		if !ok || b.desc.Size > s.maxMetadata {
			continue // missing, or too large to be a manifest
		}
		mt := d.MediaType
		if !image.IsManifest(mt) && !image.IsIndex(mt) {
			if image.IsLayer(mt) || image.IsConfig(mt) {
				continue
			}
			// An unknown media type: follow it if it reads as a manifest
			// or an index, to keep rather than lose.
			data, err := readCapped(b.path, s.maxMetadata)
			if err != nil {
				continue
			}
			if mt = image.MediaTypeOf(data); !image.IsManifest(mt) && !image.IsIndex(mt) {
				continue
			}
		}
		data, err := readCapped(b.path, s.maxMetadata)
		if err != nil {
			return fmt.Errorf("read %s %s: %w", mt, d.Digest, err)
		}
		children, err := content.SuccessorsOf(ocispec.Descriptor{MediaType: mt, Digest: d.Digest, Size: b.desc.Size}, data)
		if err != nil {
			return fmt.Errorf("%s %s at %s cannot be read, so what it refers to is unknown: %w", mt, d.Digest, b.path, err)
		}
		queue = append(queue, children...)
	}
	return nil
}

// sweepIngests removes unfinished ingests without an open writer and
// abandoned temporary files. It runs under the layout lock, so temporary
// index.json and oci-layout files in the layout root are abandoned too.
func (s *Store) sweepIngests(ctx context.Context, opts GCOptions, rep *GCReport) error {
	now := time.Now()
	root, err := os.ReadDir(s.dir)
	if err != nil {
		return err
	}
	for _, e := range root {
		name := e.Name()
		if e.Type().IsRegular() && strings.HasPrefix(name, ".") && strings.HasSuffix(name, ".tmp") &&
			(strings.HasPrefix(name, "."+indexFile+"-") || strings.HasPrefix(name, "."+layoutFile+"-")) {
			path := s.path(name)
			info, err := e.Info()
			if err != nil {
				continue
			}
			if !opts.DryRun {
				if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
					return err
				}
			}
			rep.Ingests = append(rep.Ingests, Removed{Name: name, Path: path, Size: info.Size()})
			rep.FreedBytes += info.Size()
		}
	}

	dir := s.path(ingestDir)
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range ents {
		if err := ctx.Err(); err != nil {
			return err
		}
		name := e.Name()
		path := filepath.Join(dir, name)
		var lockPath string
		switch {
		case e.IsDir() && content.CheckIngestRef(name) == nil:
			lockPath = filepath.Join(path, ingestData)
		case e.Type().IsRegular() && strings.HasPrefix(name, ".push-"):
			lockPath = path
		default:
			continue // not ours
		}
		r, err := s.sweepIngest(name, path, lockPath, now, opts)
		if err != nil {
			return err
		}
		if r != nil {
			rep.Ingests = append(rep.Ingests, *r)
			rep.FreedBytes += r.Size
		}
	}
	if !opts.DryRun {
		_ = os.Remove(dir) // only succeeds when empty
	}
	return nil
}

// sweepIngest removes one ingest (directory path, data file lockPath) if no
// writer holds it and it is old enough; it returns what it removed.
func (s *Store) sweepIngest(name, path, lockPath string, now time.Time, opts GCOptions) (*Removed, error) {
	f, err := os.Open(lockPath)
	var size int64
	var mtime time.Time
	switch {
	case err == nil:
		defer f.Close()
		if err := tryFlock(f); errors.Is(err, errLocked) {
			return nil, nil // a live writer
		} else if err != nil {
			return nil, err
		}
		fi, err := f.Stat()
		if err != nil {
			return nil, err
		}
		size, mtime = fi.Size(), fi.ModTime()
	case errors.Is(err, fs.ErrNotExist):
		// An ingest directory without data: being created, or left over.
		fi, err := os.Stat(path)
		if err != nil {
			return nil, nil
		}
		mtime = fi.ModTime()
	default:
		return nil, err
	}
	if opts.IngestMinAge > 0 && now.Sub(mtime) < opts.IngestMinAge {
		return nil, nil
	}
	if !opts.DryRun {
		if err := os.RemoveAll(path); err != nil {
			return nil, fmt.Errorf("remove stale ingest %s: %w", path, err)
		}
	}
	return &Removed{Name: name, Path: path, Size: size}, nil
}
