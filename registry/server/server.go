// Package server is lading's registry: an http.Handler implementing the OCI
// distribution specification 1.1 (pull, push, content discovery, content
// management, referrers) over a storage.Registry.
//
// Routes are matched by hand from the end of the path, since repository
// names contain slashes: /v2/<name>/blobs/<digest>,
// /v2/<name>/blobs/uploads/[<id>], /v2/<name>/manifests/<reference>,
// /v2/<name>/tags/list, /v2/<name>/referrers/<digest>, /v2/_catalog and
// /v2/. Every error body is the specification's JSON (registry/errcode).
// Paths with percent-encoded characters (an encoded slash or dot) are
// refused, so a name means one thing only.
package server

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/lading-oci/lading/errdef"
	"github.com/lading-oci/lading/registry/errcode"
	"github.com/lading-oci/lading/registry/storage"
)

// Options configures a Server.
type Options struct {
	// Logger receives the access log and what goes wrong (default:
	// discard).
	Logger *slog.Logger
	// ReadOnly refuses every write with 405 UNSUPPORTED.
	ReadOnly bool
	// Sparse accepts manifests whose layers, and indexes whose child
	// manifests, were not pushed (configs are still required).
	Sparse bool
	// MaxManifestBytes caps manifests; larger ones get 413 (default 4 MiB).
	MaxManifestBytes int64
	// ChunkMinLength is advertised as OCI-Chunk-Min-Length (default 0:
	// none advertised).
	ChunkMinLength int64
	// MaxTagsPerPush caps the tag parameters of one manifest PUT; more get
	// 414 (default 100).
	MaxTagsPerPush int
	// Auth, when set, requires credentials (see Auth).
	Auth *Auth
	// Metrics, when set, counts requests (see NewMetrics).
	Metrics *Metrics
	// StallTimeout fails a request whose body sends nothing for this long
	// (0: no limit), so a slow client cannot hold a request forever.
	StallTimeout time.Duration
	// MaxBlobBytes caps the body of one upload request (0: no limit);
	// larger ones get 413.
	MaxBlobBytes int64
}

// Server is the registry's http.Handler.
type Server struct {
	store storage.Registry
	opts  Options
	log   *slog.Logger
}

// New returns a registry serving store.
func New(store storage.Registry, opts Options) *Server {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.MaxManifestBytes <= 0 {
		opts.MaxManifestBytes = 4 << 20
	}
	if opts.MaxTagsPerPush <= 0 {
		opts.MaxTagsPerPush = 100
	}
	return &Server{store: store, opts: opts, log: opts.Logger}
}

// route names what a request asks for; it labels metrics and logs.
type route string

const (
	routeBase      route = "base"
	routeCatalog   route = "catalog"
	routeBlob      route = "blob"
	routeUpload    route = "upload"
	routeUploadID  route = "upload-session"
	routeManifest  route = "manifest"
	routeTags      route = "tags"
	routeReferrers route = "referrers"
	routeToken     route = "token"
	routeHealth    route = "health"
	routeMetrics   route = "metrics"
	routeUnknown   route = "unknown"
)

// request is a parsed registry request.
type request struct {
	route route
	name  string // repository
	ref   string // digest, tag or upload id
	user  string // who is authenticated, "" when anonymous
	id    identity
}

