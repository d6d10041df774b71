package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/lading-oci/lading/errdef"
	"github.com/lading-oci/lading/image"
	"github.com/lading-oci/lading/registry/errcode"
	"github.com/lading-oci/lading/registry/storage"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func (s *Server) serveManifest(w http.ResponseWriter, r *http.Request, req request) {
	ref := req.ref
	isDigest := strings.Contains(ref, ":")
	if isDigest {
		if _, err := parseDigest(ref); err != nil {
			writeError(w, http.StatusBadRequest, errcode.DigestInvalid.WithMessage("%v", err))
			return
		}
	} else if err := storage.CheckTag(ref); err != nil {
		writeError(w, http.StatusBadRequest, errcode.ManifestInvalid.WithMessage("%v", err))
		return
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		s.getManifest(w, r, req)
	case http.MethodPut:
		s.putManifest(w, r, req, isDigest)
	case http.MethodDelete:
		s.deleteManifest(w, r, req, isDigest)
	default:
		methodNotAllowed(w, r, "GET, HEAD, PUT, DELETE")
	}
}

func (s *Server) getManifest(w http.ResponseWriter, r *http.Request, req request) {
	ctx := r.Context()
	repo, err := s.store.Repository(ctx, req.name, false)
	if err != nil {
		s.storageError(w, r, err, errcode.ManifestUnknown)
		return
	}
	desc, data, err := repo.Manifest(ctx, req.ref)
	if err != nil {
		s.storageError(w, r, err, errcode.ManifestUnknown)
		return
	}
	if !acceptable(r.Header.Values("Accept"), desc.MediaType) {
		writeError(w, http.StatusNotFound, errcode.ManifestUnknown.WithMessage("the manifest is %s, which the request's Accept header does not list", desc.MediaType))
		return
	}
	h := w.Header()
	h["Content-Type"] = []string{desc.MediaType}
	h["Docker-Content-Digest"] = []string{string(desc.Digest)}
	h["Etag"] = []string{`"` + string(desc.Digest) + `"`}
	h["Content-Length"] = []string{strconv.Itoa(len(data))}
	if match := r.Header.Get("If-None-Match"); match != "" && strings.Contains(match, string(desc.Digest)) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		w.Write(data)
	}
}

// acceptable reports whether a manifest of media type mt may be served to
// a client sending the Accept values given. No Accept header, a wildcard,
// or an Accept that names no manifest type at all (a generic client)
// accepts anything; otherwise mt must be listed.
func acceptable(values []string, mt string) bool {
	if len(values) == 0 {
		return true
	}
	namesManifest := false
	for _, v := range values {
		for part := range strings.SplitSeq(v, ",") {
			t, params, err := mime.ParseMediaType(strings.TrimSpace(part))
			if err != nil {
				continue
			}
			if q, ok := params["q"]; ok {
				if f, err := strconv.ParseFloat(q, 64); err == nil && f == 0 {
					continue
				}
			}
			switch {
			case t == mt, t == "*/*", t == "application/*":
				return true
			case image.IsManifest(t), image.IsIndex(t), image.IsSchema1(t), strings.HasSuffix(t, ".manifest.v1+json"):
				namesManifest = true
			}
		}
	}
	return !namesManifest
}

// manifestDoc has the fields of a manifest or an index the registry acts
// on.
type manifestDoc struct {
	MediaType    string               `json:"mediaType"`
	ArtifactType string               `json:"artifactType"`
	Config       *ocispec.Descriptor  `json:"config"`
	Layers       []ocispec.Descriptor `json:"layers"`
	Manifests    []ocispec.Descriptor `json:"manifests"`
	Subject      *ocispec.Descriptor  `json:"subject"`
	Annotations  map[string]string    `json:"annotations"`
}

