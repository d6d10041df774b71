package server

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"

	"github.com/lading-oci/lading/errdef"
	"github.com/lading-oci/lading/registry/errcode"
	"github.com/lading-oci/lading/registry/storage"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// parseDigest checks a digest from a request: well formed and of an
// algorithm the registry stores (sha256, sha512).
func parseDigest(s string) (digest.Digest, error) {
	d, err := digest.Parse(s)
	if err != nil {
		return "", fmt.Errorf("digest %q: %w: %v", s, errdef.ErrInvalid, err)
	}
	if d.Algorithm() != digest.SHA256 && d.Algorithm() != digest.SHA512 {
		return "", fmt.Errorf("digest %q: %w: algorithm %s (sha256 and sha512 are)", s, errdef.ErrUnsupported, d.Algorithm())
	}
	return d, nil
}

func (s *Server) serveBlob(w http.ResponseWriter, r *http.Request, req request) {
	d, err := parseDigest(req.ref)
	if err != nil {
		writeError(w, http.StatusBadRequest, errcode.DigestInvalid.WithMessage("%v", err))
		return
	}
	switch r.Method {
	case http.MethodGet:
		s.getBlob(w, r, req, d)
	case http.MethodHead:
		s.headBlob(w, r, req, d)
	case http.MethodDelete:
		repo, err := s.store.Repository(r.Context(), req.name, false)
		if err == nil {
			err = repo.DeleteBlob(r.Context(), d)
		}
		if err != nil {
			s.storageError(w, r, err, errcode.BlobUnknown)
			return
		}
		w.Header().Set("Content-Length", "0")
		w.WriteHeader(http.StatusAccepted)
	default:
		methodNotAllowed(w, r, "GET, HEAD, DELETE")
	}
}

func (s *Server) getBlob(w http.ResponseWriter, r *http.Request, req request, d digest.Digest) {
	repo, err := s.store.Repository(r.Context(), req.name, false)
	if err != nil {
		s.storageError(w, r, err, errcode.BlobUnknown)
		return
	}
	b, err := repo.OpenBlob(r.Context(), d)
	if err != nil {
		s.storageError(w, r, err, errcode.BlobUnknown)
		return
	}
	defer b.Close()
	h := blobHeader(w, d)
	h["Cache-Control"] = immutable
	// ServeContent answers Range requests (206, 416) and conditional
	// ones, and copies an *os.File with sendfile.
	http.ServeContent(w, r, "", b.ModTime, b.Content)
}

// blobHeader sets the headers every answer with blob d carries and
// returns the header.
func blobHeader(w http.ResponseWriter, d digest.Digest) http.Header {
	h := w.Header()
	h["Content-Type"] = octetStream
	h["Docker-Content-Digest"] = []string{string(d)}
	h["Etag"] = []string{`"` + string(d) + `"`}
	return h
}

var (
	octetStream = []string{"application/octet-stream"}
	immutable   = []string{"max-age=31536000"}
)

func (s *Server) headBlob(w http.ResponseWriter, r *http.Request, req request, d digest.Digest) {
	repo, err := s.store.Repository(r.Context(), req.name, false)
	if err != nil {
		s.storageError(w, r, err, errcode.BlobUnknown)
		return
	}
	// A HEAD is how a pushing client learns it need not upload: the blob
	// is pinned against garbage collection until its manifest comes.
	desc, err := repo.StatBlob(r.Context(), d)
	if err != nil {
		s.storageError(w, r, err, errcode.BlobUnknown)
		return
	}
	h := blobHeader(w, d)
	h["Accept-Ranges"] = []string{"bytes"}
	h["Content-Length"] = []string{strconv.FormatInt(desc.Size, 10)}
	w.WriteHeader(http.StatusOK)
}

// blobCreated answers a finished upload or mount.
func blobCreated(w http.ResponseWriter, name string, d digest.Digest) {
	h := w.Header()
	h.Set("Location", "/v2/"+name+"/blobs/"+string(d))
	h.Set("Docker-Content-Digest", string(d))
	h.Set("Content-Length", "0")
	w.WriteHeader(http.StatusCreated)
}

