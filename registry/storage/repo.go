package storage

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/lading-oci/lading/errdef"
	"github.com/lading-oci/lading/image"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// maxIndexBytes caps how much of a repository's index.json is read.
const maxIndexBytes = 256 << 20

// fsRepo is a repository of FS: an OCI image layout with its index.json
// mirrored in memory. Changes are applied to the mirror and then made
// durable by one index.json rewrite for all the changes waiting
// (flush), under the layout's flock; a change made meanwhile by another
// process is noticed by the file's identity and merged by replaying the
// changes not yet written over the file's content.
type fsRepo struct {
	fs   *FS
	name string
	dir  string

	openMu sync.Mutex
	loaded bool

	mu        sync.RWMutex
	header    indexHeader
	tags      map[string]*tagEntry
	tagList   []string // sorted
	manifests map[digest.Digest]*manifestInfo
	foreign   []ocispec.Descriptor // entries with unusable digests, kept as they are
	pending   []pendingOp
	seq       uint64
	refLoaded bool
	referrers map[digest.Digest]map[digest.Digest]struct{}

	flushMu  sync.Mutex
	durable  uint64
	failures []flushFailure
	diskID   fileID
	checked  atomic.Int64
}

var _ Repository = (*fsRepo)(nil)

type indexHeader struct {
	ArtifactType string              `json:"artifactType,omitempty"`
	Subject      *ocispec.Descriptor `json:"subject,omitempty"`
	Annotations  map[string]string   `json:"annotations,omitempty"`
}

type indexFileJSON struct {
	SchemaVersion int                  `json:"schemaVersion"`
	MediaType     string               `json:"mediaType,omitempty"`
	Manifests     []ocispec.Descriptor `json:"manifests"`
	indexHeader
}

type tagEntry struct {
	desc ocispec.Descriptor // the index.json entry, ref.name included
	json []byte
}

type manifestInfo struct {
	desc    ocispec.Descriptor // media type, digest, size
	entry   []byte             // JSON of its untagged index.json entry
	ntags   int
	parsed  bool // subject, artifactType and annotations are known
	subject digest.Digest
	artType string
	annots  map[string]string
}

type opKind int

const (
	opPut opKind = iota
	opTag
	opUntag
	opDelete
)

type pendingOp struct {
	seq  uint64
	kind opKind
	tag  string
	desc ocispec.Descriptor
	info *manifestInfo
	// ready, if set, must yield nil before index.json records the op: the
	// syncs that make what it references durable, which run meanwhile.
	ready <-chan error
}

type flushFailure struct {
	from, to uint64
	err      error
}

type fileID struct {
	dev, ino uint64
	size     int64
	mtime    int64
}

func idOf(fi os.FileInfo) fileID {
	id := fileID{size: fi.Size(), mtime: fi.ModTime().UnixNano()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		id.dev, id.ino = uint64(st.Dev), uint64(st.Ino)
	}
	return id
}

func (r *fsRepo) Name() string { return r.name }

func (r *fsRepo) blobPath(d digest.Digest) string {
	return filepath.Join(r.dir, blobsDir, d.Algorithm().String(), d.Encoded())
}

// open loads the repository, creating its layout if create is set.
func (r *fsRepo) open(ctx context.Context, create bool) error {
	r.openMu.Lock()
	defer r.openMu.Unlock()
	if r.loaded {
		return nil
	}
	if _, err := os.Stat(filepath.Join(r.dir, layoutFile)); err != nil {
		if !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, syscall.ENOTDIR) {
			return fmt.Errorf("repository %s: %w", r.name, err)
		}
		if !create {
			return errNotFound("repository %s", r.name)
		}
		if r.fs.opts.ReadOnly {
			return fmt.Errorf("create repository %s: %w", r.name, ErrReadOnly)
		}
		if err := r.create(); err != nil {
			return fmt.Errorf("create repository %s: %w", r.name, err)
		}
	}
	idx, id, err := r.readIndexFile()
	if err != nil {
		return fmt.Errorf("repository %s: %w", r.name, err)
	}
	r.mu.Lock()
	r.rebuildLocked(idx)
	r.mu.Unlock()
	r.diskID = id
	r.checked.Store(time.Now().UnixNano())
	r.loaded = true
	r.fs.added(r.name)
	return nil
}

