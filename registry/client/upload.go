package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/lading-oci/lading/content"
	"github.com/lading-oci/lading/errdef"
)

// maxChunk caps the chunk buffer, whatever the registry's minimum.
const maxChunk = 128 << 20

// Ingest opens a chunked upload as a content.Writer, an *UploadWriter. The
// ref of a new upload ("") is its first upload location, an absolute URL; a
// ref of the caller's choosing (as content.CheckIngestRef allows) names a new
// upload. Either resumes the upload in this Repository until it is committed
// or aborted. In another process, Ingest(ctx, w.Location()) resumes it at the
// offset the registry reports (registries may move the location with each
// chunk: distribution 2.x does). A ref whose upload the registry no longer
// knows starts afresh at offset 0.
//
// Writes are sent in chunks of the configured size (WithChunkSize), at
// least the registry's OCI-Chunk-Min-Length; Close sends what is buffered
// and leaves the upload open. The writer uses ctx for all its requests.
func (r *Repository) Ingest(ctx context.Context, ref string) (content.Writer, error) {
	name := ref
	var loc *url.URL
	var err error
	switch {
	case ref == "":
	case r.alias(ref) != "":
		loc, err = url.Parse(r.alias(ref))
	case strings.HasPrefix(ref, "https://") || strings.HasPrefix(ref, "http://") || strings.HasPrefix(ref, "/v2/"):
		if loc, err = r.uploadLocation(ref); err != nil {
			return nil, fmt.Errorf("ingest %q: %w", ref, err)
		}
	default:
		if err := content.CheckIngestRef(ref); err != nil {
			return nil, fmt.Errorf("ingest: %w", err)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("ingest %q: %w: %v", ref, errdef.ErrInvalid, err)
	}
	if name != "" && !r.claim(name) {
		return nil, fmt.Errorf("ingest %q: %w: a writer of this upload is open", ref, errdef.ErrUnavailable)
	}
	w := &UploadWriter{r: r, ctx: ctx, name: name}
	if loc != nil {
		off, alive, err := r.uploadStatus(ctx, loc)
		if err != nil {
			r.release(name)
			return nil, fmt.Errorf("ingest %q: %w", ref, err)
		}
		if alive {
			w.loc, w.confirmed = loc, off
		}
	}
	if w.loc == nil {
		if w.loc, _, err = r.startUpload(ctx, nil); err != nil {
			r.release(name)
			return nil, fmt.Errorf("ingest: %w", err)
		}
		if name == "" {
			name = w.loc.String()
			w.name = name
			r.claim(name)
		} else {
			r.setAlias(name, w.loc.String())
		}
	}
	w.chunk = max(r.c.cfg.chunkSize, r.getMinChunk())
	if w.chunk > maxChunk {
		r.c.log.Warn("registry asks for chunks larger than the client buffers", "registry", r.h.name, "chunk", w.chunk, "cap", maxChunk)
		w.chunk = maxChunk
	}
	return w, nil
}

func (r *Repository) getMinChunk() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.minChunk
}

func (r *Repository) alias(name string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.aliases[name]
}

func (r *Repository) setAlias(name, loc string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.aliases[name] = loc
}

func (r *Repository) forget(name, loc string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.aliases, name)
	delete(r.offsets, loc)
}

func (r *Repository) claim(name string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.open[name] {
		return false
	}
	r.open[name] = true
	return true
}

func (r *Repository) release(name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.open, name)
}

func (r *Repository) recordOffset(loc string, off int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.offsets[loc] = off
}

func (r *Repository) knownOffset(loc string) (int64, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	off, ok := r.offsets[loc]
	return off, ok
}

// uploadLocation checks that ref is an upload location of this repository
// on this registry.
func (r *Repository) uploadLocation(ref string) (*url.URL, error) {
	u, err := url.Parse(ref)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errdef.ErrInvalid, err)
	}
	if u.Host == "" {
		if err := r.c.prepare(context.Background(), r.h); err != nil {
			return nil, err
		}
		u.Scheme, u.Host = r.h.getScheme(), r.h.api
	}
	if u.Host != r.h.api || !strings.HasPrefix(u.Path, "/v2/"+r.name+"/blobs/uploads/") {
		return nil, fmt.Errorf("%w: not an upload location of %s", errdef.ErrInvalid, r)
	}
	return u, nil
}

