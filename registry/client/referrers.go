package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/lading-oci/lading/errdef"
)

// ReferrersTag returns the tag of the referrers tag schema for a subject
// digest: the algorithm truncated to 32 characters, "-", and the encoded
// part truncated to 64, with characters a tag cannot hold replaced by "-"
// ("sha256:abc…" → "sha256-abc…").
func ReferrersTag(d digest.Digest) string {
	alg, enc, _ := strings.Cut(string(d), ":")
	if len(alg) > 32 {
		alg = alg[:32]
	}
	if len(enc) > 64 {
		enc = enc[:64]
	}
	b := []byte(alg + "-" + enc)
	for i, c := range b {
		ok := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || (i > 0 && (c == '.' || c == '-'))
		if !ok {
			b[i] = '-'
		}
	}
	return string(b)
}

// Referrers lists the manifests whose subject is subject, optionally only
// those of artifactType. It uses the referrers API (filtering itself when
// the registry did not apply the filter, as OCI-Filters-Applied tells), and
// on a registry without it (404) the referrers tag schema: an index under
// ReferrersTag(subject), whose entries are kept only when their manifests
// really name the subject. No referrers is an empty list.
func (r *Repository) Referrers(ctx context.Context, subject ocispec.Descriptor, artifactType string) ([]ocispec.Descriptor, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	list, supported, err := r.referrersAPI(ctx, subject.Digest, artifactType)
	if err != nil {
		return nil, fmt.Errorf("referrers of %s in %s: %w", subject.Digest, r, err)
	}
	if !supported {
		if list, err = r.referrersFromTag(ctx, subject.Digest); err != nil {
			return nil, fmt.Errorf("referrers of %s in %s: %w", subject.Digest, r, err)
		}
	}
	if artifactType == "" {
		return list, nil
	}
	out := list[:0:0]
	for _, d := range list {
		if d.ArtifactType == artifactType {
			out = append(out, d)
		}
	}
	return out, nil
}

// referrersAPI pages through GET /referrers/<digest>. supported is false
// when the registry answers 404 (no referrers API).
func (r *Repository) referrersAPI(ctx context.Context, subject digest.Digest, artifactType string) (list []ocispec.Descriptor, supported bool, err error) {
	if err := subject.Validate(); err != nil {
		return nil, false, fmt.Errorf("%w: subject digest: %v", errdef.ErrInvalid, err)
	}
	req := request{method: http.MethodGet, path: r.name + "/referrers/" + subject.String(), scopes: r.pullScope(),
		header: http.Header{"Accept": {ocispec.MediaTypeImageIndex}}}
	if artifactType != "" {
		req.query = url.Values{"artifactType": {artifactType}}
	}
	for page := 0; ; page++ {
		if page > 10000 {
			return nil, true, fmt.Errorf("%w: more than 10000 pages of referrers", errdef.ErrInvalid)
		}
		resp, t, err := r.do(ctx, req)
		if err != nil {
			return nil, false, err
		}
		if resp.StatusCode == http.StatusNotFound && page == 0 {
			drain(resp.Body)
			return nil, false, nil
		}
		if resp.StatusCode != http.StatusOK {
			return nil, page > 0, failure(t, resp)
		}
		if ct := contentType(resp); ct != ocispec.MediaTypeImageIndex {
			resp.Body.Close()
			return nil, true, fmt.Errorf("%w: the referrers API answered with Content-Type %q, not an image index", errdef.ErrInvalid, ct)
		}
		data, err := readCapped(resp, r.c.cfg.maxManifest)
		if err != nil {
			return nil, true, err
		}
		var idx ocispec.Index
		if err := json.Unmarshal(data, &idx); err != nil {
			return nil, true, fmt.Errorf("%w: the referrers list is not an image index: %v", errdef.ErrInvalid, err)
		}
		list = append(list, idx.Manifests...)
		next := NextLink(resp.Request.URL, resp.Header.Values("Link"))
		if next == nil {
			return list, true, nil
		}
		if next.Host != r.h.api {
			return nil, true, fmt.Errorf("%w: the next page of referrers is on another host, %s", errdef.ErrInvalid, next.Host)
		}
		req.u, req.path, req.query = next, "", nil
	}
}