func (r *fsRepo) isLoaded() bool {
	r.openMu.Lock()
	defer r.openMu.Unlock()
	return r.loaded
}

// create makes the layout: blobs/, index.json and oci-layout, under the
// layout lock.
func (r *fsRepo) create() error {
	if err := os.MkdirAll(filepath.Join(r.dir, blobsDir), 0o755); err != nil {
		return err
	}
	return r.withLayoutLock(func() error {
		if _, err := os.Stat(filepath.Join(r.dir, indexFile)); errors.Is(err, fs.ErrNotExist) {
			if err := r.fs.writeFileAtomic(r.dir, indexFile, []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}`)); err != nil {
				return err
			}
		}
		if _, err := os.Stat(filepath.Join(r.dir, layoutFile)); errors.Is(err, fs.ErrNotExist) {
			if err := r.fs.writeFileAtomic(r.dir, layoutFile, layoutHeader); err != nil {
				return err
			}
		}
		return nil
	})
}

// withLayoutLock runs fn holding the exclusive flock on the layout
// directory, the lock lading's embedded store takes for index.json.
func (r *fsRepo) withLayoutLock(fn func() error) error {
	d, err := os.Open(r.dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := flockFile(d, true); err != nil {
		return fmt.Errorf("lock layout %s: %w", r.dir, err)
	}
	defer unflockFile(d)
	return fn()
}

func (r *fsRepo) readIndexFile() (indexFileJSON, fileID, error) {
	var idx indexFileJSON
	f, err := os.Open(filepath.Join(r.dir, indexFile))
	if err != nil {
		return idx, fileID{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return idx, fileID{}, err
	}
	data, err := io.ReadAll(io.LimitReader(f, maxIndexBytes+1))
	if err != nil {
		return idx, fileID{}, err
	}
	if len(data) > maxIndexBytes {
		return idx, fileID{}, fmt.Errorf("%s: %w: larger than %d bytes", f.Name(), errdef.ErrTooLarge, maxIndexBytes)
	}
	if err := json.Unmarshal(data, &idx); err != nil {
		return idx, fileID{}, fmt.Errorf("%s: %w: %v", f.Name(), errdef.ErrInvalid, err)
	}
	if idx.SchemaVersion != 2 {
		return idx, fileID{}, fmt.Errorf("%s: %w: schemaVersion %d, want 2", f.Name(), errdef.ErrInvalid, idx.SchemaVersion)
	}
	return idx, idOf(fi), nil
}

// rebuildLocked replaces the mirror with idx's content.
func (r *fsRepo) rebuildLocked(idx indexFileJSON) {
	old := r.manifests
	r.header = idx.indexHeader
	r.tags = map[string]*tagEntry{}
	r.manifests = map[digest.Digest]*manifestInfo{}
	r.foreign = nil
	for _, d := range idx.Manifests {
		if d.Digest.Validate() != nil {
			r.foreign = append(r.foreign, d)
			continue
		}
		m := r.manifests[d.Digest]
		if m == nil {
			m = &manifestInfo{desc: ocispec.Descriptor{MediaType: d.MediaType, Digest: d.Digest, Size: d.Size}}
			if o := old[d.Digest]; o != nil && o.parsed {
				m.parsed, m.subject, m.artType, m.annots = true, o.subject, o.artType, o.annots
			}
			r.manifests[d.Digest] = m
		}
		if tag := d.Annotations[ocispec.AnnotationRefName]; tag != "" {
			if prev := r.tags[tag]; prev != nil {
				r.manifests[prev.desc.Digest].ntags--
			}
			data, _ := json.Marshal(d)
			r.tags[tag] = &tagEntry{desc: d, json: data}
			m.ntags++
		} else if m.entry == nil {
			m.entry, _ = json.Marshal(d)
		}
	}
	r.tagList = make([]string, 0, len(r.tags))
	for t := range r.tags {
		r.tagList = append(r.tagList, t)
	}
	sort.Strings(r.tagList)
	r.refLoaded = false
	r.referrers = nil
	for _, p := range r.pending {
		_ = r.applyLocked(p)
	}
}

func untaggedEntry(desc ocispec.Descriptor) []byte {
	data, _ := json.Marshal(ocispec.Descriptor{MediaType: desc.MediaType, Digest: desc.Digest, Size: desc.Size})
	return data
}

// applyLocked applies one change to the mirror.
func (r *fsRepo) applyLocked(p pendingOp) error {
	switch p.kind {
	case opPut:
		m := r.manifests[p.info.desc.Digest]
		if m == nil {
			m = &manifestInfo{}
			*m = *p.info
			m.ntags = 0
			if m.entry == nil {
				m.entry = untaggedEntry(m.desc)
			}
			r.manifests[m.desc.Digest] = m
			r.addReferrerLocked(m)
		}
	case opTag:
		m := r.manifests[p.desc.Digest]
		if m == nil {
			m = &manifestInfo{desc: ocispec.Descriptor{MediaType: p.desc.MediaType, Digest: p.desc.Digest, Size: p.desc.Size}}
			m.entry = untaggedEntry(m.desc)
			r.manifests[m.desc.Digest] = m
		}
		if prev := r.tags[p.tag]; prev != nil {
			if pm := r.manifests[prev.desc.Digest]; pm != nil {
				pm.ntags--
			}
		} else {
			i, _ := slices.BinarySearch(r.tagList, p.tag)
			r.tagList = slices.Insert(r.tagList, i, p.tag)
		}
		entry := ocispec.Descriptor{MediaType: p.desc.MediaType, Digest: p.desc.Digest, Size: p.desc.Size,
			Annotations: map[string]string{ocispec.AnnotationRefName: p.tag}}
		data, _ := json.Marshal(entry)
		r.tags[p.tag] = &tagEntry{desc: entry, json: data}
		m.ntags++
	case opUntag:
		prev := r.tags[p.tag]
		if prev == nil {
			return errNotFound("tag %s in %s", p.tag, r.name)
		}
		if pm := r.manifests[prev.desc.Digest]; pm != nil {
			pm.ntags--
		}
		delete(r.tags, p.tag)
		if i, ok := slices.BinarySearch(r.tagList, p.tag); ok {
			r.tagList = slices.Delete(r.tagList, i, i+1)
		}
	case opDelete:
		m := r.manifests[p.desc.Digest]
		if m == nil {
			return errNotFound("manifest %s in %s", p.desc.Digest, r.name)
		}
		if m.ntags > 0 {
			r.tagList = slices.DeleteFunc(r.tagList, func(t string) bool {
				if r.tags[t].desc.Digest == p.desc.Digest {
					delete(r.tags, t)
					return true
				}
				return false
			})
		}
		delete(r.manifests, p.desc.Digest)
		if r.refLoaded && m.subject != "" {
			delete(r.referrers[m.subject], m.desc.Digest)
		}
	}
	return nil
}

func (r *fsRepo) addReferrerLocked(m *manifestInfo) {
	if !r.refLoaded || !m.parsed || m.subject == "" {
		return
	}
	set := r.referrers[m.subject]
	if set == nil {
		set = map[digest.Digest]struct{}{}
		r.referrers[m.subject] = set
	}
	set[m.desc.Digest] = struct{}{}
}

// change applies ops to the mirror and waits until index.json holds them.
// An op refused by the mirror (a missing tag) is returned at once and
// nothing is changed.
func (r *fsRepo) change(ctx context.Context, ops ...pendingOp) error {
	if r.fs.opts.ReadOnly {
		return ErrReadOnly
	}
	r.mu.Lock()
	for _, op := range ops {
		if err := r.checkLocked(op); err != nil {
			r.mu.Unlock()
			return err
		}
	}
	for _, op := range ops {
		r.seq++
		op.seq = r.seq
		_ = r.applyLocked(op)
		r.pending = append(r.pending, op)
	}
	seq := r.seq
	r.mu.Unlock()
	return r.flush(seq)
}

func (r *fsRepo) checkLocked(op pendingOp) error {
	switch op.kind {
	case opUntag:
		if r.tags[op.tag] == nil {
			return errNotFound("tag %s in %s", op.tag, r.name)
		}
	case opDelete:
		if r.manifests[op.desc.Digest] == nil {
			return errNotFound("manifest %s in %s", op.desc.Digest, r.name)
		}
	}
	return nil
}

// flush makes every change up to seq durable: the first caller to get the
// flush lock writes index.json with everything applied so far, and those
// that queued behind it find their changes written.
func (r *fsRepo) flush(seq uint64) error {
	r.flushMu.Lock()
	defer r.flushMu.Unlock()
	if r.durable >= seq {
		return r.failureFor(seq)
	}
	from := r.durable + 1
	var upto uint64
	err := r.withLayoutLock(func() error {
		if fi, err := os.Stat(filepath.Join(r.dir, indexFile)); err != nil || idOf(fi) != r.diskID {
			if err := r.reloadLocked(); err != nil {
				return err
			}
		}
		r.mu.RLock()
		data := r.serializeLocked()
		upto = r.seq
		var barriers []<-chan error
		for _, p := range r.pending {
			if p.ready != nil && p.seq <= upto {
				barriers = append(barriers, p.ready)
			}
		}
		r.mu.RUnlock()
		tmp, err := r.fs.writeTempIn(r.dir, indexFile, data)
		if err != nil {
			return err
		}
		for _, b := range barriers {
			if berr := <-b; berr != nil && err == nil {
				err = berr
			}
		}
		if err == nil {
			err = r.fs.renameSynced(tmp, r.dir, indexFile)
		}
		if err != nil {
			os.Remove(tmp)
			return err
		}
		fi, err := os.Stat(filepath.Join(r.dir, indexFile))
		if err != nil {
			return err
		}
		r.diskID = idOf(fi)
		return nil
	})
	r.mu.Lock()
	if upto == 0 {
		upto = r.seq
	}
	r.pending = slices.DeleteFunc(r.pending, func(p pendingOp) bool { return p.seq <= upto })
	if err != nil {
		// The changes are lost: return the mirror to what the file holds.
		if idx, id, rerr := r.readIndexFile(); rerr == nil {
			r.rebuildLocked(idx)
			r.diskID = id
		}
	}
	r.mu.Unlock()
	r.durable = upto
	if err != nil {
		err = fmt.Errorf("write index.json of %s: %w", r.name, err)
		r.failures = append(r.failures, flushFailure{from, upto, err})
		if len(r.failures) > 64 {
			r.failures = r.failures[1:]
		}
	}
	return r.failureFor(seq)
}

func (r *fsRepo) failureFor(seq uint64) error {
	for _, f := range r.failures {
		if seq >= f.from && seq <= f.to {
			return f.err
		}
	}
	return nil
}

// reloadLocked (flushMu held) reads index.json again and replays the
// changes not yet written over it.
func (r *fsRepo) reloadLocked() error {
	idx, id, err := r.readIndexFile()
	if err != nil {
		return err
	}
	r.mu.Lock()
	r.rebuildLocked(idx)
	r.mu.Unlock()
	r.diskID = id
	return nil
}

// refresh notices, at most once a second, a change another process made to
// index.json.
func (r *fsRepo) refresh() {
	now := time.Now().UnixNano()
	last := r.checked.Load()
	if now-last < int64(time.Second) || !r.checked.CompareAndSwap(last, now) {
		return
	}
	if !r.flushMu.TryLock() {
		return // a flush is under way and checks the file itself
	}
	defer r.flushMu.Unlock()
	fi, err := os.Stat(filepath.Join(r.dir, indexFile))
	if err != nil || idOf(fi) == r.diskID {
		return
	}
	if err := r.reloadLocked(); err != nil {
		r.fs.log.Warn("cannot read a changed index.json", "repository", r.name, "error", err)
	}
}

// serializeLocked renders index.json: the tags in order, then the untagged
// manifests by digest.
func (r *fsRepo) serializeLocked() []byte {
	var b bytes.Buffer
	b.Grow(64 + len(r.tagList)*200)
	b.WriteString(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json"`)
	if r.header.ArtifactType != "" {
		at, _ := json.Marshal(r.header.ArtifactType)
		b.WriteString(`,"artifactType":`)
		b.Write(at)
	}
	b.WriteString(`,"manifests":[`)
	first := true
	sep := func() {
		if !first {
			b.WriteByte(',')
		}
		first = false
	}
	for _, t := range r.tagList {
		sep()
		b.Write(r.tags[t].json)
	}
	var untagged []*manifestInfo
	for _, m := range r.manifests {
		if m.ntags <= 0 {
			untagged = append(untagged, m)
		}
	}
	sort.Slice(untagged, func(i, j int) bool { return untagged[i].desc.Digest < untagged[j].desc.Digest })
	for _, m := range untagged {
		sep()
		b.Write(m.entry)
	}
	for _, d := range r.foreign {
		data, _ := json.Marshal(d)
		sep()
		b.Write(data)
	}
	b.WriteByte(']')
	if r.header.Subject != nil {
		s, _ := json.Marshal(r.header.Subject)
		b.WriteString(`,"subject":`)
		b.Write(s)
	}
	if len(r.header.Annotations) > 0 {
		a, _ := json.Marshal(r.header.Annotations)
		b.WriteString(`,"annotations":`)
		b.Write(a)
	}
	b.WriteByte('}')
	return b.Bytes()
}

// roots returns the descriptors index.json lists (for GC).
func (r *fsRepo) roots() []ocispec.Descriptor {
	r.refresh()
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]ocispec.Descriptor, 0, len(r.manifests)+1)
	for _, m := range r.manifests {
		out = append(out, m.desc)
	}
	out = append(out, r.foreign...)
	if r.header.Subject != nil {
		out = append(out, *r.header.Subject)
	}
	return out
}

