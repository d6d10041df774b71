package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/lading-oci/lading/content"
	"github.com/lading-oci/lading/errdef"
	"github.com/lading-oci/lading/image"
	"github.com/lading-oci/lading/ref"
	"github.com/lading-oci/lading/registry/errcode"
)

// Repository is one repository of a registry, behind the content roles.
// Blobs and manifests are told apart by media type: descriptors of OCI or
// Docker manifests and indexes go to the manifests endpoint, everything else
// (layers, configs, and any artifact type) to the blobs endpoint.
type Repository struct {
	c    *Client
	h    *host
	name string

	mu       sync.Mutex
	aliases  map[string]string // ingest names chosen by callers → upload locations
	open     map[string]bool   // ingest refs with a live writer
	offsets  map[string]int64  // bytes the registry confirmed, by upload location
	minChunk int64             // the registry's OCI-Chunk-Min-Length
	recent   []recentManifest  // manifests just pushed or fetched, newest last
	// absent holds blobs a HEAD just found missing: the next Push of one
	// uploads without asking again (at worst it sends a blob that arrived
	// meanwhile, which the registry takes as it is).
	absent map[digest.Digest]bool
}

// maxAbsent bounds Repository.absent; it is emptied when full.
const maxAbsent = 4096

// recentManifest is a manifest the repository just sent or read: content
// named by its digest cannot change, so Tag and Fetch need not ask again.
type recentManifest struct {
	desc ocispec.Descriptor
	data []byte
}

// maxRecent bounds the manifests a Repository keeps.
const (
	maxRecent      = 8
	maxRecentBytes = 1 << 20
)

func (r *Repository) remember(desc ocispec.Descriptor, data []byte) {
	if len(data) > maxRecentBytes {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, m := range r.recent {
		if m.desc.Digest == desc.Digest {
			return
		}
	}
	if len(r.recent) == maxRecent {
		r.recent = r.recent[1:]
	}
	r.recent = append(r.recent, recentManifest{ocispec.Descriptor{MediaType: desc.MediaType, Digest: desc.Digest, Size: desc.Size}, data})
}

func (r *Repository) forgetManifest(d digest.Digest) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.recent = slices.DeleteFunc(r.recent, func(m recentManifest) bool { return m.desc.Digest == d })
}

func (r *Repository) recalled(d digest.Digest) (ocispec.Descriptor, []byte, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, m := range r.recent {
		if m.desc.Digest == d {
			return m.desc, m.data, true
		}
	}
	return ocispec.Descriptor{}, nil, false
}

func (r *Repository) setMinChunk(n int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.minChunk = n
}

var (
	_ content.Fetcher   = (*Repository)(nil)
	_ content.Pusher    = (*Repository)(nil)
	_ content.Exister   = (*Repository)(nil)
	_ content.Stater    = (*Repository)(nil)
	_ content.Deleter   = (*Repository)(nil)
	_ content.Resolver  = (*Repository)(nil)
	_ content.Tagger    = (*Repository)(nil)
	_ content.Untagger  = (*Repository)(nil)
	_ content.TagLister = (*Repository)(nil)
	_ content.Ingester  = (*Repository)(nil)
	_ content.TagStore  = (*Repository)(nil)

	_ content.ReferrerLister = (*Repository)(nil)
)

// Repository returns repository name of registry ("ghcr.io",
// "localhost:5000"; docker.io is contacted at registry-1.docker.io). The
// name is used as given: docker.io's official images are "library/NAME".
func (c *Client) Repository(registry, name string) (*Repository, error) {
	named, err := reference.WithName(registry + "/" + name)
	if err != nil || reference.Domain(named) != registry || reference.Path(named) != name {
		if err == nil {
			err = errors.New("not a registry and repository")
		}
		return nil, fmt.Errorf("repository %s/%s: %w: %v", registry, name, errdef.ErrInvalid, err)
	}
	h, err := c.host(registry)
	if err != nil {
		return nil, err
	}
	return &Repository{c: c, h: h, name: name, aliases: map[string]string{}, open: map[string]bool{}, offsets: map[string]int64{}}, nil
}

// RepositoryOf returns the repository a registry reference names.
func (c *Client) RepositoryOf(r ref.Reference) (*Repository, error) {
	if r.Scheme() != ref.SchemeRegistry {
		return nil, fmt.Errorf("reference %s: %w: not a registry reference", r, errdef.ErrInvalid)
	}
	return c.Repository(r.Registry(), r.Repository())
}

// Registry returns the registry the repository is on, as in references.
func (r *Repository) Registry() string { return r.h.name }

// Name returns the repository's name within its registry.
func (r *Repository) Name() string { return r.name }

// String returns registry/name.
func (r *Repository) String() string { return r.h.name + "/" + r.name }

func (r *Repository) pullScope() []string { return []string{repoScope(r.name, "pull")} }
func (r *Repository) pushScope() []string { return []string{repoScope(r.name, "pull", "push")} }
func (r *Repository) deleteScope() []string {
	return []string{repoScope(r.name, "delete")}
}

// mediaTypeArtifactManifest is the artifact manifest of the OCI 1.1
// release candidates, which some registries still hold.
const mediaTypeArtifactManifest = "application/vnd.oci.artifact.manifest.v1+json"

// isManifestType reports whether mt goes to the manifests endpoint.
func isManifestType(mt string) bool {
	return image.IsManifest(mt) || image.IsIndex(mt) || image.IsSchema1(mt) || mt == mediaTypeArtifactManifest
}

// do sends a request to the repository's host.
func (r *Repository) do(ctx context.Context, req request) (*http.Response, *target, error) {
	req.repo = r.name
	resp, t, err := r.c.do(ctx, r.h, req)
	if err != nil {
		return nil, t, unavailable(err)
	}
	return resp, t, nil
}