// serveUploadStart handles POST /v2/<name>/blobs/uploads/: a mount, a
// monolithic upload (digest given), or a new session.
func (s *Server) serveUploadStart(w http.ResponseWriter, r *http.Request, req request) {
	if r.Method != http.MethodPost {
		methodNotAllowed(w, r, "POST")
		return
	}
	ctx := r.Context()
	q := r.URL.Query()
	if mount := q.Get("mount"); mount != "" {
		d, err := parseDigest(mount)
		if err != nil {
			writeError(w, http.StatusBadRequest, errcode.DigestInvalid.WithMessage("%v", err))
			return
		}
		if s.mount(w, r, req, d, q.Get("from")) {
			return
		}
		// Not mountable: fall through to an upload session, as the
		// specification asks.
	} else if dg := q.Get("digest"); dg != "" {
		d, err := parseDigest(dg)
		if err != nil {
			writeError(w, http.StatusBadRequest, errcode.DigestInvalid.WithMessage("%v", err))
			return
		}
		repo, err := s.store.Repository(ctx, req.name, true)
		if err != nil {
			s.storageError(w, r, err, errcode.NameUnknown)
			return
		}
		size := r.ContentLength
		if _, err := repo.PushBlob(ctx, ocispecDesc(d, size), r.Body); err != nil {
			s.storageError(w, r, err, errcode.BlobUploadUnknown)
			return
		}
		blobCreated(w, req.name, d)
		return
	}
	alg := digest.Canonical
	if a := q.Get("digest-algorithm"); a != "" {
		alg = digest.Algorithm(a)
		if alg != digest.SHA256 && alg != digest.SHA512 {
			writeError(w, http.StatusBadRequest, errcode.Unsupported.WithMessage("digest algorithm %q is not supported (sha256 and sha512 are)", a))
			return
		}
	}
	u, err := s.store.NewUpload(ctx, req.name, alg)
	if err != nil {
		s.storageError(w, r, err, errcode.NameUnknown)
		return
	}
	defer u.Close()
	if r.ContentLength > 0 {
		// A body on a POST without a digest: take it as the first chunk.
		if _, err := u.Append(ctx, r.Body, 0, r.ContentLength); err != nil {
			s.storageError(w, r, err, errcode.BlobUploadInvalid)
			return
		}
	}
	s.uploadStatus(w, req.name, u, http.StatusAccepted)
}

// mount links a blob from another repository; it reports whether it
// answered. Without from, every repository the client may pull from is
// looked in, in name order.
func (s *Server) mount(w http.ResponseWriter, r *http.Request, req request, d digest.Digest, from string) bool {
	ctx := r.Context()
	if dst, err := s.store.Repository(ctx, req.name, false); err == nil {
		if _, err := dst.StatBlob(ctx, d); err == nil {
			blobCreated(w, req.name, d) // already there
			return true
		}
	}
	var candidates []string
	if from != "" {
		if storage.CheckName(from) != nil || !s.allowed(r, req, from, actionPull) {
			return false
		}
		candidates = []string{from}
	} else {
		names, err := s.store.Repositories(ctx, "", -1)
		if err != nil {
			return false
		}
		for _, n := range names {
			if n != req.name && s.allowed(r, req, n, actionPull) {
				candidates = append(candidates, n)
			}
		}
	}
	for _, name := range candidates {
		src, err := s.store.Repository(ctx, name, false)
		if err != nil {
			continue
		}
		dst, err := s.store.Repository(ctx, req.name, true)
		if err != nil {
			s.storageError(w, r, err, errcode.NameUnknown)
			return true
		}
		if _, err := dst.MountBlob(ctx, d, src); err != nil {
			if errors.Is(err, errdef.ErrNotFound) {
				continue
			}
			s.storageError(w, r, err, errcode.BlobUnknown)
			return true
		}
		blobCreated(w, req.name, d)
		return true
	}
	return false
}

func (s *Server) uploadLocation(name string, u storage.Upload) string {
	return "/v2/" + name + "/blobs/uploads/" + u.ID()
}

// uploadStatus answers with a session's location and range.
func (s *Server) uploadStatus(w http.ResponseWriter, name string, u storage.Upload, status int) {
	h := w.Header()
	h.Set("Location", s.uploadLocation(name, u))
	h.Set("Docker-Upload-UUID", u.ID())
	end := u.Offset() - 1
	if end < 0 {
		end = 0
	}
	h.Set("Range", "0-"+strconv.FormatInt(end, 10))
	if s.opts.ChunkMinLength > 0 {
		h.Set("OCI-Chunk-Min-Length", strconv.FormatInt(s.opts.ChunkMinLength, 10))
	}
	h.Set("Content-Length", "0")
	w.WriteHeader(status)
}

var contentRangeRE = regexp.MustCompile(`^(?:bytes[ =])?([0-9]+)-([0-9]+)(?:/(?:[0-9]+|\*))?$`)