// parsePath matches a path under /v2/ to a route.
func parsePath(path string) (request, bool) {
	if path == "/v2/" || path == "/v2" {
		return request{route: routeBase}, true
	}
	if path == "/v2/_catalog" {
		return request{route: routeCatalog}, true
	}
	rest, ok := strings.CutPrefix(path, "/v2/")
	if !ok {
		return request{}, false
	}
	seg := strings.Split(rest, "/")
	n := len(seg)
	join := func(k int) string { return strings.Join(seg[:k], "/") }
	switch {
	case n >= 4 && seg[n-3] == "blobs" && seg[n-2] == "uploads":
		if seg[n-1] == "" {
			return request{route: routeUpload, name: join(n - 3)}, true
		}
		return request{route: routeUploadID, name: join(n - 3), ref: seg[n-1]}, true
	case n >= 3 && seg[n-2] == "blobs" && seg[n-1] == "uploads":
		return request{route: routeUpload, name: join(n - 2)}, true
	case n >= 3 && seg[n-2] == "blobs":
		return request{route: routeBlob, name: join(n - 2), ref: seg[n-1]}, true
	case n >= 3 && seg[n-2] == "manifests":
		return request{route: routeManifest, name: join(n - 2), ref: seg[n-1]}, true
	case n >= 3 && seg[n-2] == "tags" && seg[n-1] == "list":
		return request{route: routeTags, name: join(n - 2)}, true
	case n >= 3 && seg[n-2] == "referrers":
		return request{route: routeReferrers, name: join(n - 2), ref: seg[n-1]}, true
	}
	return request{}, false
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rw := &responseWriter{ResponseWriter: w}
	if r.Body != nil && r.Body != http.NoBody {
		cb := &countingBody{ReadCloser: r.Body, n: &rw.in}
		if s.opts.StallTimeout > 0 {
			cb.rc = http.NewResponseController(w)
			cb.stall = s.opts.StallTimeout
		}
		r.Body = cb
	}
	req := s.dispatch(rw, r)
	if rw.status == 0 {
		rw.status = http.StatusOK
	}
	elapsed := time.Since(start)
	if s.opts.Metrics != nil {
		s.opts.Metrics.observe(r.Method, req.route, rw.status, rw.in, rw.out, elapsed)
	}
	s.log.LogAttrs(r.Context(), slog.LevelInfo, "request",
		slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.Int("status", rw.status),
		slog.Int64("in", rw.in), slog.Int64("out", rw.out), slog.Duration("duration", elapsed),
		slog.String("route", string(req.route)), slog.String("user", req.user), slog.String("remote", r.RemoteAddr))
}

func (s *Server) dispatch(w *responseWriter, r *http.Request) request {
	path := r.URL.Path
	switch path {
	case "/healthz":
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "ok\n")
		return request{route: routeHealth}
	case "/metrics":
		if s.opts.Metrics == nil {
			http.NotFound(w, r)
			return request{route: routeUnknown}
		}
		s.opts.Metrics.handler().ServeHTTP(w, r)
		return request{route: routeMetrics}
	case tokenPath:
		if s.opts.Auth != nil && s.opts.Auth.TokenKey != nil {
			user := s.opts.Auth.serveToken(w, r)
			return request{route: routeToken, user: user}
		}
	}
	w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
	req, ok := parsePath(path)
	if !ok {
		writeError(w, http.StatusNotFound, errcode.NameUnknown.WithMessage("no such endpoint: %s %s", r.Method, path))
		req.route = routeUnknown
		return req
	}
	if r.URL.RawPath != "" {
		writeError(w, http.StatusBadRequest, errcode.NameInvalid.WithMessage("percent-encoded characters are not allowed in the path %q", r.URL.RawPath))
		return req
	}
	if req.name != "" {
		if err := storage.CheckName(req.name); err != nil {
			writeError(w, http.StatusBadRequest, errcode.NameInvalid.WithMessage("%v", err))
			return req
		}
	}
	user, ok := s.authorize(w, r, &req)
	req.user = user
	if !ok {
		return req
	}
	if s.opts.ReadOnly && r.Method != http.MethodGet && r.Method != http.MethodHead {
		writeError(w, http.StatusMethodNotAllowed, errcode.Unsupported.WithMessage("the registry is read-only"))
		return req
	}
	switch req.route {
	case routeBase:
		s.serveBase(w, r)
	case routeCatalog:
		s.serveCatalog(w, r, req)
	case routeBlob:
		s.serveBlob(w, r, req)
	case routeUpload, routeUploadID:
		if s.opts.MaxBlobBytes > 0 && r.Body != nil {
			if r.ContentLength > s.opts.MaxBlobBytes {
				writeError(w, http.StatusRequestEntityTooLarge, errcode.SizeInvalid.WithMessage("the body is %d bytes, the limit is %d", r.ContentLength, s.opts.MaxBlobBytes))
				return req
			}
			r.Body = http.MaxBytesReader(w, r.Body, s.opts.MaxBlobBytes)
		}
		if req.route == routeUpload {
			s.serveUploadStart(w, r, req)
		} else {
			s.serveUpload(w, r, req)
		}
	case routeManifest:
		s.serveManifest(w, r, req)
	case routeTags:
		s.serveTags(w, r, req)
	case routeReferrers:
		s.serveReferrers(w, r, req)
	}
	return req
}