// resolve finds a manifest by tag or digest. A digest not in index.json
// is looked for among the repository's blobs (an index's children in a
// layout written by another tool), and served if it reads as a manifest.
func (r *fsRepo) resolve(ctx context.Context, reference string) (ocispec.Descriptor, error) {
	r.refresh()
	r.mu.RLock()
	if t := r.tags[reference]; t != nil {
		d := t.desc
		r.mu.RUnlock()
		return ocispec.Descriptor{MediaType: d.MediaType, Digest: d.Digest, Size: d.Size}, nil
	}
	d, perr := digest.Parse(reference)
	if perr == nil {
		if m := r.manifests[d]; m != nil {
			desc := m.desc
			r.mu.RUnlock()
			return desc, nil
		}
	}
	r.mu.RUnlock()
	if perr != nil {
		return ocispec.Descriptor{}, errNotFound("manifest %s in %s", reference, r.name)
	}
	if checkDigest(d) != nil {
		return ocispec.Descriptor{}, errNotFound("manifest %s in %s", reference, r.name)
	}
	fi, err := os.Stat(r.blobPath(d))
	if err != nil || fi.Size() > r.fs.opts.MaxManifestBytes {
		return ocispec.Descriptor{}, errNotFound("manifest %s in %s", reference, r.name)
	}
	data, err := r.readManifest(ocispec.Descriptor{Digest: d, Size: fi.Size()})
	if err != nil {
		return ocispec.Descriptor{}, errNotFound("manifest %s in %s", reference, r.name)
	}
	mt := image.MediaTypeOf(data)
	if !image.IsManifest(mt) && !image.IsIndex(mt) {
		return ocispec.Descriptor{}, errNotFound("manifest %s in %s", reference, r.name)
	}
	return ocispec.Descriptor{MediaType: mt, Digest: d, Size: fi.Size()}, nil
}

