package storage

import (
	"context"
	"crypto/rand"
	"encoding"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/lading-oci/lading/content"
	"github.com/lading-oci/lading/errdef"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

const (
	uploadData  = "data"
	uploadState = "state"
)

// uploadStateFile is the state of an upload session, rewritten in place at
// the end of every request that wrote: the offset and the hash's state at
// that offset, so that resuming or finishing never reads the data again.
// It is read with a JSON decoder that stops after the first value, so a
// shorter state written over a longer one needs no truncation. A state torn
// by a power failure either fails to decode (the session is gone, and the
// client starts again) or disagrees with the data, which Commit's digest
// check refuses: it can never name a blob wrongly.
type uploadStateFile struct {
	Repository string    `json:"repository"`
	Algorithm  string    `json:"algorithm"`
	Started    time.Time `json:"started"`
	Offset     int64     `json:"offset"`
	HashState  []byte    `json:"hashState"`
}

// uploadLock serialises the requests on one session in this process. Between
// requests it keeps the session open (live), so the next request on it
// neither reads the state back nor reopens its files.
type uploadLock struct {
	mu   sync.Mutex
	live *fsUpload
}

// maxLiveUploads bounds the sessions kept open between requests (two file
// descriptors each); beyond it a session is closed and resumed from disk.
const maxLiveUploads = 512

type fsUpload struct {
	fs    *FS
	id    string
	dir   string
	lock  *uploadLock
	st    uploadStateFile
	alg   digest.Algorithm
	f     *os.File // the data
	sf    *os.File // the state
	h     hash.Hash
	ended bool
	dirty bool // written since the state was saved: Close saves it
}

var _ Upload = (*fsUpload)(nil)

func (u *fsUpload) ID() string           { return u.id }
func (u *fsUpload) Repository() string   { return u.st.Repository }
func (u *fsUpload) Offset() int64        { return u.st.Offset }
func (u *fsUpload) StartedAt() time.Time { return u.st.Started }

func (s *FS) uploadDir(id string) string { return filepath.Join(s.state, uploadsDir, id) }

func (s *FS) uploadLock(id string) *uploadLock {
	l, _ := s.uploads.LoadOrStore(id, &uploadLock{})
	return l.(*uploadLock)
}

func validUploadID(id string) bool {
	if len(id) != 32 {
		return false
	}
	_, err := hex.DecodeString(id)
	return err == nil
}

// NewUpload implements Registry.
func (s *FS) NewUpload(ctx context.Context, repo string, alg digest.Algorithm) (Upload, error) {
	if s.opts.ReadOnly {
		return nil, ErrReadOnly
	}
	if err := CheckName(repo); err != nil {
		return nil, err
	}
	if alg == "" {
		alg = digest.Canonical
	}
	if alg != digest.SHA256 && alg != digest.SHA512 {
		return nil, fmt.Errorf("start upload: %w: digest algorithm %q (sha256 and sha512 are)", errdef.ErrUnsupported, alg)
	}
	var b [16]byte
	_, _ = rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	dir := s.uploadDir(id)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("start upload: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, uploadData), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("start upload: %w", err)
	}
	sf, err := os.OpenFile(filepath.Join(dir, uploadState), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		f.Close()
		os.RemoveAll(dir)
		return nil, fmt.Errorf("start upload: %w", err)
	}
	l := s.uploadLock(id)
	l.mu.Lock()
	u := &fsUpload{fs: s, id: id, dir: dir, lock: l, alg: alg, f: f, sf: sf, h: alg.Hash(),
		st: uploadStateFile{Repository: repo, Algorithm: string(alg), Started: time.Now().UTC()}}
	if err := u.saveState(); err != nil {
		u.discard()
		return nil, fmt.Errorf("start upload: %w", err)
	}
	return u, nil
}

// Upload implements Registry.
func (s *FS) Upload(ctx context.Context, repo, id string) (Upload, error) {
	if !validUploadID(id) {
		return nil, errNotFound("upload %q", id)
	}
	l := s.uploadLock(id)
	l.mu.Lock()
	if u := l.live; u != nil {
		if u.st.Repository != repo {
			l.mu.Unlock()
			return nil, errNotFound("upload %s in %s", id, repo)
		}
		if s.opts.ReadOnly {
			l.mu.Unlock()
			return nil, ErrReadOnly
		}
		l.live = nil
		s.live.Add(-1)
		u.lock = l
		return u, nil
	}
	u, err := s.resume(repo, id, l)
	if err != nil {
		l.mu.Unlock()
		return nil, err
	}
	return u, nil
}

// dropLive closes the session l keeps open between requests, if any; the
// caller holds l.mu.
func (s *FS) dropLive(l *uploadLock) {
	if u := l.live; u != nil {
		l.live = nil
		s.live.Add(-1)
		u.closeFiles()
	}
}

// resume loads a session from disk: its state, and its data file cut back
// to the state's offset (bytes written after the state was saved are not
// covered by the saved hash). A state that claims more than the data holds
// (a power failure) is rebuilt by hashing the data.
func (s *FS) resume(repo, id string, l *uploadLock) (*fsUpload, error) {
	dir := s.uploadDir(id)
	flag := os.O_RDWR
	if s.opts.ReadOnly {
		flag = os.O_RDONLY
	}
	sf, err := os.OpenFile(filepath.Join(dir, uploadState), flag, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, errNotFound("upload %s", id)
	}
	if err != nil {
		return nil, fmt.Errorf("upload %s: %w", id, err)
	}
	var st uploadStateFile
	if err := json.NewDecoder(io.LimitReader(sf, 1<<20)).Decode(&st); err != nil {
		sf.Close()
		return nil, fmt.Errorf("upload %s: state: %w: %v", id, errdef.ErrInvalid, err)
	}
	if st.Repository != repo {
		sf.Close()
		return nil, errNotFound("upload %s in %s", id, repo)
	}
	alg := digest.Algorithm(st.Algorithm)
	if !alg.Available() {
		sf.Close()
		return nil, fmt.Errorf("upload %s: state: %w: algorithm %q", id, errdef.ErrInvalid, st.Algorithm)
	}
	if s.opts.ReadOnly {
		sf.Close()
		return nil, ErrReadOnly
	}
	f, err := os.OpenFile(filepath.Join(dir, uploadData), os.O_RDWR, 0)
	if err != nil {
		sf.Close()
		if errors.Is(err, fs.ErrNotExist) {
			return nil, errNotFound("upload %s: no data", id)
		}
		return nil, fmt.Errorf("upload %s: %w", id, err)
	}
	u := &fsUpload{fs: s, id: id, dir: dir, lock: l, st: st, alg: alg, f: f, sf: sf, h: alg.Hash()}
	fi, err := f.Stat()
	if err != nil {
		u.closeFiles()
		return nil, fmt.Errorf("upload %s: %w", id, err)
	}
	um, ok := u.h.(encoding.BinaryUnmarshaler)
	if fi.Size() >= st.Offset && ok && um.UnmarshalBinary(st.HashState) == nil {
		if fi.Size() > st.Offset {
			if err := f.Truncate(st.Offset); err != nil {
				u.closeFiles()
				return nil, fmt.Errorf("upload %s: %w", id, err)
			}
		}
	} else {
		u.h = alg.Hash()
		n, err := io.CopyBuffer(u.h, f, make([]byte, copyBufferSize))
		if err != nil {
			u.closeFiles()
			return nil, fmt.Errorf("upload %s: re-hash: %w", id, err)
		}
		u.st.Offset = n
		if err := u.saveState(); err != nil {
			u.closeFiles()
			return nil, fmt.Errorf("upload %s: %w", id, err)
		}
	}
	if _, err := f.Seek(u.st.Offset, io.SeekStart); err != nil {
		u.closeFiles()
		return nil, fmt.Errorf("upload %s: %w", id, err)
	}
	return u, nil
}

func (u *fsUpload) saveState() error {
	m, ok := u.h.(encoding.BinaryMarshaler)
	if !ok {
		return fmt.Errorf("%w: hash state of %s cannot be saved", errdef.ErrUnsupported, u.alg)
	}
	hs, err := m.MarshalBinary()
	if err != nil {
		return err
	}
	u.st.HashState = hs
	data, _ := json.Marshal(u.st)
	_, err = u.sf.WriteAt(data, 0)
	return err
}

// closeFiles closes the session's files.
func (u *fsUpload) closeFiles() {
	if u.f != nil {
		u.f.Close()
		u.f = nil
	}
	if u.sf != nil {
		u.sf.Close()
		u.sf = nil
	}
}

// countWriter writes to the data file and the hash, counting.
type countWriter struct {
	u *fsUpload
	n int64
}

func (w *countWriter) Write(p []byte) (int, error) {
	n, err := w.u.f.Write(p)
	w.u.h.Write(p[:n])
	w.n += int64(n)
	return n, err
}

// Append implements Upload. The state on disk follows at Close.
func (u *fsUpload) Append(ctx context.Context, r io.Reader, start, size int64) (int64, error) {
	if u.ended {
		return u.st.Offset, fmt.Errorf("upload %s: %w: ended", u.id, errdef.ErrInvalid)
	}
	if start >= 0 && start != u.st.Offset {
		return u.st.Offset, fmt.Errorf("upload %s: chunk starts at %d, the upload holds %d bytes: %w", u.id, start, u.st.Offset, ErrOutOfOrder)
	}
	src := content.ContextReader(ctx, r)
	if size >= 0 {
		src = io.LimitReader(src, size)
	}
	w := &countWriter{u: u}
	_, err := io.CopyBuffer(w, src, make([]byte, copyBufferSize))
	u.st.Offset += w.n
	u.dirty = u.dirty || w.n > 0
	if err != nil {
		return u.st.Offset, fmt.Errorf("upload %s: %w", u.id, err)
	}
	if size >= 0 && w.n != size {
		return u.st.Offset, fmt.Errorf("upload %s: %w: chunk has %d bytes, expected %d", u.id, errdef.ErrSizeMismatch, w.n, size)
	}
	return u.st.Offset, nil
}

// Commit implements Upload.
func (u *fsUpload) Commit(ctx context.Context, expected digest.Digest, size int64) (ocispec.Descriptor, error) {
	if u.ended {
		return ocispec.Descriptor{}, fmt.Errorf("upload %s: %w: ended", u.id, errdef.ErrInvalid)
	}
	if err := checkDigest(expected); err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("finish upload %s: %w", u.id, err)
	}
	defer u.discard()
	if size >= 0 && size != u.st.Offset {
		return ocispec.Descriptor{}, fmt.Errorf("finish upload %s as %s: %w: %d bytes uploaded, %d declared", u.id, expected, errdef.ErrSizeMismatch, u.st.Offset, size)
	}
	var got digest.Digest
	if expected.Algorithm() == u.alg {
		got = digest.NewDigest(u.alg, u.h)
	} else {
		h := expected.Algorithm().Hash()
		if _, err := io.CopyBuffer(h, io.NewSectionReader(u.f, 0, u.st.Offset), make([]byte, copyBufferSize)); err != nil {
			return ocispec.Descriptor{}, fmt.Errorf("finish upload %s: %w", u.id, err)
		}
		got = digest.NewDigest(expected.Algorithm(), h)
	}
	if got != expected {
		return ocispec.Descriptor{}, fmt.Errorf("finish upload %s as %s: %w: content hashes to %s", u.id, expected, errdef.ErrDigestMismatch, got)
	}
	if err := u.f.Chmod(0o644); err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("finish upload %s: %w", u.id, err)
	}
	if err := u.fs.sync(u.f); err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("finish upload %s: %w", u.id, err)
	}
	r, err := u.fs.repo(ctx, u.st.Repository, true)
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("finish upload %s: %w", u.id, err)
	}
	if err := u.fs.publish(r, expected, u.st.Offset, u.f.Name()); err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("finish upload %s: %w", u.id, err)
	}
	return ocispec.Descriptor{MediaType: "application/octet-stream", Digest: expected, Size: u.st.Offset}, nil
}