func (s *Server) serveBase(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		methodNotAllowed(w, r, "GET, HEAD")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", "2")
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		io.WriteString(w, "{}")
	}
}

// writeError answers with one error entry and status.
func writeError(w http.ResponseWriter, status int, e errcode.Error) {
	errcode.WriteStatus(w, status, errcode.Errors{e})
}

func methodNotAllowed(w http.ResponseWriter, r *http.Request, allow string) {
	w.Header().Set("Allow", allow)
	writeError(w, http.StatusMethodNotAllowed, errcode.Unsupported.WithMessage("method %s is not allowed here", r.Method))
}

// storageError answers with the code that fits err: notFound (a
// BLOB_UNKNOWN, MANIFEST_UNKNOWN, …) for a missing object; otherwise by
// err's errdef category.
func (s *Server) storageError(w http.ResponseWriter, r *http.Request, err error, notFound errcode.Code) {
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		writeError(w, http.StatusRequestEntityTooLarge, errcode.SizeInvalid.WithMessage("the body is larger than the limit of %d bytes", tooBig.Limit))
	case errors.Is(err, errdef.ErrNotFound):
		writeError(w, http.StatusNotFound, notFound.WithMessage("%v", err))
	case errors.Is(err, storage.ErrReadOnly):
		writeError(w, http.StatusMethodNotAllowed, errcode.Unsupported.WithMessage("the registry is read-only"))
	case errors.Is(err, errdef.ErrDigestMismatch):
		writeError(w, http.StatusBadRequest, errcode.DigestInvalid.WithMessage("%v", err))
	case errors.Is(err, errdef.ErrSizeMismatch):
		writeError(w, http.StatusBadRequest, errcode.SizeInvalid.WithMessage("%v", err))
	case errors.Is(err, errdef.ErrUnsupported):
		writeError(w, http.StatusBadRequest, errcode.Unsupported.WithMessage("%v", err))
	case errors.Is(err, errdef.ErrInvalid):
		writeError(w, http.StatusBadRequest, errcode.NameInvalid.WithMessage("%v", err))
	case errors.Is(err, context.Canceled) || r.Context().Err() != nil:
		// The client went away; nobody reads the answer.
		w.WriteHeader(499)
	default:
		s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "error", err)
		errcode.WriteStatus(w, http.StatusInternalServerError, errcode.Errors{{Code: errcode.Unknown, Message: err.Error()}})
	}
}

// responseWriter records the status and counts the bytes written. It
// passes ReadFrom through so that blobs served from files use sendfile.
type responseWriter struct {
	http.ResponseWriter
	status int
	in     int64
	out    int64
}

func (w *responseWriter) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *responseWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(p)
	w.out += int64(n)
	return n, err
}

func (w *responseWriter) ReadFrom(src io.Reader) (int64, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	rf, ok := w.ResponseWriter.(io.ReaderFrom)
	var n int64
	var err error
	if ok {
		n, err = rf.ReadFrom(src)
	} else {
		n, err = io.Copy(struct{ io.Writer }{w.ResponseWriter}, src)
	}
	w.out += n
	return n, err
}

func (w *responseWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *responseWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if h, ok := w.ResponseWriter.(http.Hijacker); ok {
		return h.Hijack()
	}
	return nil, nil, fmt.Errorf("hijack: %w", errdef.ErrUnsupported)
}

func (w *responseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// countingBody counts what a request body yields and, with a stall
// timeout, moves the connection's read deadline before each read.
type countingBody struct {
	io.ReadCloser
	n     *int64
	rc    *http.ResponseController
	stall time.Duration
}

func (b *countingBody) Read(p []byte) (int, error) {
	if b.rc != nil {
		_ = b.rc.SetReadDeadline(time.Now().Add(b.stall))
	}
	n, err := b.ReadCloser.Read(p)
	*b.n += int64(n)
	return n, err
}