// readManifest returns a manifest's bytes, verified, from the cache or the
// repository's blobs.
func (r *fsRepo) readManifest(desc ocispec.Descriptor) ([]byte, error) {
	if data := r.fs.mcache.get(desc.Digest); data != nil {
		return data, nil
	}
	if desc.Size > r.fs.opts.MaxManifestBytes {
		return nil, fmt.Errorf("manifest %s: %w: %d bytes", desc.Digest, errdef.ErrTooLarge, desc.Size)
	}
	f, err := os.Open(r.blobPath(desc.Digest))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, errNotFound("manifest %s in %s: no blob", desc.Digest, r.name)
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, r.fs.opts.MaxManifestBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read manifest %s: %w", desc.Digest, err)
	}
	if int64(len(data)) != desc.Size {
		return nil, fmt.Errorf("manifest %s in %s: %w: %d bytes stored, %d listed", desc.Digest, r.name, errdef.ErrSizeMismatch, len(data), desc.Size)
	}
	if got := desc.Digest.Algorithm().FromBytes(data); got != desc.Digest {
		return nil, fmt.Errorf("manifest %s in %s: %w: stored content hashes to %s", desc.Digest, r.name, errdef.ErrDigestMismatch, got)
	}
	r.fs.mcache.put(desc.Digest, data)
	return data, nil
}