func (s *Server) putManifest(w http.ResponseWriter, r *http.Request, req request, byDigest bool) {
	ctx := r.Context()
	max := s.opts.MaxManifestBytes
	if r.ContentLength > max {
		drain(r.Body)
		writeError(w, http.StatusRequestEntityTooLarge, errcode.ManifestInvalid.WithMessage("manifest is %d bytes, the limit is %d", r.ContentLength, max))
		return
	}
	data, err := io.ReadAll(io.LimitReader(r.Body, max+1))
	if err != nil {
		s.storageError(w, r, err, errcode.ManifestInvalid)
		return
	}
	if int64(len(data)) > max {
		writeError(w, http.StatusRequestEntityTooLarge, errcode.ManifestInvalid.WithMessage("manifest is larger than the limit of %d bytes", max))
		return
	}
	var tags []string
	if !byDigest {
		tags = append(tags, req.ref)
	}
	for _, t := range r.URL.Query()["tag"] {
		if err := storage.CheckTag(t); err != nil {
			writeError(w, http.StatusBadRequest, errcode.ManifestInvalid.WithMessage("tag parameter: %v", err))
			return
		}
		tags = append(tags, t)
	}
	if len(tags) > s.opts.MaxTagsPerPush {
		writeError(w, http.StatusRequestURITooLong, errcode.ManifestInvalid.WithMessage("%d tags in one request, the limit is %d", len(tags), s.opts.MaxTagsPerPush))
		return
	}
	mt := r.Header.Get("Content-Type")
	if t, _, err := mime.ParseMediaType(mt); err == nil {
		mt = t
	}
	var doc manifestDoc
	jsonErr := json.Unmarshal(data, &doc)
	if jsonErr != nil && !json.Valid(data) {
		writeError(w, http.StatusBadRequest, errcode.ManifestInvalid.WithMessage("manifest is not JSON: %v", jsonErr))
		return
	}
	if mt == "" {
		mt = doc.MediaType
	}
	if mt == "" {
		mt = image.MediaTypeOf(data)
	}
	if doc.MediaType != "" && doc.MediaType != mt {
		writeError(w, http.StatusBadRequest, errcode.ManifestInvalid.WithMessage("the manifest's mediaType %q does not match the request's Content-Type %q", doc.MediaType, mt))
		return
	}
	if !image.IsManifest(mt) && !image.IsIndex(mt) {
		writeError(w, http.StatusBadRequest, errcode.ManifestInvalid.WithMessage("media type %q is not a manifest or index type the registry accepts (OCI image manifest or index, Docker schema 2 manifest or manifest list)", mt))
		return
	}
	// The image package's decoders refuse what breaks the image
	// specification's MUST rules and report its SHOULD rules as warnings,
	// which the client gets as Warning headers.
	var warnings image.ValidationErrors
	if image.IsManifest(mt) {
		_, err = image.DecodeManifest(data, image.Warnings(&warnings))
	} else {
		_, err = image.DecodeIndex(data, image.Warnings(&warnings))
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, invalidManifest(err))
		return
	}
	if jsonErr != nil {
		writeError(w, http.StatusBadRequest, errcode.ManifestInvalid.WithMessage("manifest invalid: %v", jsonErr))
		return
	}
	alg := digest.Canonical
	if byDigest {
		alg = digest.Digest(req.ref).Algorithm()
	}
	d := alg.FromBytes(data)
	if byDigest && d != digest.Digest(req.ref) {
		writeError(w, http.StatusBadRequest, errcode.DigestInvalid.WithMessage("the manifest hashes to %s, not %s", d, req.ref))
		return
	}
	put := storage.ManifestPut{
		Desc:    ocispec.Descriptor{MediaType: mt, Digest: d, Size: int64(len(data)), ArtifactType: doc.ArtifactType, Annotations: doc.Annotations},
		Data:    data,
		Subject: doc.Subject,
		Tags:    tags,
	}
	if put.Desc.ArtifactType == "" && image.IsManifest(mt) && doc.Config != nil {
		put.Desc.ArtifactType = doc.Config.MediaType
	}
	if doc.Config != nil {
		put.Requires = append(put.Requires, *doc.Config)
	}
	if !s.opts.Sparse {
		for _, l := range doc.Layers {
			if !foreign(l) {
				put.Requires = append(put.Requires, l)
			}
		}
		put.Requires = append(put.Requires, doc.Manifests...)
	}
	repo, err := s.store.Repository(ctx, req.name, true)
	if err != nil {
		s.storageError(w, r, err, errcode.NameUnknown)
		return
	}
	if err := repo.PutManifest(ctx, put); err != nil {
		var missing *storage.MissingBlobsError
		if errors.As(err, &missing) {
			es := make(errcode.Errors, 0, len(missing.Blobs))
			status := http.StatusBadRequest
			for _, b := range missing.Blobs {
				if b.Size != 0 {
					es = append(es, errcode.Error{Code: errcode.ManifestInvalid, Message: fmt.Sprintf("blob %s: %s", b.Digest, b.Reason), Detail: map[string]string{"digest": string(b.Digest)}})
				} else {
					es = append(es, errcode.Error{Code: errcode.ManifestBlobUnknown, Message: fmt.Sprintf("blob %s: %s", b.Digest, b.Reason), Detail: map[string]string{"digest": string(b.Digest)}})
				}
			}
			errcode.WriteStatus(w, status, es)
			return
		}
		s.storageError(w, r, err, errcode.ManifestInvalid)
		return
	}
	h := w.Header()
	addWarnings(h, warnings)
	h.Set("Location", "/v2/"+req.name+"/manifests/"+string(d))
	h.Set("Docker-Content-Digest", string(d))
	if doc.Subject != nil {
		h.Set("OCI-Subject", string(doc.Subject.Digest))
	}
	if byDigest {
		for _, t := range tags {
			h.Add("OCI-Tag", t)
		}
	}
	h.Set("Content-Length", "0")
	w.WriteHeader(http.StatusCreated)
}