// uploadStatus asks where an upload stands (GET location). alive is false
// when the registry does not know the upload (any more).
func (r *Repository) uploadStatus(ctx context.Context, loc *url.URL) (off int64, alive bool, err error) {
	resp, t, err := r.do(ctx, request{method: http.MethodGet, u: loc, scopes: r.pushScope()})
	if err != nil {
		return 0, false, fmt.Errorf("upload status: %w", err)
	}
	switch resp.StatusCode {
	case http.StatusNoContent, http.StatusOK, http.StatusAccepted:
		drain(resp.Body)
	case http.StatusNotFound:
		drain(resp.Body)
		return 0, false, nil
	default:
		return 0, false, fmt.Errorf("upload status in %s: %w", r, failure(t, resp))
	}
	end, ok := rangeEnd(resp.Header.Get("Range"))
	if !ok {
		return 0, true, nil
	}
	off = end + 1
	if end == 0 {
		// "0-0" is both no bytes and one byte; what we sent decides.
		if known, ok := r.knownOffset(loc.String()); ok && known <= 1 {
			off = known
		} else {
			off = 0
		}
	}
	return off, true, nil
}

// rangeEnd parses the end of a Range header "0-N" (or "bytes=0-N").
func rangeEnd(v string) (int64, bool) {
	v = strings.TrimPrefix(strings.TrimSpace(v), "bytes=")
	_, end, ok := strings.Cut(v, "-")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(end, 10, 64)
	return n, err == nil && n >= 0
}

// UploadWriter is a chunked upload session, the content.Writer of Ingest.
type UploadWriter struct {
	r    *Repository
	ctx  context.Context
	name string // what Ref returns

	mu        sync.Mutex
	loc       *url.URL
	confirmed int64 // bytes the registry has
	buf       []byte
	chunk     int64
	state     int // 0 open, 1 closed, 2 done
}

const (
	stateOpen = iota
	stateClosed
	stateDone
)

// Ref returns the ref the upload was opened under, for Ingest in this
// Repository.
func (w *UploadWriter) Ref() string { return w.name }

// Location returns the upload's current location, an absolute URL that
// resumes it from any client (Ingest(ctx, location)).
func (w *UploadWriter) Location() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.loc.String()
}

// Offset returns the bytes written: those the registry has and those
// buffered for the next chunk.
func (w *UploadWriter) Offset() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.confirmed + int64(len(w.buf))
}

// Write buffers p, sending a chunk (PATCH) whenever the buffer is full.
func (w *UploadWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.state != stateOpen {
		return 0, fmt.Errorf("ingest %s: write: %w", w.name, errdef.ErrClosed)
	}
	n := 0
	for len(p) > 0 {
		room := int(w.chunk) - len(w.buf)
		take := min(room, len(p))
		if w.buf == nil {
			w.buf = make([]byte, 0, min(w.chunk, int64(max(len(p), 64<<10))))
		}
		w.buf = append(w.buf, p[:take]...)
		p, n = p[take:], n+take
		if int64(len(w.buf)) >= w.chunk {
			if err := w.flush(); err != nil {
				return n - take, err
			}
		}
	}
	return n, nil
}