// Manifest implements Repository.
func (r *fsRepo) Manifest(ctx context.Context, reference string) (ocispec.Descriptor, []byte, error) {
	desc, err := r.resolve(ctx, reference)
	if err != nil {
		return ocispec.Descriptor{}, nil, err
	}
	data, err := r.readManifest(desc)
	if err != nil {
		return ocispec.Descriptor{}, nil, err
	}
	return desc, data, nil
}

// StatManifest implements Repository.
func (r *fsRepo) StatManifest(ctx context.Context, reference string) (ocispec.Descriptor, error) {
	return r.resolve(ctx, reference)
}

// PutManifest implements Repository: it pins what the manifest requires
// (failing with a *MissingBlobsError for what is not there), stores the
// manifest's bytes as a blob, records it and its tags in index.json, and
// then commits the pins.
func (r *fsRepo) PutManifest(ctx context.Context, m ManifestPut) error {
	if r.fs.opts.ReadOnly {
		return ErrReadOnly
	}
	d := m.Desc.Digest
	if err := checkDigest(d); err != nil {
		return fmt.Errorf("put manifest: %w", err)
	}
	if int64(len(m.Data)) != m.Desc.Size || d.Algorithm().FromBytes(m.Data) != d {
		return fmt.Errorf("put manifest %s: %w: descriptor does not match the data", d, errdef.ErrDigestMismatch)
	}
	for _, t := range m.Tags {
		if err := CheckTag(t); err != nil {
			return fmt.Errorf("put manifest %s: %w", d, err)
		}
	}
	var problems []BlobProblem
	var pinned []digest.Digest
	errMissing := errors.New("missing")
	for _, req := range m.Requires {
		if slices.Contains(pinned, req.Digest) {
			continue
		}
		if checkDigest(req.Digest) != nil {
			problems = append(problems, BlobProblem{Digest: req.Digest, Reason: "not a usable digest"})
			continue
		}
		var size int64
		err := r.fs.fence.pin(r.name, req.Digest, func() error {
			fi, err := os.Stat(r.blobPath(req.Digest))
			if err != nil {
				return errMissing
			}
			if fi.Size() != req.Size {
				size = fi.Size()
				return errMissing
			}
			r.fs.touch(r.blobPath(req.Digest), fi)
			return nil
		})
		switch {
		case err == nil:
			pinned = append(pinned, req.Digest)
		case size != 0:
			problems = append(problems, BlobProblem{Digest: req.Digest, Size: size, Reason: fmt.Sprintf("stored blob has %d bytes, descriptor says %d", size, req.Size)})
		default:
			problems = append(problems, BlobProblem{Digest: req.Digest, Reason: "not in the repository"})
		}
	}
	if len(problems) > 0 {
		return &MissingBlobsError{Manifest: d, Blobs: problems}
	}
	tmp, err := r.fs.writeTemp(m.Data)
	if err != nil {
		return fmt.Errorf("put manifest %s: %w", d, err)
	}
	err = r.fs.publish(r, d, m.Desc.Size, tmp)
	os.Remove(tmp)
	if err != nil {
		return fmt.Errorf("put manifest %s: %w", d, err)
	}
	pinned = append(pinned, d)
	// The names of the manifest and of what it references (uploads and
	// mounts leave that to this point) are made durable while index.json's
	// new content is written; the rename that commits it waits for them.
	dirs := map[string]bool{}
	for _, p := range pinned {
		dirs[filepath.Dir(r.blobPath(p))] = true
	}
	ready := make(chan error, 1)
	go func() {
		var err error
		for dir := range dirs {
			if serr := r.fs.syncDir(dir); serr != nil && err == nil {
				err = fmt.Errorf("put manifest %s: %w", d, serr)
			}
		}
		ready <- err
	}()
	info := &manifestInfo{
		desc:   ocispec.Descriptor{MediaType: m.Desc.MediaType, Digest: d, Size: m.Desc.Size},
		parsed: true, artType: m.Desc.ArtifactType, annots: m.Desc.Annotations,
	}
	if m.Subject != nil {
		info.subject = m.Subject.Digest
	}
	ops := []pendingOp{{kind: opPut, info: info, ready: ready}}
	for _, t := range m.Tags {
		ops = append(ops, pendingOp{kind: opTag, tag: t, desc: info.desc})
	}
	if err := r.change(ctx, ops...); err != nil {
		return fmt.Errorf("put manifest %s: %w", d, err)
	}
	// The mirror lists the manifest now, so a collection that starts from
	// here on sees what it references; one already running is stopped by
	// the committed pins.
	r.fs.fence.commit(r.name, pinned)
	r.fs.mcache.put(d, m.Data)
	return nil
}