// Cancel implements Upload.
func (u *fsUpload) Cancel(ctx context.Context) error {
	if u.ended {
		return nil
	}
	return u.discard()
}

// discard ends the session: its directory is removed.
func (u *fsUpload) discard() error {
	u.ended = true
	u.closeFiles()
	if err := os.RemoveAll(u.dir); err != nil {
		return fmt.Errorf("upload %s: %w", u.id, err)
	}
	return nil
}

// Close implements Upload: the session's state is saved (once per
// request, however many writes it made) and the session released. A
// session that goes on stays open for its next request, up to
// maxLiveUploads of them.
func (u *fsUpload) Close() error {
	var err error
	if u.dirty && !u.ended {
		err = u.saveState()
		u.dirty = false
	}
	l := u.lock
	if l == nil {
		u.closeFiles()
		return err
	}
	u.lock = nil
	u.fs.mu.Lock()
	closed := u.fs.closed
	u.fs.mu.Unlock()
	switch {
	case u.ended || closed:
		u.closeFiles()
		if u.ended {
			u.fs.uploads.Delete(u.id)
		}
	case err == nil && u.fs.live.Add(1) <= maxLiveUploads:
		l.live = u
	default:
		if err == nil {
			u.fs.live.Add(-1)
		}
		u.closeFiles()
	}
	l.mu.Unlock()
	return err
}

