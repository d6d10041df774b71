package storage

import (
	"context"
	_ "crypto/sha256" // register sha256 with go-digest
	_ "crypto/sha512" // register sha512 with go-digest
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lading-oci/lading/internal/atomicfile"

	"github.com/lading-oci/lading/content"
	"github.com/lading-oci/lading/errdef"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

const (
	stateDir    = ".lading"
	sharedBlobs = "blobs"
	uploadsDir  = "uploads"
	tmpDir      = "tmp"
	pinsFile    = "pins"
	lockFile    = "lock"

	layoutFile = ocispec.ImageLayoutFile
	indexFile  = "index.json"
	blobsDir   = ocispec.ImageBlobsDir

	copyBufferSize = 1 << 20
)

// Options configures FS.
type Options struct {
	// ReadOnly refuses every write with ErrReadOnly.
	ReadOnly bool
	// MaxManifestBytes caps manifests (default 4 MiB).
	MaxManifestBytes int64
	// UploadExpiry is how long an upload session may stay idle before
	// ExpireUploads removes it (default 24h).
	UploadExpiry time.Duration
	// PushWindow is how long a blob of a push in flight (uploaded, mounted
	// or confirmed by HEAD, but not yet referenced by a manifest) is
	// protected from GC by the fence (default: UploadExpiry; at least one
	// minute).
	PushWindow time.Duration
	// ManifestCacheBytes bounds the in-memory cache of manifest bytes
	// (default 64 MiB; negative disables it).
	ManifestCacheBytes int64
	// NoSync skips fsync: an acknowledged write can be lost to a power
	// failure (never to a crash of the process). For tests, and for
	// deployments that trade durability for speed.
	NoSync bool
	// Logger receives what the storage notices (default: discard).
	Logger *slog.Logger
}

// FS is the filesystem backend of Registry. It is safe for concurrent use.
// One process at a time serves a root: Open takes a lock under the root.
type FS struct {
	root  string
	state string
	opts  Options
	log   *slog.Logger

	lock    *os.File
	fence   *fence
	mcache  *manifestCache
	started time.Time

	// gcMu serialises collections, and pruning the fence's pins with them.
	gcMu sync.Mutex

	mu      sync.Mutex
	repos   map[string]*fsRepo
	names   []string // sorted, every repository with a layout
	closed  bool
	uploads sync.Map     // id -> *uploadLock
	live    atomic.Int64 // upload sessions kept open between requests
}

var _ Registry = (*FS)(nil)

// ErrLocked means another process serves the root.
var ErrLocked = fmt.Errorf("%w: another process serves this root", errdef.ErrUnavailable)

// Open opens (creating if needed) the registry storage under root. It takes
// an exclusive lock on ROOT/.lading/lock for as long as it is open; a root
// another process holds is ErrLocked.
func Open(ctx context.Context, root string, opts Options) (*FS, error) {
	if opts.MaxManifestBytes <= 0 {
		opts.MaxManifestBytes = content.DefaultMaxMetadataBytes
	}
	if opts.UploadExpiry <= 0 {
		opts.UploadExpiry = 24 * time.Hour
	}
	if opts.PushWindow <= 0 {
		opts.PushWindow = opts.UploadExpiry
	}
	opts.PushWindow = max(opts.PushWindow, time.Minute)
	if opts.ManifestCacheBytes == 0 {
		opts.ManifestCacheBytes = 64 << 20
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("open registry storage %s: %w", root, err)
	}
	s := &FS{
		root: abs, state: filepath.Join(abs, stateDir), opts: opts, log: opts.Logger,
		repos: map[string]*fsRepo{}, started: time.Now(),
		mcache: newManifestCache(opts.ManifestCacheBytes),
	}
	if opts.ReadOnly {
		if _, err := os.Stat(abs); err != nil {
			return nil, fmt.Errorf("open registry storage %s: %w", root, err)
		}
	} else {
		for _, d := range []string{s.state, filepath.Join(s.state, sharedBlobs), filepath.Join(s.state, uploadsDir), filepath.Join(s.state, tmpDir)} {
			if err := os.MkdirAll(d, 0o755); err != nil {
				return nil, fmt.Errorf("open registry storage %s: %w", root, err)
			}
		}
		lf, err := os.OpenFile(filepath.Join(s.state, lockFile), os.O_RDWR|os.O_CREATE, 0o644)
		if err != nil {
			return nil, fmt.Errorf("open registry storage %s: %w", root, err)
		}
		ok, err := tryFlockFile(lf)
		if err != nil || !ok {
			lf.Close()
			if err == nil {
				err = ErrLocked
			}
			return nil, fmt.Errorf("open registry storage %s: %w", root, err)
		}
		s.lock = lf
	}
	j, err := openPinJournal(filepath.Join(s.state, pinsFile), opts.ReadOnly)
	if err != nil {
		s.Close()
		return nil, err
	}
	s.fence = newFence(j)
	if err := s.fence.load(); err != nil {
		s.Close()
		return nil, err
	}
	if err := s.prunePins(); err != nil {
		s.Close()
		return nil, err
	}
	names, err := s.scan(ctx)
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("open registry storage %s: %w", root, err)
	}
	s.names = names
	return s, nil
}