// DeleteManifest implements Repository.
func (r *fsRepo) DeleteManifest(ctx context.Context, d digest.Digest) error {
	if r.fs.opts.ReadOnly {
		return ErrReadOnly
	}
	if err := r.change(ctx, pendingOp{kind: opDelete, desc: ocispec.Descriptor{Digest: d}}); err != nil {
		return fmt.Errorf("delete manifest %s: %w", d, err)
	}
	// The manifest's blob goes too, so that it is not served by digest.
	_ = r.fs.fence.drop(r.name, d, func() error {
		r.mu.RLock()
		_, back := r.manifests[d]
		r.mu.RUnlock()
		if back {
			return nil // pushed again meanwhile
		}
		return os.Remove(r.blobPath(d))
	})
	return nil
}

// Untag implements Repository.
func (r *fsRepo) Untag(ctx context.Context, tag string) error {
	if err := r.change(ctx, pendingOp{kind: opUntag, tag: tag}); err != nil {
		return fmt.Errorf("untag %s: %w", tag, err)
	}
	return nil
}

// Tags implements Repository.
func (r *fsRepo) Tags(ctx context.Context, last string, n int) ([]string, error) {
	r.refresh()
	r.mu.RLock()
	defer r.mu.RUnlock()
	i := 0
	if last != "" {
		var found bool
		i, found = slices.BinarySearch(r.tagList, last)
		if found {
			i++
		}
	}
	rest := r.tagList[i:]
	if n >= 0 && n < len(rest) {
		rest = rest[:n]
	}
	return slices.Clone(rest), nil
}