// flush sends the buffer as one PATCH.
func (w *UploadWriter) flush() error {
	if len(w.buf) == 0 {
		return nil
	}
	start, end := w.confirmed, w.confirmed+int64(len(w.buf))-1
	data := w.buf
	req := request{method: http.MethodPatch, u: w.loc, scopes: w.r.pushScope(),
		header: http.Header{
			"Content-Type":  {"application/octet-stream"},
			"Content-Range": {fmt.Sprintf("%d-%d", start, end)},
		},
		body: bytes.NewReader(data), length: int64(len(data)),
		getBody: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }}
	resp, t, err := w.r.do(w.ctx, req)
	if err != nil {
		return fmt.Errorf("ingest %s: chunk %d-%d: %w", w.name, start, end, err)
	}
	switch resp.StatusCode {
	case http.StatusAccepted, http.StatusNoContent, http.StatusOK:
		drain(resp.Body)
		if loc, err := location(resp); err == nil {
			w.loc = loc
		}
		if got, ok := rangeEnd(resp.Header.Get("Range")); ok && got != end && !(got == 0 && end == 0) {
			return fmt.Errorf("ingest %s: chunk %d-%d: %w: the registry has bytes 0-%d", w.name, start, end, errdef.ErrInvalid, got)
		}
	case http.StatusRequestedRangeNotSatisfiable:
		drain(resp.Body)
		off, alive, serr := w.r.uploadStatus(w.ctx, w.loc)
		if serr != nil || !alive || off != end+1 {
			return fmt.Errorf("ingest %s: chunk %d-%d: %w: the registry refused the range and holds %d bytes", w.name, start, end, errdef.ErrInvalid, off)
		}
	default:
		return fmt.Errorf("ingest %s: chunk %d-%d: %w", w.name, start, end, failure(t, resp))
	}
	w.confirmed = end + 1
	w.buf = w.buf[:0]
	w.r.recordOffset(w.loc.String(), w.confirmed)
	w.r.setAlias(w.name, w.loc.String())
	return nil
}

// Close sends what is buffered and leaves the upload open for resuming.
func (w *UploadWriter) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.state != stateOpen {
		return nil
	}
	w.state = stateClosed
	defer w.r.release(w.name)
	if err := w.flush(); err != nil {
		return err
	}
	if w.r.alias(w.name) == "" && w.name != w.loc.String() {
		w.r.setAlias(w.name, w.loc.String())
	}
	return nil
}

// Commit sends the rest and closes the upload with the digest the whole
// blob must have; the registry checks it. On a digest or size mismatch the
// upload is cancelled.
func (w *UploadWriter) Commit(ctx context.Context, size int64, expected digest.Digest) (ocispec.Descriptor, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.state == stateDone {
		return ocispec.Descriptor{}, fmt.Errorf("ingest %s: commit: %w", w.name, errdef.ErrClosed)
	}
	if w.state == stateOpen {
		defer w.r.release(w.name)
	}
	w.state = stateDone
	defer w.r.forget(w.name, w.loc.String())
	if err := content.CheckDigest(expected); err != nil {
		w.r.cancelUpload(ctx, w.loc)
		return ocispec.Descriptor{}, fmt.Errorf("ingest %s: commit: %w", w.name, err)
	}
	total := w.confirmed + int64(len(w.buf))
	if size >= 0 && size != total {
		w.r.cancelUpload(ctx, w.loc)
		return ocispec.Descriptor{}, fmt.Errorf("ingest %s: commit %s: %w: %d bytes written, %d expected", w.name, expected, errdef.ErrSizeMismatch, total, size)
	}
	data := w.buf
	req := request{method: http.MethodPut, u: withDigest(w.loc, expected), scopes: w.r.pushScope(),
		body: bytes.NewReader(data), length: int64(len(data)),
		getBody: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }}
	if len(data) > 0 {
		req.header = http.Header{
			"Content-Type":  {"application/octet-stream"},
			"Content-Range": {fmt.Sprintf("%d-%d", w.confirmed, total-1)},
		}
	}
	resp, t, err := w.r.do(ctx, req)
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("ingest %s: commit %s: %w", w.name, expected, err)
	}
	switch resp.StatusCode {
	case http.StatusCreated, http.StatusNoContent, http.StatusOK:
		drain(resp.Body)
		w.buf = nil
		return ocispec.Descriptor{MediaType: "application/octet-stream", Digest: expected, Size: total}, nil
	}
	err = failure(t, resp)
	if errors.Is(err, errdef.ErrDigestMismatch) || errors.Is(err, errdef.ErrSizeMismatch) || errors.Is(err, errdef.ErrInvalid) {
		w.r.cancelUpload(ctx, w.loc)
	}
	return ocispec.Descriptor{}, fmt.Errorf("ingest %s: commit %s to %s: %w", w.name, expected, w.r, err)
}

// Abort cancels the upload.
func (w *UploadWriter) Abort(ctx context.Context) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.state == stateDone {
		return nil
	}
	if w.state == stateOpen {
		w.r.release(w.name)
	}
	w.state = stateDone
	w.buf = nil
	w.r.forget(w.name, w.loc.String())
	w.r.cancelUpload(ctx, w.loc)
	return nil
}