// missing adds to a not-found err what was missing, as an
// *errdef.NotFoundError (the repository itself when the registry says
// NAME_UNKNOWN).
func (r *Repository) missing(what errdef.What, name string, err error) error {
	if !errors.Is(err, errdef.ErrNotFound) {
		return err
	}
	nf := &errdef.NotFoundError{What: what, Name: name, In: r.String()}
	if errors.Is(err, errcode.NameUnknown) {
		nf = &errdef.NotFoundError{What: errdef.WhatRepository, Name: r.String()}
	}
	return fmt.Errorf("%w (%w)", nf, err)
}

// missingManifest is missing for a tag or a manifest digest.
func (r *Repository) missingManifest(reference string, err error) error {
	if strings.Contains(reference, ":") {
		return r.missing(errdef.WhatManifest, reference, err)
	}
	return r.missing(errdef.WhatTag, reference, err)
}

// ---- blobs

// Exists reports whether the registry has desc: a HEAD of the manifest or
// blob, by media type.
func (r *Repository) Exists(ctx context.Context, desc ocispec.Descriptor) (bool, error) {
	if err := content.CheckDigest(desc.Digest); err != nil {
		return false, fmt.Errorf("exists: %w", err)
	}
	req := request{method: http.MethodHead, path: r.name + "/blobs/" + desc.Digest.String(), scopes: r.pullScope()}
	if isManifestType(desc.MediaType) {
		req.path = r.name + "/manifests/" + desc.Digest.String()
		req.header = http.Header{"Accept": r.accept(desc.MediaType)}
	}
	resp, t, err := r.do(ctx, req)
	if err != nil {
		return false, fmt.Errorf("exists %s: %w", desc.Digest, err)
	}
	drain(resp.Body)
	switch resp.StatusCode {
	case http.StatusOK:
		return true, nil
	case http.StatusNotFound:
		if !isManifestType(desc.MediaType) {
			r.mu.Lock()
			if r.absent == nil || len(r.absent) >= maxAbsent {
				r.absent = map[digest.Digest]bool{}
			}
			r.absent[desc.Digest] = true
			r.mu.Unlock()
		}
		return false, nil
	}
	return false, fmt.Errorf("exists %s in %s: %w", desc.Digest, r, failure(t, resp))
}

// Stat returns the size of a blob (or, failing that, of a manifest) from a
// HEAD request.
func (r *Repository) Stat(ctx context.Context, dgst digest.Digest) (ocispec.Descriptor, error) {
	if err := content.CheckDigest(dgst); err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("stat: %w", err)
	}
	for _, kind := range []string{"blobs", "manifests"} {
		req := request{method: http.MethodHead, path: r.name + "/" + kind + "/" + dgst.String(), scopes: r.pullScope()}
		if kind == "manifests" {
			req.header = http.Header{"Accept": r.accept("")}
		}
		resp, t, err := r.do(ctx, req)
		if err != nil {
			return ocispec.Descriptor{}, fmt.Errorf("stat %s: %w", dgst, err)
		}
		drain(resp.Body)
		switch {
		case resp.StatusCode == http.StatusNotFound && kind == "blobs":
			continue
		case resp.StatusCode != http.StatusOK:
			return ocispec.Descriptor{}, fmt.Errorf("stat %s in %s: %w", dgst, r, r.missing(errdef.WhatBlob, dgst.String(), failure(t, resp)))
		case resp.ContentLength < 0:
			return ocispec.Descriptor{}, fmt.Errorf("stat %s in %s: %w: the registry gave no Content-Length", dgst, r, errdef.ErrInvalid)
		}
		mt := "application/octet-stream"
		if kind == "manifests" {
			mt = contentType(resp)
		}
		return ocispec.Descriptor{MediaType: mt, Digest: dgst, Size: resp.ContentLength}, nil
	}
	panic("unreachable")
}

// Fetch reads a blob, or a manifest for a manifest media type. A manifest
// is read whole and checked; a blob's reader checks size and (unless the
// client was made WithVerifyOnFetch(false)) digest as it streams, failing at
// the end on a mismatch, and resumes with a Range request when the
// connection breaks.
func (r *Repository) Fetch(ctx context.Context, desc ocispec.Descriptor) (io.ReadCloser, error) {
	if err := content.CheckDigest(desc.Digest); err != nil {
		return nil, fmt.Errorf("fetch: %w", err)
	}
	if desc.Size < 0 {
		return nil, fmt.Errorf("fetch %s: %w: negative size %d", desc.Digest, errdef.ErrInvalid, desc.Size)
	}
	if isManifestType(desc.MediaType) {
		_, data, err := r.fetchManifest(ctx, desc.Digest.String(), &desc)
		if err != nil {
			return nil, err
		}
		return io.NopCloser(bytes.NewReader(data)), nil
	}
	br := &blobReader{r: r, ctx: ctx, desc: desc}
	if err := br.open(0); err != nil {
		if errors.Is(err, errdef.ErrNotFound) {
			// A manifest fetched by a descriptor without its media type.
			if _, data, merr := r.fetchManifest(ctx, desc.Digest.String(), &desc); merr == nil {
				return io.NopCloser(bytes.NewReader(data)), nil
			}
		}
		return nil, err
	}
	if !r.c.cfg.verifyFetch {
		return br, nil
	}
	return &verifiedBlob{VerifyReader: content.NewVerifyReader(br, desc), br: br}, nil
}

type verifiedBlob struct {
	*content.VerifyReader
	br *blobReader
}

func (v *verifiedBlob) Close() error { return v.br.Close() }

// maxResumes bounds the Range requests one download makes after broken
// connections.
const maxResumes = 5

// blobReader streams a blob, resuming with Range requests when the
// connection breaks, and never returning more than the descriptor's size.
type blobReader struct {
	r       *Repository
	ctx     context.Context
	desc    ocispec.Descriptor
	body    io.ReadCloser
	off     int64
	resumes int
	err     error
}