// prunePins forgets the pins that protect nothing while no collection
// runs: uncommitted ones older than the push window, and every committed
// one (a committed pin only guards against a collection that started
// before it). The journal is rewritten.
func (s *FS) prunePins() error {
	if s.opts.ReadOnly {
		return nil
	}
	s.gcMu.Lock()
	defer s.gcMu.Unlock()
	now := time.Now()
	return s.fence.prune(now, now.Add(-s.opts.PushWindow))
}

// Root returns the root directory.
func (s *FS) Root() string { return s.root }

// Close releases the root's lock and closes the upload sessions kept open
// between requests (they stay on disk and resume).
func (s *FS) Close() error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.uploads.Range(func(_, v any) bool {
		l := v.(*uploadLock)
		if l.mu.TryLock() {
			s.dropLive(l)
			l.mu.Unlock()
		}
		return true
	})
	var err error
	if s.fence != nil {
		err = s.fence.journal.close()
	}
	if s.lock != nil {
		unflockFile(s.lock)
		if cerr := s.lock.Close(); err == nil {
			err = cerr
		}
		s.lock = nil
	}
	return err
}

// scan finds every repository under the root: the directories holding an
// oci-layout file, outside the state directory and the layouts' own blobs.
func (s *FS) scan(ctx context.Context) ([]string, error) {
	var names []string
	err := filepath.WalkDir(s.root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) {
				return nil
			}
			return err
		}
		if cerr := ctx.Err(); cerr != nil {
			return cerr
		}
		if !d.IsDir() {
			return nil
		}
		if path == s.root {
			return nil
		}
		base := d.Name()
		if strings.HasPrefix(base, ".") || slices.Contains(ReservedComponents, base) {
			return fs.SkipDir
		}
		if _, err := os.Stat(filepath.Join(path, layoutFile)); err == nil {
			rel, _ := filepath.Rel(s.root, path)
			name := filepath.ToSlash(rel)
			if CheckName(name) == nil {
				names = append(names, name)
			}
		}
		return nil
	})
	sort.Strings(names)
	return names, err
}

// Repositories implements Registry.
func (s *FS) Repositories(ctx context.Context, last string, n int) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := 0
	if last != "" {
		i = sort.SearchStrings(s.names, last)
		if i < len(s.names) && s.names[i] == last {
			i++
		}
	}
	rest := s.names[i:]
	if n >= 0 && n < len(rest) {
		rest = rest[:n]
	}
	return slices.Clone(rest), nil
}

// Repository implements Registry.
func (s *FS) Repository(ctx context.Context, name string, create bool) (Repository, error) {
	r, err := s.repo(ctx, name, create)
	if err != nil {
		return nil, err
	}
	return r, nil
}