// ExpireUploads implements Registry.
func (s *FS) ExpireUploads(ctx context.Context) (int, error) {
	if s.opts.ReadOnly {
		return 0, nil
	}
	n, err := s.expireUploads(ctx, time.Now().Add(-s.opts.UploadExpiry), false)
	if err != nil {
		return n, err
	}
	// The fence's pins are pruned on the same schedule, so they do not
	// pile up where garbage is never collected.
	return n, s.prunePins()
}

// expireUploads removes sessions whose last write is before cutoff and
// that no request holds.
func (s *FS) expireUploads(ctx context.Context, cutoff time.Time, dryRun bool) (int, error) {
	dir := filepath.Join(s.state, uploadsDir)
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("expire uploads: %w", err)
	}
	n := 0
	for _, e := range ents {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		id := e.Name()
		if !validUploadID(id) || !e.IsDir() {
			continue
		}
		l := s.uploadLock(id)
		if !l.mu.TryLock() {
			continue // in use
		}
		path := s.uploadDir(id)
		fi, err := os.Stat(filepath.Join(path, uploadState))
		if err != nil {
			fi, err = os.Stat(path)
		}
		if err == nil && fi.ModTime().Before(cutoff) {
			if !dryRun {
				s.dropLive(l)
				if err := os.RemoveAll(path); err != nil {
					s.log.Warn("cannot remove an expired upload", "upload", id, "error", err)
				}
				s.uploads.Delete(id)
			}
			n++
		}
		l.mu.Unlock()
	}
	return n, nil
}