// open GETs the blob from off.
func (b *blobReader) open(off int64) error {
	req := request{method: http.MethodGet, path: b.r.name + "/blobs/" + b.desc.Digest.String(), scopes: b.r.pullScope()}
	if off > 0 {
		req.header = http.Header{"Range": {fmt.Sprintf("bytes=%d-", off)}}
	}
	resp, t, err := b.r.do(b.ctx, req)
	if err != nil {
		return fmt.Errorf("fetch %s: %w", b.desc.Digest, err)
	}
	switch {
	case resp.StatusCode == http.StatusOK:
		if resp.ContentLength >= 0 && resp.ContentLength != b.desc.Size {
			resp.Body.Close()
			return fmt.Errorf("fetch %s from %s: %w: the registry sends %d bytes, the descriptor says %d",
				b.desc.Digest, b.r, errdef.ErrSizeMismatch, resp.ContentLength, b.desc.Size)
		}
		if off > 0 {
			// No range support: skip what we have.
			if _, err := io.CopyN(io.Discard, resp.Body, off); err != nil {
				resp.Body.Close()
				return fmt.Errorf("fetch %s: resume at %d: %w", b.desc.Digest, off, unavailable(err))
			}
		}
	case resp.StatusCode == http.StatusPartialContent && off > 0:
		start, ok := rangeStart(resp.Header.Get("Content-Range"))
		if !ok || start != off {
			resp.Body.Close()
			return fmt.Errorf("fetch %s: resume at %d: %w: the registry answered Content-Range %q",
				b.desc.Digest, off, errdef.ErrInvalid, resp.Header.Get("Content-Range"))
		}
	default:
		return fmt.Errorf("fetch %s from %s: %w", b.desc.Digest, b.r, b.r.missing(errdef.WhatBlob, b.desc.Digest.String(), failure(t, resp)))
	}
	b.body, b.off = resp.Body, off
	return nil
}

func rangeStart(cr string) (int64, bool) {
	rest, ok := strings.CutPrefix(strings.TrimSpace(cr), "bytes ")
	if !ok {
		return 0, false
	}
	first, _, ok := strings.Cut(rest, "-")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(first, 10, 64)
	return n, err == nil
}

func (b *blobReader) Read(p []byte) (int, error) {
	for {
		if b.err != nil {
			return 0, b.err
		}
		if rem := b.desc.Size - b.off; int64(len(p)) > rem+1 {
			p = p[:rem+1] // one byte more than expected shows an overlong body
		}
		n, err := b.body.Read(p)
		b.off += int64(n)
		if b.off > b.desc.Size {
			b.err = fmt.Errorf("fetch %s from %s: %w: more than the %d bytes declared", b.desc.Digest, b.r, errdef.ErrSizeMismatch, b.desc.Size)
			return n - int(b.off-b.desc.Size), b.err
		}
		switch {
		case err == nil:
			return n, nil
		case errors.Is(err, io.EOF) && b.off == b.desc.Size:
			b.err = io.EOF
			return n, io.EOF
		case b.ctx.Err() != nil:
			b.err = b.ctx.Err()
			return n, b.err
		}
		// A short body or a broken connection: resume where we are.
		if b.resumes >= maxResumes {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				err = fmt.Errorf("%w: the connection ended after %d of %d bytes", errdef.ErrSizeMismatch, b.off, b.desc.Size)
			}
			b.err = fmt.Errorf("fetch %s from %s: %w", b.desc.Digest, b.r, err)
			return n, b.err
		}
		b.resumes++
		b.r.c.log.DebugContext(b.ctx, "blob download resumed", "digest", b.desc.Digest, "offset", b.off, "error", err)
		b.body.Close()
		if oerr := b.open(b.off); oerr != nil {
			b.err = oerr
			return n, b.err
		}
		if n > 0 {
			return n, nil
		}
	}
}

func (b *blobReader) Close() error {
	if b.body != nil {
		return b.body.Close()
	}
	return nil
}

// Push uploads content: manifests and indexes (OCI and Docker) with a PUT
// to the manifests endpoint, anything else as a blob (POST, then one PUT
// with the body streamed, or chunks WithChunkedPush). A blob the registry
// has already is not sent (a HEAD first, unless Exists has just found it
// missing). r must hold exactly expected.Size bytes; the registry checks
// the digest.
func (r *Repository) Push(ctx context.Context, expected ocispec.Descriptor, rd io.Reader) error {
	if err := content.CheckDigest(expected.Digest); err != nil {
		return fmt.Errorf("push: %w", err)
	}
	if expected.Size < 0 {
		return fmt.Errorf("push %s: %w: negative size %d", expected.Digest, errdef.ErrInvalid, expected.Size)
	}
	if isManifestType(expected.MediaType) {
		if expected.Size > r.c.cfg.maxManifest {
			return fmt.Errorf("push %s: %w: manifest of %d bytes exceeds the %d-byte limit", expected.Digest, errdef.ErrTooLarge, expected.Size, r.c.cfg.maxManifest)
		}
		vr := content.NewVerifyReader(content.ContextReader(ctx, rd), expected)
		data, err := io.ReadAll(vr)
		if err != nil {
			return fmt.Errorf("push %s: %w", expected.Digest, err)
		}
		return r.PushManifest(ctx, expected, data)
	}
	r.mu.Lock()
	known := r.absent[expected.Digest]
	delete(r.absent, expected.Digest)
	r.mu.Unlock()
	if !known {
		if ok, err := r.Exists(ctx, expected); err == nil && ok {
			return nil
		}
		r.mu.Lock()
		delete(r.absent, expected.Digest)
		r.mu.Unlock()
	}
	if r.c.cfg.chunkedAbove > 0 && expected.Size > r.c.cfg.chunkedAbove {
		return r.pushChunked(ctx, expected, rd)
	}
	loc, _, err := r.startUpload(ctx, nil)
	if err != nil {
		return fmt.Errorf("push %s: %w", expected.Digest, err)
	}
	if err := r.putBlob(ctx, loc, expected, rd); err != nil {
		r.cancelUpload(ctx, loc)
		return fmt.Errorf("push %s: %w", expected.Digest, err)
	}
	return nil
}

