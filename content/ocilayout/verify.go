package ocilayout

import (
	"context"
	"errors"
	"fmt"
	"github.com/lading-oci/lading/progress"
	"io"
	"io/fs"
	"os"
	"runtime"
	"sort"
	"strings"
	"sync"

	"github.com/lading-oci/lading/content"
	"github.com/lading-oci/lading/errdef"
	"github.com/lading-oci/lading/image"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// VerifyOptions tunes Verify.
type VerifyOptions struct {
	// Workers is how many blobs are hashed at once; 0 means one per CPU
	// (runtime.GOMAXPROCS).
	Workers int
	// Progress, when set, receives an event per blob hashed.
	Progress progress.Func
}

// Problem is one thing wrong with a layout.
type Problem struct {
	// Digest names the blob concerned; empty for oci-layout and index.json.
	Digest digest.Digest
	// Path is the file concerned, inside the layout directory.
	Path string
	// Parent names what refers to the blob ("index.json" or a document's
	// digest) when the problem is with the reference: a missing blob, a size
	// that differs from the descriptor's.
	Parent string
	// Err says what is wrong. It matches errdef.ErrDigestMismatch,
	// ErrSizeMismatch, ErrNotFound, ErrInvalid, ErrUnsupported or
	// ErrTooLarge.
	Err error
}

// String renders the problem on one line (validation problems may add
// further lines, one per broken rule).
func (p Problem) String() string {
	var b strings.Builder
	b.WriteString(p.Path)
	if p.Digest != "" || p.Parent != "" {
		b.WriteString(" (")
		b.WriteString(string(p.Digest))
		if p.Parent != "" {
			if p.Digest != "" {
				b.WriteString(", ")
			}
			b.WriteString("referenced by ")
			b.WriteString(p.Parent)
		}
		b.WriteString(")")
	}
	b.WriteString(": ")
	b.WriteString(p.Err.Error())
	return b.String()
}

// VerifyReport is the outcome of Verify.
type VerifyReport struct {
	// Blobs and Bytes count the blobs hashed and their total size.
	Blobs int64
	Bytes int64
	// Documents counts the manifests, indexes and configurations parsed.
	Documents int
	// Problems lists everything found wrong, sorted by path.
	Problems []Problem
	// Warnings lists what is wrong but does not stop lading from reading
	// the layout (rules the specification states as SHOULD, annotation
	// values; see image.Warnings), sorted by path.
	Warnings []Problem
}

// OK reports whether no problem was found.
func (r *VerifyReport) OK() bool { return len(r.Problems) == 0 }

// Err returns nil if the layout is sound, or an error listing every
// problem, which matches each problem's category with errors.Is.
func (r *VerifyReport) Err() error {
	if r.OK() {
		return nil
	}
	errs := make([]error, len(r.Problems))
	for i, p := range r.Problems {
		errs[i] = problemError{p}
	}
	return errors.Join(errs...)
}

type problemError struct{ p Problem }

func (e problemError) Error() string { return e.p.String() }
func (e problemError) Unwrap() error { return e.p.Err }

// Verify checks the whole layout and reports every problem it finds:
//   - oci-layout and index.json are valid;
//   - every file under blobs/ hashes to its name (hashed in parallel,
//     streaming);
//   - every descriptor reachable from index.json (through indexes,
//     manifests, configs, layers and subjects) names a present blob of the
//     declared size;
//   - every reachable manifest, index and configuration can be read (what
//     the readers tolerate is listed in Warnings), and each image
//     configuration lists as many rootfs.diff_ids as its manifest has
//     layers;
//   - every reachable digest is of an algorithm lading can verify.
//
// The error return is for failures to do the check (an unreadable
// directory, a cancelled ctx), not for problems found.
func (s *Store) Verify(ctx context.Context, opts VerifyOptions) (*VerifyReport, error) {
	rep := &VerifyReport{}
	var mu sync.Mutex
	add := func(p Problem) {
		mu.Lock()
		rep.Problems = append(rep.Problems, p)
		mu.Unlock()
	}
	warn := func(p Problem) {
		mu.Lock()
		rep.Warnings = append(rep.Warnings, p)
		mu.Unlock()
	}

	workers := opts.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	jobs := make(chan blobFile, workers*4)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			buf := make([]byte, copyBufferSize)
			for b := range jobs {
				id := b.desc.Digest.String()
				opts.Progress.Start(id, "blob", b.desc.Size)
				n, err := hashFile(ctx, b, buf, opts.Progress)
				opts.Progress.Finish(id, "blob", n, b.desc.Size, err)
				mu.Lock()
				rep.Blobs++
				rep.Bytes += n
				mu.Unlock()
				if err != nil && ctx.Err() == nil {
					add(Problem{Digest: b.desc.Digest, Path: b.path, Err: err})
				}
			}
		})
	}
	// The graph is checked while the workers hash.
	var graphErr error
	graphDone := make(chan struct{})
	go func() {
		defer close(graphDone)
		graphErr = s.verifyGraph(ctx, rep, add, warn)
	}()
	walkErr := s.walkBlobs(ctx, func(b blobFile) error {
		select {
		case jobs <- b:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	close(jobs)
	wg.Wait()
	<-graphDone
	if err := errors.Join(walkErr, graphErr, ctx.Err()); err != nil {
		return nil, fmt.Errorf("verify layout %s: %w", s.dir, err)
	}
	sort.SliceStable(rep.Problems, func(i, j int) bool { return rep.Problems[i].Path < rep.Problems[j].Path })
	sort.SliceStable(rep.Warnings, func(i, j int) bool { return rep.Warnings[i].Path < rep.Warnings[j].Path })
	return rep, nil
}

// hashFile checks that the file b hashes to its name, returning how many
// bytes it read.
func hashFile(ctx context.Context, b blobFile, buf []byte, pf progress.Func) (int64, error) {
	f, err := os.Open(b.path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	h := b.desc.Digest.Algorithm().Hash()
	var r io.Reader = content.ContextReader(ctx, f)
	if pf != nil {
		r = pf.Reader(r, b.desc.Digest.String(), "blob", b.desc.Size)
	}
	n, err := io.CopyBuffer(h, r, buf)
	if err != nil {
		return n, err
	}
	if got := digest.NewDigest(b.desc.Digest.Algorithm(), h); got != b.desc.Digest {
		return n, fmt.Errorf("%w: content (%d bytes) hashes to %s", errdef.ErrDigestMismatch, n, got)
	}
	return n, nil
}

// verifyGraph checks oci-layout, index.json and everything reachable. It
// reads documents the way every reader in lading does (content.DecodeNode,
// image.DecodeConfig): what they refuse is a problem, what they tolerate is
// a warning.
func (s *Store) verifyGraph(ctx context.Context, rep *VerifyReport, add, warn func(Problem)) error {
	layoutPath := s.path(layoutFile)
	if data, err := readCapped(layoutPath, maxLayoutBytes); err != nil {
		add(Problem{Path: layoutPath, Err: err})
	} else if err := image.ValidateLayoutHeader(data); err != nil {
		add(Problem{Path: layoutPath, Err: err})
	}
	indexPath := s.path(indexFile)
	data, err := readCapped(indexPath, maxIndexBytes)
	if err != nil {
		add(Problem{Path: indexPath, Err: err})
		return nil
	}
	var warnings image.ValidationErrors
	idx, err := image.DecodeIndex(data, image.Warnings(&warnings))
	if len(warnings) > 0 {
		warn(Problem{Path: indexPath, Err: warnings})
	}
	if err != nil {
		add(Problem{Path: indexPath, Err: err})
		return nil
	}

	type edge struct {
		desc   ocispec.Descriptor
		parent string
	}
	var queue []edge
	for _, d := range idx.Manifests {
		queue = append(queue, edge{d, indexFile})
	}
	if idx.Subject != nil {
		queue = append(queue, edge{*idx.Subject, indexFile})
	}
	seen := map[digest.Digest]bool{}
	for len(queue) > 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		e := queue[0]
		queue = queue[1:]
		d := e.desc
		if err := content.CheckDigest(d.Digest); err != nil {
			// The document that holds it decoded, so the digest matches the
			// grammar: its algorithm is one lading cannot verify.
			add(Problem{Digest: d.Digest, Parent: e.parent, Err: fmt.Errorf("cannot verify the blob: %w", err)})
			continue
		}
		path := s.blobPath(d.Digest)
		fi, err := os.Stat(path)
		if errors.Is(err, fs.ErrNotExist) {
			add(Problem{Digest: d.Digest, Path: path, Parent: e.parent, Err: fmt.Errorf("%w: blob is missing", errdef.ErrNotFound)})
			continue
		}
		if err != nil {
			add(Problem{Digest: d.Digest, Path: path, Parent: e.parent, Err: err})
			continue
		}
		if fi.Size() != d.Size {
			add(Problem{Digest: d.Digest, Path: path, Parent: e.parent,
				Err: fmt.Errorf("%w: blob has %d bytes, descriptor says %d", errdef.ErrSizeMismatch, fi.Size(), d.Size)})
			continue
		}
		if seen[d.Digest] {
			continue
		}
		seen[d.Digest] = true
		mt := d.MediaType
		if !image.IsManifest(mt) && !image.IsIndex(mt) && !image.IsConfig(mt) {
			continue
		}
		if d.Size > s.maxMetadata {
			add(Problem{Digest: d.Digest, Path: path, Parent: e.parent,
				Err: fmt.Errorf("%w: %s of %d bytes exceeds the %d-byte limit for metadata", errdef.ErrTooLarge, mt, d.Size, s.maxMetadata)})
			continue
		}
		doc, err := readCapped(path, s.maxMetadata)
		if err != nil {
			add(Problem{Digest: d.Digest, Path: path, Err: err})
			continue
		}
		rep.Documents++
		if image.IsConfig(mt) {
			var warnings image.ValidationErrors
			if _, err := image.DecodeConfig(doc, image.Warnings(&warnings)); err != nil {
				add(Problem{Digest: d.Digest, Path: path, Err: err})
			}
			if len(warnings) > 0 {
				warn(Problem{Digest: d.Digest, Path: path, Err: warnings})
			}
			continue
		}
		n, err := content.DecodeNode(d, doc)
		if err != nil {
			add(Problem{Digest: d.Digest, Path: path, Err: err})
			continue
		}
		if len(n.Warnings) > 0 {
			warn(Problem{Digest: d.Digest, Path: path, Err: n.Warnings})
		}
		parent := string(d.Digest)
		for _, c := range n.Successors() {
			queue = append(queue, edge{c, parent})
		}
		if n.Manifest != nil {
			if p, ok := s.checkDiffIDs(d, path, *n.Manifest); !ok {
				add(p)
			}
		}
	}
	return nil
}

// checkDiffIDs compares the layer count of manifest m (at path) with the
// rootfs.diff_ids of its image configuration, when that is present and
// readable; other problems with the configuration are reported on their own.
func (s *Store) checkDiffIDs(d ocispec.Descriptor, path string, m ocispec.Manifest) (Problem, bool) {
	if !image.IsConfig(m.Config.MediaType) || content.CheckDigest(m.Config.Digest) != nil || m.Config.Size > s.maxMetadata {
		return Problem{}, true
	}
	data, err := readCapped(s.blobPath(m.Config.Digest), s.maxMetadata)
	if err != nil {
		return Problem{}, true
	}
	cfg, err := image.DecodeConfig(data)
	if err != nil {
		return Problem{}, true
	}
	if n := len(cfg.RootFS.DiffIDs); n != len(m.Layers) {
		return Problem{Digest: d.Digest, Path: path, Err: fmt.Errorf("%w: manifest has %d layers but its config %s lists %d rootfs.diff_ids",
			errdef.ErrInvalid, len(m.Layers), m.Config.Digest, n)}, false
	}
	return Problem{}, true
}