func (s *FS) repo(ctx context.Context, name string, create bool) (*fsRepo, error) {
	if err := CheckName(name); err != nil {
		return nil, err
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, errClosed
	}
	r, ok := s.repos[name]
	if !ok {
		r = &fsRepo{fs: s, name: name, dir: filepath.Join(s.root, filepath.FromSlash(name))}
		s.repos[name] = r
	}
	s.mu.Unlock()
	if err := r.open(ctx, create); err != nil {
		// Forget a repository that does not exist, so that requests for
		// made-up names do not grow the map.
		s.mu.Lock()
		if s.repos[name] == r && !r.isLoaded() {
			delete(s.repos, name)
		}
		s.mu.Unlock()
		return nil, err
	}
	return r, nil
}

// added records a repository created on disk.
func (s *FS) added(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := sort.SearchStrings(s.names, name)
	if i < len(s.names) && s.names[i] == name {
		return
	}
	s.names = slices.Insert(s.names, i, name)
}

// sharedPath is where the shared copy of d lives.
func (s *FS) sharedPath(d digest.Digest) string {
	return filepath.Join(s.state, sharedBlobs, d.Algorithm().String(), d.Encoded())
}

// createTemp makes a temporary file on the root's filesystem.
func (s *FS) createTemp(prefix string) (*os.File, error) {
	if s.opts.ReadOnly {
		return nil, ErrReadOnly
	}
	return os.CreateTemp(filepath.Join(s.state, tmpDir), prefix)
}

func (s *FS) sync(f *os.File) error {
	if s.opts.NoSync {
		return nil
	}
	return f.Sync()
}

func (s *FS) syncDir(dir string) error {
	if s.opts.NoSync {
		return nil
	}
	return atomicfile.SyncDir(dir)
}

// linkInto makes dst a hard link to src, creating dst's directory, and
// syncs the directory. An existing dst is kept.
func (s *FS) linkInto(src, dst string) error {
	return s.link(src, dst, true)
}

// link is linkInto, syncing the directory only if sync is set.
func (s *FS) link(src, dst string, sync bool) error {
	err := os.Link(src, dst)
	if errors.Is(err, fs.ErrNotExist) {
		if _, serr := os.Lstat(src); serr != nil {
			return err // the source is gone
		}
		if err = os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		err = os.Link(src, dst)
	}
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err != nil || !sync {
		return err
	}
	return s.syncDir(filepath.Dir(dst))
}

// publish gives repository r the blob d whose verified content is the file
// at tmp (already synced): from the shared copy if there is one, else by
// making tmp the shared copy. It runs under d's fence lock and pins d in r.
//
// The new name is not synced here: a manifest PUT syncs the directories of
// everything it references before it records the manifest, so one
// directory sync makes all of a push's blob names durable, and nothing a
// committed manifest references can be lost to a crash.
func (s *FS) publish(r *fsRepo, d digest.Digest, size int64, tmp string) error {
	dst := r.blobPath(d)
	return s.fence.pin(r.name, d, func() error {
		if fi, err := os.Stat(dst); err == nil {
			if fi.Size() == size {
				s.touch(dst, fi)
				return nil
			}
			// A file of the wrong size under a digest name: replace it.
			s.log.Warn("replacing a blob file whose size does not match its digest", "path", dst, "size", fi.Size(), "want", size)
			if err := os.Remove(dst); err != nil {
				return err
			}
		}
		shared := s.sharedPath(d)
		if fi, err := os.Stat(shared); err == nil && fi.Size() == size {
			if err := s.link(shared, dst, false); err == nil {
				s.touch(dst, fi)
				return nil
			}
		} else if err == nil {
			// A damaged shared copy: replace it with the verified one.
			_ = os.Remove(shared)
		}
		// The shared copy's name is not synced: the repository's link,
		// which is, keeps the data, and GC links a repository blob that
		// has no shared copy back into the shared store.
		if err := s.link(tmp, shared, false); err != nil {
			return fmt.Errorf("store blob %s: %w", d, err)
		}
		if err := s.link(shared, dst, false); err != nil {
			return fmt.Errorf("store blob %s in %s: %w", d, r.name, err)
		}
		return nil
	})
}