func (r *Repository) pushChunked(ctx context.Context, expected ocispec.Descriptor, rd io.Reader) error {
	w, err := r.Ingest(ctx, "")
	if err != nil {
		return fmt.Errorf("push %s: %w", expected.Digest, err)
	}
	body, _, err := exactBody(rd, expected.Size)
	if err != nil {
		w.Abort(ctx)
		return fmt.Errorf("push %s: %w", expected.Digest, err)
	}
	buf := make([]byte, 1<<20)
	if _, err := io.CopyBuffer(w, body, buf); err != nil {
		w.Abort(ctx)
		return fmt.Errorf("push %s: %w", expected.Digest, err)
	}
	if _, err := w.Commit(ctx, expected.Size, expected.Digest); err != nil {
		return fmt.Errorf("push %s: %w", expected.Digest, err)
	}
	return nil
}

// mount names a blob to mount from another repository.
type mount struct {
	digest digest.Digest
	from   string
}

// startUpload opens an upload session (POST /blobs/uploads/), or mounts a
// blob: mounted is true when the registry did (201).
func (r *Repository) startUpload(ctx context.Context, m *mount) (loc *url.URL, mounted bool, err error) {
	req := request{method: http.MethodPost, path: r.name + "/blobs/uploads/", scopes: r.pushScope(), retryable: true,
		body: http.NoBody, length: 0}
	if m != nil {
		req.query = url.Values{"mount": {m.digest.String()}, "from": {m.from}}
		req.scopes = mergeScopes(req.scopes, []string{repoScope(m.from, "pull")})
	}
	resp, t, err := r.do(ctx, req)
	if err != nil {
		return nil, false, fmt.Errorf("start upload to %s: %w", r, err)
	}
	switch resp.StatusCode {
	case http.StatusCreated:
		drain(resp.Body)
		if m != nil {
			return nil, true, nil
		}
		return nil, false, fmt.Errorf("start upload to %s: %w: the registry answered 201 Created to a new upload", r, errdef.ErrInvalid)
	case http.StatusAccepted:
		drain(resp.Body)
		loc, err := location(resp)
		if err != nil {
			return nil, false, fmt.Errorf("start upload to %s: %w", r, err)
		}
		if v := resp.Header.Get("OCI-Chunk-Min-Length"); v != "" {
			if n, err := strconv.ParseInt(v, 10, 64); err == nil && n > 0 {
				r.setMinChunk(n)
			}
		}
		return loc, false, nil
	}
	return nil, false, fmt.Errorf("start upload to %s: %w", r, failure(t, resp))
}

// location returns the Location header of resp, resolved against the URL
// the request went to.
func location(resp *http.Response) (*url.URL, error) {
	l := resp.Header.Get("Location")
	if l == "" {
		return nil, fmt.Errorf("%w: the registry's answer has no Location header", errdef.ErrInvalid)
	}
	u, err := url.Parse(l)
	if err != nil {
		return nil, fmt.Errorf("%w: Location %q: %v", errdef.ErrInvalid, l, err)
	}
	return resp.Request.URL.ResolveReference(u), nil
}

// withDigest returns loc with the digest query parameter added.
func withDigest(loc *url.URL, d digest.Digest) *url.URL {
	u := *loc
	q := u.Query()
	q.Set("digest", d.String())
	u.RawQuery = q.Encode()
	return &u
}

// putBlob completes an upload session with the whole blob in one PUT.
func (r *Repository) putBlob(ctx context.Context, loc *url.URL, desc ocispec.Descriptor, rd io.Reader) error {
	body, getBody, err := exactBody(rd, desc.Size)
	if err != nil {
		return err
	}
	req := request{method: http.MethodPut, u: withDigest(loc, desc.Digest), scopes: r.pushScope(),
		header: http.Header{"Content-Type": {"application/octet-stream"}},
		body:   body, length: desc.Size, getBody: getBody}
	resp, t, err := r.do(ctx, req)
	if er, ok := body.(*exactReader); ok && er.err != nil {
		// What the reader found wrong explains the failure best.
		if resp != nil {
			resp.Body.Close()
		}
		return er.err
	}
	if err != nil {
		return err
	}
	switch resp.StatusCode {
	case http.StatusCreated, http.StatusNoContent, http.StatusOK:
		drain(resp.Body)
		return nil
	}
	return failure(t, resp)
}

// exactBody returns a request body that is exactly size bytes of rd, and a
// way to open it again when rd can be read at an offset. A file is checked
// against its size up front and sent as it is, so the kernel can copy it to
// the connection; other readers fail with errdef.ErrSizeMismatch when they
// end early or hold more than size bytes.
func exactBody(rd io.Reader, size int64) (io.Reader, func() (io.ReadCloser, error), error) {
	if f, ok := rd.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
			if pos, err := f.Seek(0, io.SeekCurrent); err == nil {
				if rem := fi.Size() - pos; rem != size {
					return nil, nil, fmt.Errorf("%w: %d bytes to send, the descriptor says %d", errdef.ErrSizeMismatch, rem, size)
				}
				again := func() (io.ReadCloser, error) {
					return io.NopCloser(io.NewSectionReader(f, pos, size)), nil
				}
				// The transport hands an *os.File body to the kernel
				// (sendfile), and closes it: give it a file of its own.
				if own := reopen(f, pos); own != nil {
					return own, again, nil
				}
				return io.NopCloser(f), again, nil
			}
		}
	}
	type sizedReaderAt interface {
		io.ReaderAt
		Len() int
		Size() int64
	}
	if ra, ok := rd.(sizedReaderAt); ok {
		pos := ra.Size() - int64(ra.Len())
		if rem := int64(ra.Len()); rem != size {
			return nil, nil, fmt.Errorf("%w: %d bytes to send, the descriptor says %d", errdef.ErrSizeMismatch, rem, size)
		}
		open := func() (io.ReadCloser, error) { return io.NopCloser(io.NewSectionReader(ra, pos, size)), nil }
		return io.NewSectionReader(ra, pos, size), open, nil
	}
	return &exactReader{r: rd, n: size, size: size}, nil, nil
}