// referrerDoc has the fields of a manifest or index the referrers API
// reports.
type referrerDoc struct {
	MediaType    string              `json:"mediaType"`
	ArtifactType string              `json:"artifactType"`
	Config       *ocispec.Descriptor `json:"config"`
	Subject      *ocispec.Descriptor `json:"subject"`
	Annotations  map[string]string   `json:"annotations"`
}

// ReferrerInfo extracts from a manifest or index what the referrers API
// reports: its subject, its artifact type (the artifactType field, else an
// image manifest's config media type) and its annotations.
func ReferrerInfo(mediaType string, data []byte) (subject *ocispec.Descriptor, artifactType string, annotations map[string]string) {
	var doc referrerDoc
	if json.Unmarshal(data, &doc) != nil {
		return nil, "", nil
	}
	artifactType = doc.ArtifactType
	if artifactType == "" && image.IsManifest(mediaType) && doc.Config != nil {
		artifactType = doc.Config.MediaType
	}
	return doc.Subject, artifactType, doc.Annotations
}

// Referrers implements Repository. The subject index is built on first use
// by reading the repository's manifests, and kept up to date after.
func (r *fsRepo) Referrers(ctx context.Context, d digest.Digest, artifactType string) ([]ocispec.Descriptor, error) {
	r.refresh()
	if err := r.loadReferrers(ctx); err != nil {
		return nil, err
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	var out []ocispec.Descriptor
	for rd := range r.referrers[d] {
		m := r.manifests[rd]
		if m == nil || (artifactType != "" && m.artType != artifactType) {
			continue
		}
		out = append(out, ocispec.Descriptor{MediaType: m.desc.MediaType, Digest: m.desc.Digest, Size: m.desc.Size, ArtifactType: m.artType, Annotations: m.annots})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Digest < out[j].Digest })
	return out, nil
}

