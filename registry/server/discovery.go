package server

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"

	"github.com/lading-oci/lading/registry/errcode"
	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// pageParams reads n and last. n < 0 means no limit.
func pageParams(w http.ResponseWriter, r *http.Request) (n int, last string, ok bool) {
	q := r.URL.Query()
	n = -1
	if v := q.Get("n"); v != "" {
		i, err := strconv.Atoi(v)
		if err != nil || i < 0 {
			writeError(w, http.StatusBadRequest, errcode.Unsupported.WithMessage("n=%q: want a number of at least 0", v))
			return 0, "", false
		}
		n = i
	}
	return n, q.Get("last"), true
}

// writeJSON answers 200 with v as JSON.
func writeJSON(w http.ResponseWriter, r *http.Request, contentType string, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		errcode.WriteStatus(w, http.StatusInternalServerError, errcode.Errors{{Code: errcode.Unknown, Message: err.Error()}})
		return
	}
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Content-Length", strconv.Itoa(len(data)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		w.Write(data)
	}
}

// nextLink sets the RFC 5988 Link to the next page.
func nextLink(w http.ResponseWriter, path string, n int, last string) {
	q := url.Values{"n": {strconv.Itoa(n)}, "last": {last}}
	w.Header().Set("Link", "<"+path+"?"+q.Encode()+`>; rel="next"`)
}

func (s *Server) serveTags(w http.ResponseWriter, r *http.Request, req request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		methodNotAllowed(w, r, "GET, HEAD")
		return
	}
	n, last, ok := pageParams(w, r)
	if !ok {
		return
	}
	repo, err := s.store.Repository(r.Context(), req.name, false)
	if err != nil {
		s.storageError(w, r, err, errcode.NameUnknown)
		return
	}
	tags := []string{}
	if n != 0 {
		ask := n
		if n > 0 {
			ask = n + 1
		}
		got, err := repo.Tags(r.Context(), last, ask)
		if err != nil {
			s.storageError(w, r, err, errcode.NameUnknown)
			return
		}
		tags = got
		if n > 0 && len(tags) > n {
			tags = tags[:n]
			nextLink(w, "/v2/"+req.name+"/tags/list", n, tags[n-1])
		}
	}
	writeJSON(w, r, "application/json", struct {
		Name string   `json:"name"`
		Tags []string `json:"tags"`
	}{req.name, tags})
}

func (s *Server) serveCatalog(w http.ResponseWriter, r *http.Request, req request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		methodNotAllowed(w, r, "GET, HEAD")
		return
	}
	n, last, ok := pageParams(w, r)
	if !ok {
		return
	}
	names := []string{}
	for n != 0 {
		batch, err := s.store.Repositories(r.Context(), last, 1000)
		if err != nil {
			s.storageError(w, r, err, errcode.NameUnknown)
			return
		}
		for _, name := range batch {
			if s.allowed(r, req, name, actionPull) {
				names = append(names, name)
			}
		}
		if len(batch) < 1000 || (n > 0 && len(names) > n) {
			break
		}
		last = batch[len(batch)-1]
	}
	if n == 0 {
		names = []string{}
	}
	if n > 0 && len(names) > n {
		names = names[:n]
		nextLink(w, "/v2/_catalog", n, names[n-1])
	}
	writeJSON(w, r, "application/json", struct {
		Repositories []string `json:"repositories"`
	}{names})
}

// maxReferrersPage caps the descriptors of one referrers response; more
// are paged with a Link.
const maxReferrersPage = 5000

func (s *Server) serveReferrers(w http.ResponseWriter, r *http.Request, req request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		methodNotAllowed(w, r, "GET, HEAD")
		return
	}
	d, err := parseDigest(req.ref)
	if err != nil {
		writeError(w, http.StatusBadRequest, errcode.DigestInvalid.WithMessage("%v", err))
		return
	}
	q := r.URL.Query()
	artifactType := q.Get("artifactType")
	descs := []ocispec.Descriptor{}
	if repo, err := s.store.Repository(r.Context(), req.name, false); err == nil {
		got, err := repo.Referrers(r.Context(), d, artifactType)
		if err != nil {
			s.storageError(w, r, err, errcode.NameUnknown)
			return
		}
		descs = append(descs, got...)
	}
	if last := q.Get("last"); last != "" {
		i := 0
		for i < len(descs) && descs[i].Digest <= digest.Digest(last) {
			i++
		}
		descs = descs[i:]
	}
	if len(descs) > maxReferrersPage {
		descs = descs[:maxReferrersPage]
		v := url.Values{"last": {string(descs[len(descs)-1].Digest)}}
		if artifactType != "" {
			v.Set("artifactType", artifactType)
		}
		w.Header().Set("Link", "</v2/"+req.name+"/referrers/"+string(d)+"?"+v.Encode()+`>; rel="next"`)
	}
	if artifactType != "" {
		w.Header().Set("OCI-Filters-Applied", "artifactType")
	}
	writeJSON(w, r, ocispec.MediaTypeImageIndex, ocispec.Index{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageIndex,
		Manifests: descs,
	})
}