// reopen opens the file f has open again, at offset pos, with an offset
// of its own (Linux: through /proc/self/fd); nil when it cannot.
func reopen(f *os.File, pos int64) *os.File {
	if runtime.GOOS != "linux" {
		return nil
	}
	g, err := os.Open(fmt.Sprintf("/proc/self/fd/%d", f.Fd()))
	if err != nil {
		return nil
	}
	if fi, err := g.Stat(); err != nil || !fi.Mode().IsRegular() {
		g.Close()
		return nil
	}
	if _, err := g.Seek(pos, io.SeekStart); err != nil {
		g.Close()
		return nil
	}
	return g
}

// exactReader passes on exactly n bytes of r, failing with
// errdef.ErrSizeMismatch when r ends early or has more.
type exactReader struct {
	r    io.Reader
	n    int64 // left to pass on
	size int64
	err  error
}

func (e *exactReader) Read(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	if e.n == 0 {
		var one [1]byte
		for {
			n, err := e.r.Read(one[:])
			if n > 0 {
				e.err = fmt.Errorf("%w: more than the %d bytes declared", errdef.ErrSizeMismatch, e.size)
				return 0, e.err
			}
			if errors.Is(err, io.EOF) {
				return 0, io.EOF
			}
			if err != nil {
				e.err = err
				return 0, err
			}
		}
	}
	if int64(len(p)) > e.n {
		p = p[:e.n]
	}
	n, err := e.r.Read(p)
	e.n -= int64(n)
	switch {
	case errors.Is(err, io.EOF) && e.n > 0:
		e.err = fmt.Errorf("%w: got %d bytes, the descriptor says %d", errdef.ErrSizeMismatch, e.size-e.n, e.size)
		return n, e.err
	case errors.Is(err, io.EOF):
		err = nil // the check for more comes on the next Read
	case err != nil:
		e.err = err
	}
	return n, err
}

// cancelUpload ends an upload session, ignoring failures (the registry
// times sessions out anyway).
func (r *Repository) cancelUpload(ctx context.Context, loc *url.URL) {
	if loc == nil {
		return
	}
	ctx = context.WithoutCancel(ctx)
	resp, _, err := r.do(ctx, request{method: http.MethodDelete, u: loc, scopes: r.pushScope(), noRetry: true})
	if err == nil {
		drain(resp.Body)
	}
}

// Mount makes blob desc, stored in repository from of the same registry,
// part of this repository without sending it (a cross-repository mount).
// When the registry does not mount, the blob is uploaded instead: from
// getContent when it is not nil, else streamed from the other repository.
// A blob the repository already has is left alone.
func (r *Repository) Mount(ctx context.Context, desc ocispec.Descriptor, from string, getContent func() (io.ReadCloser, error)) error {
	if err := content.CheckDigest(desc.Digest); err != nil {
		return fmt.Errorf("mount: %w", err)
	}
	if ok, err := r.Exists(ctx, desc); err == nil && ok {
		return nil
	}
	loc, mounted, err := r.startUpload(ctx, &mount{digest: desc.Digest, from: from})
	if err != nil {
		return fmt.Errorf("mount %s from %s: %w", desc.Digest, from, err)
	}
	if mounted {
		return nil
	}
	r.c.log.DebugContext(ctx, "registry did not mount; uploading", "digest", desc.Digest, "from", from, "to", r.name)
	var rc io.ReadCloser
	if getContent != nil {
		rc, err = getContent()
	} else {
		var src *Repository
		if src, err = r.c.Repository(r.h.name, from); err == nil {
			rc, err = src.Fetch(ctx, desc)
		}
	}
	if err != nil {
		r.cancelUpload(ctx, loc)
		return fmt.Errorf("mount %s from %s: the registry did not mount, and the content could not be read: %w", desc.Digest, from, err)
	}
	defer rc.Close()
	if err := r.putBlob(ctx, loc, desc, rc); err != nil {
		r.cancelUpload(ctx, loc)
		return fmt.Errorf("mount %s from %s: upload: %w", desc.Digest, from, err)
	}
	return nil
}

// Delete deletes a blob. Registries may refuse (errdef.ErrUnsupported).
func (r *Repository) Delete(ctx context.Context, dgst digest.Digest) error {
	if err := content.CheckDigest(dgst); err != nil {
		return fmt.Errorf("delete: %w", err)
	}
	return r.delete(ctx, "blobs", dgst.String(), "delete blob "+dgst.String())
}

func (r *Repository) delete(ctx context.Context, kind, obj, what string) error {
	byTag := kind == "manifests" && !strings.Contains(obj, ":")
	resp, t, err := r.do(ctx, request{method: http.MethodDelete, path: r.name + "/" + kind + "/" + obj, scopes: r.deleteScope()})
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	switch resp.StatusCode {
	case http.StatusAccepted, http.StatusOK, http.StatusNoContent:
		drain(resp.Body)
		return nil
	case http.StatusBadRequest, http.StatusMethodNotAllowed:
		err := failure(t, resp)
		if byTag || !errors.Is(err, errdef.ErrNotFound) && !errors.Is(err, errdef.ErrDigestMismatch) {
			err = fmt.Errorf("%w: %w", errdef.ErrUnsupported, err)
		}
		return fmt.Errorf("%s in %s: %w", what, r, err)
	}
	w := errdef.WhatBlob
	if kind == "manifests" {
		w = errdef.WhatManifest
		if byTag {
			w = errdef.WhatTag
		}
	}
	return fmt.Errorf("%s in %s: %w", what, r, r.missing(w, obj, failure(t, resp)))
}

// ---- manifests