// parseContentRange reads a chunk's Content-Range, "start-end" inclusive.
// It returns start -1 when there is none.
func parseContentRange(r *http.Request) (start, size int64, err error) {
	cr := r.Header.Get("Content-Range")
	if cr == "" {
		return -1, r.ContentLength, nil
	}
	m := contentRangeRE.FindStringSubmatch(cr)
	if m == nil {
		return 0, 0, fmt.Errorf("Content-Range %q: %w: want START-END", cr, errdef.ErrInvalid)
	}
	start, err1 := strconv.ParseInt(m[1], 10, 64)
	end, err2 := strconv.ParseInt(m[2], 10, 64)
	if err1 != nil || err2 != nil || end < start {
		return 0, 0, fmt.Errorf("Content-Range %q: %w", cr, errdef.ErrInvalid)
	}
	size = end - start + 1
	if r.ContentLength >= 0 && r.ContentLength != size {
		return 0, 0, fmt.Errorf("Content-Range %q names %d bytes, Content-Length is %d: %w", cr, size, r.ContentLength, errdef.ErrSizeMismatch)
	}
	return start, size, nil
}

// serveUpload handles a session: PATCH a chunk, PUT to finish, GET its
// status, DELETE to cancel.
func (s *Server) serveUpload(w http.ResponseWriter, r *http.Request, req request) {
	switch r.Method {
	case http.MethodGet, http.MethodPatch, http.MethodPut, http.MethodDelete:
	default:
		methodNotAllowed(w, r, "GET, PATCH, PUT, DELETE")
		return
	}
	ctx := r.Context()
	u, err := s.store.Upload(ctx, req.name, req.ref)
	if err != nil {
		s.storageError(w, r, err, errcode.BlobUploadUnknown)
		return
	}
	defer u.Close()
	switch r.Method {
	case http.MethodGet:
		s.uploadStatus(w, req.name, u, http.StatusNoContent)
	case http.MethodDelete:
		if err := u.Cancel(ctx); err != nil {
			s.storageError(w, r, err, errcode.BlobUploadUnknown)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	case http.MethodPatch:
		start, size, err := parseContentRange(r)
		if err != nil {
			badRange(w, err)
			return
		}
		if start >= 0 && start != u.Offset() {
			s.outOfOrder(w, req.name, u, start)
			return
		}
		if _, err := u.Append(ctx, r.Body, start, size); err != nil {
			if errors.Is(err, storage.ErrOutOfOrder) {
				s.outOfOrder(w, req.name, u, start)
				return
			}
			s.storageError(w, r, err, errcode.BlobUploadInvalid)
			return
		}
		s.uploadStatus(w, req.name, u, http.StatusAccepted)
	case http.MethodPut:
		d, err := parseDigest(r.URL.Query().Get("digest"))
		if err != nil {
			writeError(w, http.StatusBadRequest, errcode.DigestInvalid.WithMessage("finishing an upload needs the blob's digest: %v", err))
			return
		}
		start, size, err := parseContentRange(r)
		if err != nil {
			badRange(w, err)
			return
		}
		if start >= 0 && start != u.Offset() {
			s.outOfOrder(w, req.name, u, start)
			return
		}
		if size != 0 {
			if _, err := u.Append(ctx, r.Body, start, size); err != nil {
				s.storageError(w, r, err, errcode.BlobUploadInvalid)
				return
			}
		}
		if _, err := u.Commit(ctx, d, -1); err != nil {
			s.storageError(w, r, err, errcode.BlobUploadInvalid)
			return
		}
		blobCreated(w, req.name, d)
	}
}

// badRange answers a Content-Range that cannot be used.
func badRange(w http.ResponseWriter, err error) {
	code := errcode.BlobUploadInvalid
	if errors.Is(err, errdef.ErrSizeMismatch) {
		code = errcode.SizeInvalid
	}
	writeError(w, http.StatusBadRequest, code.WithMessage("%v", err))
}

// outOfOrder answers 416 with where the session stands.
func (s *Server) outOfOrder(w http.ResponseWriter, name string, u storage.Upload, start int64) {
	h := w.Header()
	h.Set("Location", s.uploadLocation(name, u))
	h.Set("Docker-Upload-UUID", u.ID())
	end := max(u.Offset()-1, 0)
	h.Set("Range", "0-"+strconv.FormatInt(end, 10))
	writeError(w, http.StatusRequestedRangeNotSatisfiable, errcode.BlobUploadInvalid.WithMessage("chunk starts at %d, but the upload holds %d bytes: chunks must be sent in order", start, u.Offset()))
}

func ocispecDesc(d digest.Digest, size int64) ocispec.Descriptor {
	return ocispec.Descriptor{MediaType: "application/octet-stream", Digest: d, Size: size}
}

// drain reads what is left of a body (up to a limit) so the connection can
// be reused.
func drain(r io.Reader) { _, _ = io.CopyN(io.Discard, r, 1<<20) }