// touch sets a blob file's time to now (the grace period counts from it),
// unless it was set within the last minute.
func (s *FS) touch(path string, fi os.FileInfo) {
	now := time.Now()
	if now.Sub(fi.ModTime()) < time.Minute || s.opts.ReadOnly {
		return
	}
	_ = os.Chtimes(path, now, now)
}

// writeTemp writes data to a synced temporary file and returns its path.
func (s *FS) writeTemp(data []byte) (string, error) {
	f, err := s.createTemp(".put-*")
	if err != nil {
		return "", err
	}
	return s.fillTemp(f, data)
}

// fillTemp writes data to the new temporary file f, syncs and closes it and
// returns its path; on failure the file is removed.
func (s *FS) fillTemp(f *os.File, data []byte) (string, error) {
	_, err := f.Write(data)
	if err == nil {
		err = f.Chmod(0o644)
	}
	if err == nil {
		err = s.sync(f)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", err
	}
	return f.Name(), nil
}

// streamTemp copies r into a synced temporary file, verifying it against
// expected (Size -1: any size). It returns the file's path and the
// descriptor of what it holds.
func (s *FS) streamTemp(ctx context.Context, expected ocispec.Descriptor, r io.Reader) (string, ocispec.Descriptor, error) {
	f, err := s.createTemp(".push-*")
	if err != nil {
		return "", ocispec.Descriptor{}, err
	}
	fail := func(err error) (string, ocispec.Descriptor, error) {
		f.Close()
		os.Remove(f.Name())
		return "", ocispec.Descriptor{}, err
	}
	h := expected.Digest.Algorithm().Hash()
	n, err := io.CopyBuffer(io.MultiWriter(f, h), content.ContextReader(ctx, r), make([]byte, copyBufferSize))
	if err != nil {
		return fail(err)
	}
	if expected.Size >= 0 && n != expected.Size {
		return fail(fmt.Errorf("blob %s: %w: got %d bytes, expected %d", expected.Digest, errdef.ErrSizeMismatch, n, expected.Size))
	}
	got := digest.NewDigest(expected.Digest.Algorithm(), h)
	if got != expected.Digest {
		return fail(fmt.Errorf("blob %s: %w: content hashes to %s", expected.Digest, errdef.ErrDigestMismatch, got))
	}
	if err := f.Chmod(0o644); err != nil {
		return fail(err)
	}
	if err := s.sync(f); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		os.Remove(f.Name())
		return "", ocispec.Descriptor{}, err
	}
	return f.Name(), ocispec.Descriptor{MediaType: "application/octet-stream", Digest: got, Size: n}, nil
}

// checkDigest validates a digest naming a blob: well formed, sha256 or
// sha512.
func checkDigest(d digest.Digest) error {
	if err := content.CheckDigest(d); err != nil {
		return err
	}
	switch d.Algorithm() {
	case digest.SHA256, digest.SHA512:
		return nil
	}
	return fmt.Errorf("digest %q: %w: algorithm %s (sha256 and sha512 are)", d, errdef.ErrUnsupported, d.Algorithm())
}

// writeFileAtomic replaces dir/name with data: a synced temporary file
// renamed over it, and the directory synced.
func (s *FS) writeFileAtomic(dir, name string, data []byte) error {
	tmp, err := s.writeTempIn(dir, name, data)
	if err == nil {
		err = s.renameSynced(tmp, dir, name)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}

// writeTempIn writes data to a synced temporary file in dir, named after
// name (the names the embedded layout store's GC knows to be temporary).
func (s *FS) writeTempIn(dir, name string, data []byte) (string, error) {
	f, err := os.CreateTemp(dir, "."+name+"-*.tmp")
	if err != nil {
		return "", err
	}
	return s.fillTemp(f, data)
}

// renameSynced renames tmp to dir/name and syncs dir.
func (s *FS) renameSynced(tmp, dir, name string) error {
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		return err
	}
	return s.syncDir(dir)
}

// layoutHeader is the content of the oci-layout file.
var layoutHeader, _ = json.Marshal(ocispec.ImageLayout{Version: ocispec.ImageLayoutVersion})