// accept returns the Accept header values for manifests, with extra first
// when it is a manifest type not in the list.
func (r *Repository) accept(extra string) []string {
	list := r.c.cfg.accept
	if extra != "" && isManifestType(extra) && !contains(list, extra) {
		list = append([]string{extra}, list...)
	}
	return []string{strings.Join(list, ", ")}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// contentType returns the media type of a response, without parameters.
func contentType(resp *http.Response) string {
	ct := resp.Header.Get("Content-Type")
	if mt, _, err := mime.ParseMediaType(ct); err == nil {
		return mt
	}
	return strings.TrimSpace(ct)
}

var anchoredTag = regexp.MustCompile(`^(?:` + reference.TagRegexp.String() + `)$`)

// checkReference reports whether s is a tag or a digest.
func checkReference(s string) (digest.Digest, error) {
	if strings.Contains(s, ":") {
		d := digest.Digest(s)
		if err := content.CheckDigest(d); err != nil {
			return "", err
		}
		return d, nil
	}
	if !anchoredTag.MatchString(s) {
		return "", fmt.Errorf("tag %q: %w: want [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}", s, errdef.ErrInvalid)
	}
	return "", nil
}

// FetchReference fetches the manifest a tag or digest names, returning its
// descriptor and bytes. The digest is computed from the bytes (sha256, or
// the algorithm of the digest asked for); a manifest that does not match the
// digest asked for, or is over the size limit, is refused.
func (r *Repository) FetchReference(ctx context.Context, reference string) (ocispec.Descriptor, []byte, error) {
	return r.fetchManifest(ctx, reference, nil)
}

// fetchManifest GETs a manifest by tag or digest; want, when not nil, is
// the descriptor it must match.
func (r *Repository) fetchManifest(ctx context.Context, reference string, want *ocispec.Descriptor) (ocispec.Descriptor, []byte, error) {
	what := "fetch manifest " + reference
	dgst, err := checkReference(reference)
	if err != nil {
		return ocispec.Descriptor{}, nil, fmt.Errorf("%s: %w", what, err)
	}
	max := r.c.cfg.maxManifest
	if want != nil && want.Size > max {
		return ocispec.Descriptor{}, nil, fmt.Errorf("%s: %w: %d bytes exceeds the %d-byte limit for manifests", what, errdef.ErrTooLarge, want.Size, max)
	}
	if dgst != "" {
		if desc, data, ok := r.recalled(dgst); ok && (want == nil || want.Size == desc.Size) {
			return desc, bytes.Clone(data), nil
		}
	}
	mt := ""
	if want != nil {
		mt = want.MediaType
	}
	resp, t, err := r.do(ctx, request{method: http.MethodGet, path: r.name + "/manifests/" + reference,
		header: http.Header{"Accept": r.accept(mt)}, scopes: r.pullScope()})
	if err != nil {
		return ocispec.Descriptor{}, nil, fmt.Errorf("%s: %w", what, err)
	}
	if resp.StatusCode != http.StatusOK {
		return ocispec.Descriptor{}, nil, fmt.Errorf("%s from %s: %w", what, r, r.missingManifest(reference, failure(t, resp)))
	}
	header := resp.Header
	ct := contentType(resp)
	data, err := readCapped(resp, max)
	if err != nil {
		return ocispec.Descriptor{}, nil, fmt.Errorf("%s from %s: %w", what, r, err)
	}
	desc, err := r.describeManifest(reference, dgst, ct, header.Get("Docker-Content-Digest"), data)
	if err != nil {
		return ocispec.Descriptor{}, nil, fmt.Errorf("%s from %s: %w", what, r, err)
	}
	if want != nil && want.Size != desc.Size {
		return ocispec.Descriptor{}, nil, fmt.Errorf("%s from %s: %w: got %d bytes, the descriptor says %d", what, r, errdef.ErrSizeMismatch, desc.Size, want.Size)
	}
	r.remember(desc, data)
	return desc, data, nil
}

// describeManifest checks fetched manifest bytes and returns their
// descriptor.
func (r *Repository) describeManifest(reference string, want digest.Digest, ct, dcd string, data []byte) (ocispec.Descriptor, error) {
	alg := digest.Canonical
	if want != "" {
		alg = want.Algorithm()
	}
	got := alg.FromBytes(data)
	if want != "" && got != want {
		return ocispec.Descriptor{}, fmt.Errorf("%w: the registry's manifest %s hashes to %s", errdef.ErrDigestMismatch, want, got)
	}
	if dcd != "" && digest.Digest(dcd).Validate() == nil && digest.Digest(dcd).Algorithm() == alg && digest.Digest(dcd) != got {
		r.c.log.Warn("registry sent a wrong Docker-Content-Digest; using the digest of the content",
			"registry", r.h.name, "repository", r.name, "reference", reference, "header", dcd, "content", got)
	}
	var doc struct {
		MediaType string `json:"mediaType"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("%w: the manifest is not JSON: %v", errdef.ErrInvalid, err)
	}
	mt := doc.MediaType
	generic := ct == "" || ct == "application/json" || ct == "text/plain" || ct == "application/octet-stream"
	switch {
	case mt != "" && !generic && mt != ct:
		return ocispec.Descriptor{}, fmt.Errorf("%w: Content-Type is %q but the manifest says mediaType %q", errdef.ErrInvalid, ct, mt)
	case mt == "" && !generic:
		mt = ct
	case mt == "":
		mt = image.MediaTypeOf(data)
	}
	if image.IsSchema1(mt) && !contains(r.c.cfg.accept, mt) {
		return ocispec.Descriptor{}, fmt.Errorf("%w: Docker schema 1 manifest (%s)", errdef.ErrUnsupported, mt)
	}
	if mt == "" {
		return ocispec.Descriptor{}, fmt.Errorf("%w: cannot tell the manifest's media type", errdef.ErrInvalid)
	}
	return ocispec.Descriptor{MediaType: mt, Digest: got, Size: int64(len(data))}, nil
}

// Resolve returns the descriptor of the manifest a tag or digest names,
// from a HEAD request when the registry's answer carries digest, type and
// length (a later Fetch checks the bytes against that digest), else from a
// GET. A digest that names a blob rather than a manifest resolves to the
// blob.
func (r *Repository) Resolve(ctx context.Context, reference string) (ocispec.Descriptor, error) {
	what := "resolve " + reference
	dgst, err := checkReference(reference)
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("%s: %w", what, err)
	}
	head := request{method: http.MethodHead, path: r.name + "/manifests/" + reference,
		header: http.Header{"Accept": r.accept("")}, scopes: r.pullScope(), noRetry: dgst != ""}
	resp, t, err := r.do(ctx, head)
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("%s: %w", what, err)
	}
	drain(resp.Body)
	if dgst != "" && resp.StatusCode >= 500 {
		// Some registries (distribution 2.8) fail this way for a digest
		// that names a blob. Try the blob; else ask again, with retries.
		if d, err := r.Stat(ctx, dgst); err == nil {
			return d, nil
		}
		head.noRetry = false
		if resp, t, err = r.do(ctx, head); err != nil {
			return ocispec.Descriptor{}, fmt.Errorf("%s: %w", what, err)
		}
		drain(resp.Body)
	}
	switch resp.StatusCode {
	case http.StatusOK:
		d := digest.Digest(resp.Header.Get("Docker-Content-Digest"))
		mt := contentType(resp)
		if d.Validate() == nil && (dgst == "" || d == dgst) && resp.ContentLength >= 0 && isManifestType(mt) && !image.IsSchema1(mt) {
			return ocispec.Descriptor{MediaType: mt, Digest: d, Size: resp.ContentLength}, nil
		}
		desc, _, err := r.fetchManifest(ctx, reference, nil)
		return desc, err
	case http.StatusNotFound:
		if dgst != "" {
			if d, err := r.Stat(ctx, dgst); err == nil {
				return d, nil
			}
		}
		return ocispec.Descriptor{}, fmt.Errorf("%s in %s: %w", what, r, r.missingManifest(reference, failure(t, resp)))
	}
	if resp.StatusCode == http.StatusMethodNotAllowed {
		// A registry without HEAD for manifests.
		desc, _, err := r.fetchManifest(ctx, reference, nil)
		return desc, err
	}
	return ocispec.Descriptor{}, fmt.Errorf("%s in %s: %w", what, r, failure(t, resp))
}

// PushManifest uploads a manifest or index by its digest and points tags
// at it. data must match desc (digest, size, and the document's mediaType
// field). With several tags the registry is asked to set them in the same
// request (?tag=); those it does not confirm with OCI-Tag are set one by
// one. A manifest with a subject is added to the referrers tag of its
// subject when the registry does not maintain the referrers API itself.
func (r *Repository) PushManifest(ctx context.Context, desc ocispec.Descriptor, data []byte, tags ...string) error {
	what := "push manifest " + desc.Digest.String()
	if err := content.CheckDigest(desc.Digest); err != nil {
		return fmt.Errorf("push manifest: %w", err)
	}
	for _, tag := range tags {
		if _, err := checkReference(tag); err != nil || strings.Contains(tag, ":") {
			return fmt.Errorf("%s: tag %q: %w", what, tag, errdef.ErrInvalid)
		}
	}
	if int64(len(data)) != desc.Size {
		return fmt.Errorf("%s: %w: %d bytes, the descriptor says %d", what, errdef.ErrSizeMismatch, len(data), desc.Size)
	}
	if got := desc.Digest.Algorithm().FromBytes(data); got != desc.Digest {
		return fmt.Errorf("%s: %w: the manifest hashes to %s", what, errdef.ErrDigestMismatch, got)
	}
	if int64(len(data)) > r.c.cfg.maxManifest {
		return fmt.Errorf("%s: %w: %d bytes exceeds the %d-byte limit for manifests", what, errdef.ErrTooLarge, len(data), r.c.cfg.maxManifest)
	}
	var doc manifestDoc
	if err := json.Unmarshal(data, &doc); err != nil {
		return fmt.Errorf("%s: %w: not JSON: %v", what, errdef.ErrInvalid, err)
	}
	mt := desc.MediaType
	if doc.MediaType != "" && mt != doc.MediaType {
		return fmt.Errorf("%s: %w: the descriptor says media type %q, the manifest %q", what, errdef.ErrInvalid, mt, doc.MediaType)
	}
	if !isManifestType(mt) {
		return fmt.Errorf("%s: %w: media type %q is not a manifest or index", what, errdef.ErrInvalid, mt)
	}
	var confirmed map[string]bool
	var subjectDone bool
	var err error
	switch len(tags) {
	case 0:
		confirmed, subjectDone, err = r.putManifest(ctx, desc, data, desc.Digest.String(), nil)
	case 1:
		// One request by tag works everywhere.
		_, subjectDone, err = r.putManifest(ctx, desc, data, tags[0], nil)
		confirmed = map[string]bool{tags[0]: true}
	default:
		confirmed, subjectDone, err = r.putManifest(ctx, desc, data, desc.Digest.String(), tags)
	}
	if err != nil {
		return fmt.Errorf("%s to %s: %w", what, r, err)
	}
	for _, tag := range tags {
		if confirmed[tag] {
			continue
		}
		if _, _, err := r.putManifest(ctx, desc, data, tag, nil); err != nil {
			return fmt.Errorf("%s to %s: tag %s: %w", what, r, tag, err)
		}
	}
	r.remember(desc, data)
	if doc.Subject != nil && !subjectDone {
		if err := r.addReferrer(ctx, *doc.Subject, referrerEntry(desc, &doc)); err != nil {
			return fmt.Errorf("%s to %s: the registry has no referrers API, and updating the referrers tag failed: %w", what, r, err)
		}
	}
	return nil
}

// manifestDoc has the fields of a manifest or index the client looks at.
type manifestDoc struct {
	MediaType    string              `json:"mediaType,omitempty"`
	ArtifactType string              `json:"artifactType,omitempty"`
	Config       *ocispec.Descriptor `json:"config,omitempty"`
	Subject      *ocispec.Descriptor `json:"subject,omitempty"`
	Annotations  map[string]string   `json:"annotations,omitempty"`
}

// putManifest PUTs data by reference (with ?tag= for tags), returning the
// tags the registry confirmed and whether it processed the subject.
func (r *Repository) putManifest(ctx context.Context, desc ocispec.Descriptor, data []byte, reference string, tags []string) (map[string]bool, bool, error) {
	req := request{method: http.MethodPut, path: r.name + "/manifests/" + reference, scopes: r.pushScope(),
		header: http.Header{"Content-Type": {desc.MediaType}},
		body:   bytes.NewReader(data), length: int64(len(data)),
		getBody: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }}
	if len(tags) > 0 {
		req.query = url.Values{"tag": tags}
	}
	resp, t, err := r.do(ctx, req)
	if err != nil {
		return nil, false, err
	}
	switch resp.StatusCode {
	case http.StatusCreated, http.StatusOK, http.StatusAccepted, http.StatusNoContent:
	case http.StatusRequestURITooLong, http.StatusRequestHeaderFieldsTooLarge:
		if len(tags) > 0 {
			// Too many tags for one request: by digest, then one by one.
			drain(resp.Body)
			return r.putManifest(ctx, desc, data, reference, nil)
		}
		return nil, false, failure(t, resp)
	default:
		return nil, false, failure(t, resp)
	}
	drain(resp.Body)
	if d := resp.Header.Get("Docker-Content-Digest"); d != "" && digest.Digest(d) != desc.Digest && digest.Digest(d).Algorithm() == desc.Digest.Algorithm() {
		return nil, false, fmt.Errorf("%w: the registry stored the manifest as %s", errdef.ErrDigestMismatch, d)
	}
	confirmed := map[string]bool{}
	for _, v := range resp.Header.Values("OCI-Tag") {
		for _, tag := range strings.Split(v, ",") {
			confirmed[strings.TrimSpace(tag)] = true
		}
	}
	return confirmed, resp.Header.Get("OCI-Subject") != "", nil
}

// Tag points tag at the manifest desc, which the repository must have.
func (r *Repository) Tag(ctx context.Context, desc ocispec.Descriptor, tag string) error {
	if _, err := checkReference(tag); err != nil || strings.Contains(tag, ":") {
		return fmt.Errorf("tag %s as %q: %w: want [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}", desc.Digest, tag, errdef.ErrInvalid)
	}
	if err := content.CheckDigest(desc.Digest); err != nil {
		return fmt.Errorf("tag %q: %w", tag, err)
	}
	var data []byte
	if desc.Data != nil && int64(len(desc.Data)) == desc.Size && desc.Digest.Algorithm().FromBytes(desc.Data) == desc.Digest && isManifestType(desc.MediaType) {
		data = desc.Data
	} else {
		got, d, err := r.fetchManifest(ctx, desc.Digest.String(), &desc)
		if err != nil {
			return fmt.Errorf("tag %s as %s: %w", desc.Digest, tag, err)
		}
		data = d
		desc.MediaType = got.MediaType
	}
	desc.Data = nil
	if _, _, err := r.putManifest(ctx, desc, data, tag, nil); err != nil {
		return fmt.Errorf("tag %s as %s in %s: %w", desc.Digest, tag, r, err)
	}
	return nil
}

// Untag deletes a tag. A registry that deletes manifests only by digest
// answers errdef.ErrUnsupported (or errdef.ErrNotFound when the tag does not
// exist anyway).
func (r *Repository) Untag(ctx context.Context, tag string) error {
	if _, err := checkReference(tag); err != nil || strings.Contains(tag, ":") {
		return fmt.Errorf("untag %q: %w", tag, errdef.ErrInvalid)
	}
	err := r.delete(ctx, "manifests", tag, "untag "+tag)
	if err == nil || !errors.Is(err, errdef.ErrUnsupported) {
		return err
	}
	if _, rerr := r.Resolve(ctx, tag); errors.Is(rerr, errdef.ErrNotFound) {
		return fmt.Errorf("untag %s in %s: %w", tag, r, rerr)
	}
	return err
}

// DeleteManifest deletes a manifest by digest (and with it every tag that
// points at it). For a manifest with a subject, on a registry without the
// referrers API, it is also taken out of the referrers tag of its subject.
func (r *Repository) DeleteManifest(ctx context.Context, dgst digest.Digest) error {
	if err := content.CheckDigest(dgst); err != nil {
		return fmt.Errorf("delete manifest: %w", err)
	}
	var subject *ocispec.Descriptor
	if _, data, err := r.fetchManifest(ctx, dgst.String(), nil); err == nil {
		var doc manifestDoc
		if json.Unmarshal(data, &doc) == nil {
			subject = doc.Subject
		}
	}
	r.forgetManifest(dgst)
	if err := r.delete(ctx, "manifests", dgst.String(), "delete manifest "+dgst.String()); err != nil {
		return err
	}
	if subject != nil {
		if err := r.removeReferrer(ctx, *subject, dgst); err != nil {
			return fmt.Errorf("delete manifest %s in %s: the manifest is deleted, but its referrers tag was not updated: %w", dgst, r, err)
		}
	}
	return nil
}

// Tags lists the repository's tags in the registry's pages (n=1000,
// following Link headers), each page sorted. A repository the registry does
// not know (NAME_UNKNOWN) has no tags: fn is not called.
func (r *Repository) Tags(ctx context.Context, fn func(tags []string) error) error {
	what := "tags of " + r.String()
	err := r.c.paginate(ctx, r.h, what, request{
		method: http.MethodGet, path: r.name + "/tags/list",
		query: url.Values{"n": {strconv.Itoa(content.TagPageSize)}}, scopes: r.pullScope(),
	}, func(data []byte) (string, int, error) {
		var page struct {
			Tags []string `json:"tags"`
		}
		if err := json.Unmarshal(data, &page); err != nil {
			return "", 0, fmt.Errorf("%s: %w: %v", what, errdef.ErrInvalid, err)
		}
		if len(page.Tags) == 0 {
			return "", 0, nil
		}
		// The specification wants lexical order; older registries (2.8)
		// answer in storage order.
		slices.Sort(page.Tags)
		return page.Tags[len(page.Tags)-1], len(page.Tags), fn(page.Tags)
	})
	if errors.Is(err, errdef.ErrNotFound) && errcodeIn(err, "NAME_UNKNOWN") {
		return nil // registries create repositories on first push: none yet has no tags
	}
	return err
}

// errcodeIn reports whether err carries the wire error code.
func errcodeIn(err error, code errcode.Code) bool {
	return errors.Is(err, code)
}