// referrersIndex fetches the index under the referrers tag of subject:
// nil (and no error) when the tag does not exist.
func (r *Repository) referrersIndex(ctx context.Context, subject digest.Digest) (*ocispec.Index, error) {
	tag := ReferrersTag(subject)
	desc, data, err := r.FetchReference(ctx, tag)
	if errors.Is(err, errdef.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if desc.MediaType != ocispec.MediaTypeImageIndex {
		return nil, fmt.Errorf("%w: referrers tag %s holds a %s, not an image index", errdef.ErrInvalid, tag, desc.MediaType)
	}
	var idx ocispec.Index
	if err := json.Unmarshal(data, &idx); err != nil {
		return nil, fmt.Errorf("%w: referrers tag %s: %v", errdef.ErrInvalid, tag, err)
	}
	return &idx, nil
}

// referrersFromTag reads the referrers tag schema, keeping the entries
// whose manifests name subject.
func (r *Repository) referrersFromTag(ctx context.Context, subject digest.Digest) ([]ocispec.Descriptor, error) {
	idx, err := r.referrersIndex(ctx, subject)
	if err != nil {
		if errors.Is(err, errdef.ErrInvalid) {
			// Not a valid index: as the specification says, no referrers.
			r.c.log.WarnContext(ctx, "referrers tag ignored", "repository", r.String(), "subject", subject, "error", err)
			return []ocispec.Descriptor{}, nil
		}
		return nil, err
	}
	out := []ocispec.Descriptor{}
	if idx == nil {
		return out, nil
	}
	for _, d := range idx.Manifests {
		if !isManifestType(d.MediaType) {
			r.c.log.WarnContext(ctx, "referrers tag entry dropped: not a manifest", "subject", subject, "entry", d.Digest, "mediaType", d.MediaType)
			continue
		}
		_, data, err := r.fetchManifest(ctx, d.Digest.String(), &d)
		if err != nil {
			if errors.Is(err, errdef.ErrNotFound) {
				r.c.log.WarnContext(ctx, "referrers tag entry dropped: manifest missing", "subject", subject, "entry", d.Digest)
				continue
			}
			return nil, err
		}
		var doc manifestDoc
		if json.Unmarshal(data, &doc) != nil || doc.Subject == nil || doc.Subject.Digest != subject {
			r.c.log.WarnContext(ctx, "referrers tag entry dropped: its manifest does not name the subject", "subject", subject, "entry", d.Digest)
			continue
		}
		out = append(out, d)
	}
	return out, nil
}

// referrerEntry is the descriptor of a pushed manifest in a referrers list:
// its artifactType (or, for an image manifest, its config's media type) and
// its annotations.
func referrerEntry(desc ocispec.Descriptor, doc *manifestDoc) ocispec.Descriptor {
	e := ocispec.Descriptor{MediaType: desc.MediaType, Digest: desc.Digest, Size: desc.Size,
		ArtifactType: doc.ArtifactType, Annotations: doc.Annotations}
	if e.ArtifactType == "" && doc.Config != nil {
		e.ArtifactType = doc.Config.MediaType
	}
	return e
}

// addReferrer adds entry to the referrers tag of subject.
func (r *Repository) addReferrer(ctx context.Context, subject ocispec.Descriptor, entry ocispec.Descriptor) error {
	return r.updateReferrers(ctx, subject.Digest, func(list []ocispec.Descriptor) ([]ocispec.Descriptor, bool) {
		for _, d := range list {
			if d.Digest == entry.Digest {
				return list, false
			}
		}
		return append(list, entry), true
	})
}

// removeReferrer takes d out of the referrers tag of subject, when the
// registry has no referrers API.
func (r *Repository) removeReferrer(ctx context.Context, subject ocispec.Descriptor, d digest.Digest) error {
	if _, supported, err := r.referrersAPI(ctx, subject.Digest, ""); err == nil && supported {
		return nil
	}
	return r.updateReferrers(ctx, subject.Digest, func(list []ocispec.Descriptor) ([]ocispec.Descriptor, bool) {
		out := list[:0:0]
		for _, e := range list {
			if e.Digest != d {
				out = append(out, e)
			}
		}
		return out, len(out) != len(list)
	})
}

// updateReferrers reads the referrers tag of subject, changes its list with
// edit, and pushes it back when edit changed it.
func (r *Repository) updateReferrers(ctx context.Context, subject digest.Digest, edit func([]ocispec.Descriptor) ([]ocispec.Descriptor, bool)) error {
	if err := subject.Validate(); err != nil {
		return fmt.Errorf("%w: subject digest %q: %v", errdef.ErrInvalid, subject, err)
	}
	idx, err := r.referrersIndex(ctx, subject)
	if err != nil {
		return err
	}
	if idx == nil {
		idx = &ocispec.Index{}
	}
	list, changed := edit(idx.Manifests)
	if !changed {
		return nil
	}
	out := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: list, Annotations: idx.Annotations}
	out.SchemaVersion = 2
	if out.Manifests == nil {
		out.Manifests = []ocispec.Descriptor{}
	}
	data, err := json.Marshal(out)
	if err != nil {
		return err
	}
	desc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageIndex, Digest: digest.FromBytes(data), Size: int64(len(data))}
	if _, _, err := r.putManifest(ctx, desc, data, ReferrersTag(subject), nil); err != nil {
		return fmt.Errorf("push referrers tag %s: %w", ReferrersTag(subject), err)
	}
	return nil
}