// foreign reports whether a layer need not be pushed: a non-distributable
// (foreign) layer type, or any layer that names URLs to fetch it from.
func foreign(l ocispec.Descriptor) bool {
	if len(l.URLs) > 0 {
		return true
	}
	switch l.MediaType {
	case image.MediaTypeDockerForeignLayer,
		"application/vnd.oci.image.layer.nondistributable.v1.tar",
		"application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
		"application/vnd.oci.image.layer.nondistributable.v1.tar+zstd":
		return true
	}
	return false
}

func (s *Server) deleteManifest(w http.ResponseWriter, r *http.Request, req request, byDigest bool) {
	ctx := r.Context()
	repo, err := s.store.Repository(ctx, req.name, false)
	if err == nil {
		if byDigest {
			err = repo.DeleteManifest(ctx, digest.Digest(req.ref))
		} else {
			err = repo.Untag(ctx, req.ref)
		}
	}
	if err != nil {
		if errors.Is(err, errdef.ErrNotFound) {
			writeError(w, http.StatusNotFound, errcode.ManifestUnknown.WithMessage("%v", err))
			return
		}
		s.storageError(w, r, err, errcode.ManifestUnknown)
		return
	}
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusAccepted)
}

// invalidManifest makes a MANIFEST_INVALID entry whose message gives every
// broken rule, listed in the detail too.
func invalidManifest(err error) errcode.Error {
	var reasons []string
	var ves image.ValidationErrors
	if errors.As(err, &ves) {
		for _, ve := range ves {
			reasons = append(reasons, ve.Error())
		}
	} else {
		reasons = []string{err.Error()}
	}
	return errcode.Error{Code: errcode.ManifestInvalid, Message: "manifest invalid: " + strings.Join(reasons, "; "), Detail: map[string][]string{"reasons": reasons}}
}

// maxWarningBytes caps the Warning headers of one response, as the
// distribution specification requires.
const maxWarningBytes = 4096

// addWarnings adds one Warning header (code 299, agent "-") per problem the
// manifest was accepted with, up to maxWarningBytes in all.
func addWarnings(h http.Header, ws image.ValidationErrors) {
	total := 0
	for _, w := range ws {
		v := "299 - " + strconv.Quote("manifest accepted, but "+w.Error())
		if total+len(v) > maxWarningBytes {
			return
		}
		total += len(v)
		h.Add("Warning", v)
	}
}