func (r *fsRepo) loadReferrers(ctx context.Context) error {
	for {
		r.mu.RLock()
		if r.refLoaded {
			r.mu.RUnlock()
			return nil
		}
		var todo []ocispec.Descriptor
		for _, m := range r.manifests {
			if !m.parsed {
				todo = append(todo, m.desc)
			}
		}
		r.mu.RUnlock()
		type parsed struct {
			subject digest.Digest
			art     string
			annots  map[string]string
		}
		got := map[digest.Digest]parsed{}
		for _, desc := range todo {
			if err := ctx.Err(); err != nil {
				return err
			}
			var p parsed
			if data, err := r.readManifest(desc); err == nil {
				s, at, an := ReferrerInfo(desc.MediaType, data)
				if s != nil {
					p.subject = s.Digest
				}
				p.art, p.annots = at, an
			}
			got[desc.Digest] = p
		}
		r.mu.Lock()
		done := true
		for _, m := range r.manifests {
			if m.parsed {
				continue
			}
			p, ok := got[m.desc.Digest]
			if !ok {
				done = false
				continue
			}
			m.parsed, m.subject, m.artType, m.annots = true, p.subject, p.art, p.annots
		}
		if done {
			r.referrers = map[digest.Digest]map[digest.Digest]struct{}{}
			r.refLoaded = true
			for _, m := range r.manifests {
				r.addReferrerLocked(m)
			}
		}
		r.mu.Unlock()
		if done {
			return nil
		}
	}
}
