package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/lading-oci/lading/internal/registrytest"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/lading-oci/lading/content"
	"github.com/lading-oci/lading/content/ocilayout"
	"github.com/lading-oci/lading/errdef"
	"github.com/lading-oci/lading/registry/credentials"
)

// scripted is a fake registry for edge cases: each test routes requests
// itself. /v2/ answers 200 unless the test handles it.
type scripted struct {
	*httptest.Server
	host string
	mu   sync.Mutex
	log  []string // "METHOD path?query"
}

func newScripted(t *testing.T, h func(w http.ResponseWriter, r *http.Request) bool) *scripted {
	t.Helper()
	s := &scripted{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		entry := r.Method + " " + r.URL.Path
		if r.URL.RawQuery != "" {
			entry += "?" + r.URL.RawQuery
		}
		s.log = append(s.log, entry)
		s.mu.Unlock()
		if h(w, r) {
			return
		}
		if r.URL.Path == "/v2/" {
			return
		}
		http.Error(w, `{"errors":[{"code":"NAME_UNKNOWN","message":"unscripted"}]}`, http.StatusNotFound)
	}))
	t.Cleanup(s.Close)
	s.host = strings.TrimPrefix(s.URL, "http://")
	return s
}

func (s *scripted) requests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.log...)
}

func (s *scripted) repo(t *testing.T, opts ...Option) *Repository {
	t.Helper()
	c := newTestClient(t, opts...)
	r, err := c.Repository(s.host, "test/repo")
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func blobDesc(data []byte) ocispec.Descriptor {
	return ocispec.Descriptor{MediaType: "application/vnd.example.data", Digest: digest.FromBytes(data), Size: int64(len(data))}
}

func TestRetryServerErrors(t *testing.T) {
	data := []byte("retried content")
	var n atomic.Int32
	s := newScripted(t, func(w http.ResponseWriter, r *http.Request) bool {
		if strings.Contains(r.URL.Path, "/blobs/") {
			if n.Add(1) <= 2 {
				http.Error(w, "busy", http.StatusServiceUnavailable)
				return true
			}
			w.Write(data)
			return true
		}
		return false
	})
	got := readAll(t, func() (io.ReadCloser, error) { return s.repo(t).Fetch(context.Background(), blobDesc(data)) })
	if !bytes.Equal(got, data) || n.Load() != 3 {
		t.Fatalf("got %q after %d tries", got, n.Load())
	}
}

func TestRetryConnectionErrors(t *testing.T) {
	data := []byte("after a dropped connection")
	var n atomic.Int32
	s := newScripted(t, func(w http.ResponseWriter, r *http.Request) bool {
		if strings.Contains(r.URL.Path, "/manifests/") || strings.Contains(r.URL.Path, "/blobs/") {
			if n.Add(1)%2 == 1 {
				conn, _, _ := w.(http.Hijacker).Hijack()
				conn.Close() // no answer at all
				return true
			}
			if r.Method == http.MethodHead {
				w.Header().Set("Content-Length", strconv.Itoa(len(data)))
				return true
			}
			w.Write(data)
			return true
		}
		return false
	})
	repo := s.repo(t)
	d, err := repo.Stat(context.Background(), digest.FromBytes(data))
	if err != nil || d.Size != int64(len(data)) {
		t.Fatalf("stat through a dropped connection: %+v, %v", d, err)
	}
	got := readAll(t, func() (io.ReadCloser, error) { return repo.Fetch(context.Background(), blobDesc(data)) })
	if !bytes.Equal(got, data) {
		t.Fatal("content differs")
	}
	// A server that never answers is reported, not retried forever.
	dead := newScripted(t, func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path != "/v2/" {
			conn, _, _ := w.(http.Hijacker).Hijack()
			conn.Close()
			return true
		}
		return false
	})
	_, err = dead.repo(t).Stat(context.Background(), digest.FromBytes(data))
	if !errors.Is(err, errdef.ErrUnavailable) {
		t.Fatalf("stat against a dead server: %v", err)
	}
}

func TestRetryAfter(t *testing.T) {
	data := []byte("rate limited")
	var times []time.Time
	var mu sync.Mutex
	s := newScripted(t, func(w http.ResponseWriter, r *http.Request) bool {
		if !strings.Contains(r.URL.Path, "/blobs/") {
			return false
		}
		mu.Lock()
		times = append(times, time.Now())
		first := len(times) == 1
		mu.Unlock()
		switch {
		case strings.Contains(r.URL.Path, "forever"):
		case first:
			w.Header().Set("Retry-After", "1")
			http.Error(w, `{"errors":[{"code":"TOOMANYREQUESTS"}]}`, http.StatusTooManyRequests)
			return true
		default:
			w.Write(data)
			return true
		}
		return false
	})
	repo := s.repo(t)
	got := readAll(t, func() (io.ReadCloser, error) { return repo.Fetch(context.Background(), blobDesc(data)) })
	if !bytes.Equal(got, data) {
		t.Fatal("content differs")
	}
	if d := times[1].Sub(times[0]); d < 900*time.Millisecond {
		t.Fatalf("retried after %v, the server asked for 1s", d)
	}

	// A Retry-After beyond what the client waits is reported at once.
	s2 := newScripted(t, func(w http.ResponseWriter, r *http.Request) bool {
		if strings.Contains(r.URL.Path, "/blobs/") {
			w.Header().Set("Retry-After", time.Now().Add(2*time.Hour).UTC().Format(http.TimeFormat))
			http.Error(w, `{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}`, http.StatusTooManyRequests)
			return true
		}
		return false
	})
	start := time.Now()
	_, err := s2.repo(t).Fetch(context.Background(), blobDesc(data))
	if !errors.Is(err, errdef.ErrTooManyRequests) || time.Since(start) > 5*time.Second {
		t.Fatalf("fetch = %v after %v, want ErrTooManyRequests at once", err, time.Since(start))
	}
}

func TestRetryAfterParse(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Duration{
		"0": 0, "7": 7 * time.Second, now.Add(90 * time.Second).Format(http.TimeFormat): 90 * time.Second,
		now.Add(-time.Hour).Format(http.TimeFormat): 0,
	} {
		got, ok := retryAfter(in, now)
		if !ok || got != want {
			t.Errorf("retryAfter(%q) = %v, %v; want %v", in, got, ok, want)
		}
	}
	for _, in := range []string{"", "-1", "soon"} {
		if _, ok := retryAfter(in, now); ok {
			t.Errorf("retryAfter(%q) accepted", in)
		}
	}
}

// TestResumeDownload breaks the connection halfway through a blob: the
// reader resumes with a Range request and the content still verifies.
func TestResumeDownload(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789abcdef"), 64<<10) // 1 MiB
	desc := blobDesc(data)
	var ranges []string
	var mu sync.Mutex
	s := newScripted(t, func(w http.ResponseWriter, r *http.Request) bool {
		if !strings.Contains(r.URL.Path, "/blobs/") {
			return false
		}
		mu.Lock()
		ranges = append(ranges, r.Header.Get("Range"))
		n := len(ranges)
		mu.Unlock()
		if rg := r.Header.Get("Range"); rg != "" {
			start, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(rg, "bytes="), "-"))
			w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, len(data)-1, len(data)))
			w.Header().Set("Content-Length", strconv.Itoa(len(data)-start))
			w.WriteHeader(http.StatusPartialContent)
			w.Write(data[start:])
			return true
		}
		if n == 1 {
			// Promise all, send a third, and drop the connection.
			w.Header().Set("Content-Length", strconv.Itoa(len(data)))
			w.WriteHeader(http.StatusOK)
			w.Write(data[:len(data)/3])
			w.(http.Flusher).Flush()
			conn, _, _ := w.(http.Hijacker).Hijack()
			conn.Close()
			return true
		}
		w.Write(data)
		return true
	})
	got := readAll(t, func() (io.ReadCloser, error) { return s.repo(t).Fetch(context.Background(), desc) })
	if !bytes.Equal(got, data) {
		t.Fatalf("resumed download differs: %d bytes", len(got))
	}
	if len(ranges) != 2 || ranges[0] != "" || !strings.HasPrefix(ranges[1], "bytes=") {
		t.Fatalf("requests' Range headers: %q", ranges)
	}
}

// TestCorruptBlob: a registry serving other bytes under a digest is
// refused with the digest named, and nothing reaches the destination.
func TestCorruptBlob(t *testing.T) {
	data := []byte("the real content")
	desc := blobDesc(data)
	s := newScripted(t, func(w http.ResponseWriter, r *http.Request) bool {
		if strings.Contains(r.URL.Path, "/blobs/") {
			w.Write([]byte("the fake content")) // same length
			return true
		}
		return false
	})
	repo := s.repo(t)
	rc, err := repo.Fetch(context.Background(), desc)
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.ReadAll(rc)
	rc.Close()
	if !errors.Is(err, errdef.ErrDigestMismatch) || !strings.Contains(err.Error(), desc.Digest.String()) {
		t.Fatalf("read corrupt blob: %v", err)
	}
	dst, err := ocilayout.Init(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	err = content.Copy(context.Background(), repo, dst, desc)
	if !errors.Is(err, errdef.ErrDigestMismatch) || !strings.Contains(err.Error(), desc.Digest.String()) {
		t.Fatalf("copy corrupt blob: %v", err)
	}
	if ok, _ := dst.Exists(context.Background(), desc); ok {
		t.Fatal("corrupt blob stored at the destination")
	}
	// Without verification on fetch, the store's own check still refuses.
	plain := s.repo(t, WithVerifyOnFetch(false))
	if err := content.Copy(context.Background(), plain, dst, desc); !errors.Is(err, errdef.ErrDigestMismatch) {
		t.Fatalf("copy corrupt blob, verified by the store only: %v", err)
	}
	// A longer body than the descriptor is cut and refused.
	s2 := newScripted(t, func(w http.ResponseWriter, r *http.Request) bool {
		if strings.Contains(r.URL.Path, "/blobs/") {
			w.Write(append(append([]byte(nil), data...), "trailing"...))
			return true
		}
		return false
	})
	_, err = s2.repo(t).Fetch(context.Background(), desc)
	if !errors.Is(err, errdef.ErrSizeMismatch) {
		t.Fatalf("fetch overlong blob: %v", err)
	}
}

func manifestFor(t *testing.T) ([]byte, ocispec.Descriptor) {
	img := newTestImage(t, 1, 10)
	return img.ManifestData, img.Manifest
}

func TestCorruptManifest(t *testing.T) {
	data, desc := manifestFor(t)
	tampered := bytes.Replace(data, []byte(`"schemaVersion":2`), []byte(`"schemaVersion":2 `), 1)
	s := newScripted(t, func(w http.ResponseWriter, r *http.Request) bool {
		if strings.Contains(r.URL.Path, "/manifests/") {
			w.Header().Set("Content-Type", ocispec.MediaTypeImageManifest)
			w.Header().Set("Docker-Content-Digest", desc.Digest.String()) // a lie
			w.Write(tampered)
			return true
		}
		return false
	})
	repo := s.repo(t)
	_, err := repo.Fetch(context.Background(), desc)
	if !errors.Is(err, errdef.ErrDigestMismatch) || !strings.Contains(err.Error(), desc.Digest.String()) {
		t.Fatalf("fetch corrupt manifest: %v", err)
	}
	_, _, err = repo.FetchReference(context.Background(), desc.Digest.String())
	if !errors.Is(err, errdef.ErrDigestMismatch) {
		t.Fatalf("fetch corrupt manifest by digest: %v", err)
	}
	dst, _ := ocilayout.Init(context.Background(), t.TempDir())
	defer dst.Close()
	if err := content.Copy(context.Background(), repo, dst, desc); !errors.Is(err, errdef.ErrDigestMismatch) {
		t.Fatalf("copy corrupt manifest: %v", err)
	}
	if ok, _ := dst.Exists(context.Background(), desc); ok {
		t.Fatal("corrupt manifest stored")
	}
	// By tag, the digest returned is the content's, not the header's.
	got, body, err := repo.FetchReference(context.Background(), "latest")
	if err != nil {
		t.Fatal(err)
	}
	if got.Digest != digest.FromBytes(tampered) || !bytes.Equal(body, tampered) {
		t.Fatalf("by-tag fetch returned digest %s, want the content's %s", got.Digest, digest.FromBytes(tampered))
	}
}

func TestManifestMediaTypeChecks(t *testing.T) {
	data, desc := manifestFor(t)
	s := newScripted(t, func(w http.ResponseWriter, r *http.Request) bool {
		if strings.Contains(r.URL.Path, "/manifests/") {
			switch {
			case strings.HasSuffix(r.URL.Path, "wrongtype"):
				w.Header().Set("Content-Type", ocispec.MediaTypeImageIndex)
			case strings.HasSuffix(r.URL.Path, "schema1"):
				w.Header().Set("Content-Type", "application/vnd.docker.distribution.manifest.v1+prettyjws")
				w.Write([]byte(`{"schemaVersion":1,"name":"x"}`))
				return true
			default:
				w.Header().Set("Content-Type", "application/json; charset=utf-8")
			}
			if strings.Contains(r.Header.Get("Accept"), "distribution.manifest.v1") {
				t.Errorf("client asked for schema 1: %s", r.Header.Get("Accept"))
			}
			w.Write(data)
			return true
		}
		return false
	})
	repo := s.repo(t)
	if _, _, err := repo.FetchReference(context.Background(), "wrongtype"); !errors.Is(err, errdef.ErrInvalid) {
		t.Fatalf("manifest whose mediaType contradicts Content-Type: %v", err)
	}
	if _, _, err := repo.FetchReference(context.Background(), "schema1"); !errors.Is(err, errdef.ErrUnsupported) {
		t.Fatalf("schema 1 manifest: %v", err)
	}
	got, _, err := repo.FetchReference(context.Background(), "generic")
	if err != nil || got.MediaType != desc.MediaType {
		t.Fatalf("manifest served as application/json: %+v, %v", got, err)
	}
}

func TestOversizedManifest(t *testing.T) {
	var written atomic.Int64
	big := bytes.Repeat([]byte(" "), 5<<20)
	s := newScripted(t, func(w http.ResponseWriter, r *http.Request) bool {
		if !strings.Contains(r.URL.Path, "/manifests/") {
			return false
		}
		w.Header().Set("Content-Type", ocispec.MediaTypeImageManifest)
		if strings.HasSuffix(r.URL.Path, "chunked") {
			w.(http.Flusher).Flush() // no Content-Length
		} else {
			w.Header().Set("Content-Length", strconv.Itoa(len(big)))
		}
		for off := 0; off < len(big); off += 64 << 10 {
			n, err := w.Write(big[off : off+64<<10])
			written.Add(int64(n))
			if err != nil {
				return true
			}
		}
		return true
	})
	repo := s.repo(t)
	_, _, err := repo.FetchReference(context.Background(), "declared")
	if !errors.Is(err, errdef.ErrTooLarge) {
		t.Fatalf("declared oversized manifest: %v", err)
	}
	_, _, err = repo.FetchReference(context.Background(), "chunked")
	if !errors.Is(err, errdef.ErrTooLarge) {
		t.Fatalf("undeclared oversized manifest: %v", err)
	}
	// A descriptor over the limit is refused before any request.
	before := len(s.requests())
	_, err = repo.Fetch(context.Background(), ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromBytes(big), Size: int64(len(big))})
	if !errors.Is(err, errdef.ErrTooLarge) || len(s.requests()) != before {
		t.Fatalf("fetch of an oversized descriptor: %v after %d requests", err, len(s.requests())-before)
	}
}

func TestTagPagination(t *testing.T) {
	var all []string
	for i := range 2345 {
		all = append(all, fmt.Sprintf("t%05d", i))
	}
	for _, withLink := range []bool{true, false} {
		t.Run(fmt.Sprintf("link=%v", withLink), func(t *testing.T) {
			s := newScripted(t, func(w http.ResponseWriter, r *http.Request) bool {
				if !strings.HasSuffix(r.URL.Path, "/tags/list") {
					return false
				}
				n, _ := strconv.Atoi(r.URL.Query().Get("n"))
				if n <= 0 || n > 1000 {
					n = 1000 // the registry's own page size
				}
				last := r.URL.Query().Get("last")
				i := 0
				if last != "" {
					i, _ = slices.BinarySearch(all, last)
					i++
				}
				page := all[i:min(i+n, len(all))]
				if withLink && i+n < len(all) {
					w.Header().Set("Link", fmt.Sprintf(`</v2/test/repo/tags/list?n=%d&last=%s>; rel="next"`, n, page[len(page)-1]))
				}
				json.NewEncoder(w).Encode(map[string]any{"name": "test/repo", "tags": page})
				return true
			})
			got := tagsOf(t, s.repo(t))
			if !slices.Equal(got, all) {
				t.Fatalf("got %d tags, want %d", len(got), len(all))
			}
		})
	}
}

func TestReferrersFallbackTag(t *testing.T) {
	subject := digest.FromString("subject manifest")
	mk := func(subj digest.Digest, at string) ([]byte, ocispec.Descriptor) {
		m := map[string]any{"schemaVersion": 2, "mediaType": ocispec.MediaTypeImageManifest, "artifactType": at,
			"config": map[string]any{"mediaType": "application/vnd.oci.empty.v1+json", "digest": "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a", "size": 2},
			"layers": []any{}, "subject": map[string]any{"mediaType": ocispec.MediaTypeImageManifest, "digest": subj, "size": 16}}
		data, _ := json.Marshal(m)
		return data, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromBytes(data), Size: int64(len(data)), ArtifactType: at}
	}
	sbom, sbomDesc := mk(subject, "application/vnd.example.sbom")
	sig, sigDesc := mk(subject, "application/vnd.example.sig")
	bogus, bogusDesc := mk(digest.FromString("another subject"), "application/vnd.example.sbom")
	idx := map[string]any{"schemaVersion": 2, "mediaType": ocispec.MediaTypeImageIndex, "manifests": []ocispec.Descriptor{sbomDesc, sigDesc, bogusDesc}}
	idxData, _ := json.Marshal(idx)
	docs := map[string][]byte{sbomDesc.Digest.String(): sbom, sigDesc.Digest.String(): sig, bogusDesc.Digest.String(): bogus, ReferrersTag(subject): idxData}
	s := newScripted(t, func(w http.ResponseWriter, r *http.Request) bool {
		if strings.Contains(r.URL.Path, "/referrers/") {
			http.Error(w, "404 page not found", http.StatusNotFound)
			return true
		}
		if i := strings.Index(r.URL.Path, "/manifests/"); i >= 0 {
			if data, ok := docs[r.URL.Path[i+len("/manifests/"):]]; ok {
				mt := ocispec.MediaTypeImageManifest
				if bytes.Equal(data, idxData) {
					mt = ocispec.MediaTypeImageIndex
				}
				w.Header().Set("Content-Type", mt)
				w.Write(data)
				return true
			}
		}
		return false
	})
	repo := s.repo(t)
	subj := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: subject, Size: 16}
	got, err := repo.Referrers(context.Background(), subj, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Digest != sbomDesc.Digest || got[1].Digest != sigDesc.Digest {
		t.Fatalf("referrers = %+v; want the sbom and the signature, not the entry naming another subject", got)
	}
	got, err = repo.Referrers(context.Background(), subj, "application/vnd.example.sig")
	if err != nil || len(got) != 1 || got[0].Digest != sigDesc.Digest {
		t.Fatalf("referrers filtered = %+v, %v", got, err)
	}
	none, err := repo.Referrers(context.Background(), ocispec.Descriptor{Digest: digest.FromString("lonely")}, "")
	if err != nil || len(none) != 0 {
		t.Fatalf("referrers of a subject without a tag = %+v, %v", none, err)
	}
	if tag := ReferrersTag(subject); tag != "sha256-"+subject.Encoded() {
		t.Fatalf("referrers tag %q", tag)
	}
}

func TestReferrersTagSchema(t *testing.T) {
	// The specification's examples.
	for in, want := range map[string]string{
		"sha256:" + strings.Repeat("a", 64):  "sha256-" + strings.Repeat("a", 64),
		"sha512:" + strings.Repeat("a", 128): "sha512-" + strings.Repeat("a", 64),
		"test+algorithm+using+algorithm+separators+and+lots+of+characters+to+excercise+overall+truncation:alsoSome=InTheEncodedSectionToShowHyphenReplacementAndLotsAndLotsOfCharactersToExcerciseEncodedTruncation": "test-algorithm-using-algorithm-s-alsoSome-InTheEncodedSectionToShowHyphenReplacementAndLotsAndLot",
	} {
		if got := ReferrersTag(digest.Digest(in)); got != want {
			t.Errorf("ReferrersTag(%s) = %s, want %s", in, got, want)
		}
	}
}

func TestReferrersAPIFilter(t *testing.T) {
	subject := digest.FromString("s")
	entries := []ocispec.Descriptor{
		{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromString("a"), Size: 1, ArtifactType: "x/a"},
		{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromString("b"), Size: 1, ArtifactType: "x/b"},
	}
	var asked []string
	s := newScripted(t, func(w http.ResponseWriter, r *http.Request) bool {
		if !strings.Contains(r.URL.Path, "/referrers/") {
			return false
		}
		asked = append(asked, r.URL.Query().Get("artifactType"))
		w.Header().Set("Content-Type", ocispec.MediaTypeImageIndex)
		page := entries[:1]
		if r.URL.Query().Get("page") == "2" {
			page = entries[1:]
		} else {
			w.Header().Set("Link", fmt.Sprintf(`<%s?page=2>; rel="next"`, r.URL.Path))
		}
		json.NewEncoder(w).Encode(map[string]any{"schemaVersion": 2, "mediaType": ocispec.MediaTypeImageIndex, "manifests": page})
		return true
	})
	repo := s.repo(t)
	got, err := repo.Referrers(context.Background(), ocispec.Descriptor{Digest: subject}, "")
	if err != nil || len(got) != 2 {
		t.Fatalf("referrers over two pages = %+v, %v", got, err)
	}
	// The registry did not say it filtered: the client does.
	got, err = repo.Referrers(context.Background(), ocispec.Descriptor{Digest: subject}, "x/b")
	if err != nil || len(got) != 1 || got[0].ArtifactType != "x/b" {
		t.Fatalf("referrers filtered = %+v, %v", got, err)
	}
	if asked[len(asked)-2] != "x/b" {
		t.Fatalf("artifactType not passed to the registry: %q", asked)
	}
}

// TestUnauthorizedMidTransfer: the registry stops taking a token partway
// through a push; the client gets a fresh one and carries on.
func TestUnauthorizedMidTransfer(t *testing.T) {
	var mu sync.Mutex
	issued := 0
	uses := map[string]int{}
	var realm string
	blobs := map[string][]byte{}
	s := newScripted(t, func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path == "/token" {
			if u, p, ok := r.BasicAuth(); !ok || u != "bob" || p != "pw" {
				http.Error(w, "bad credentials", http.StatusUnauthorized)
				return true
			}
			mu.Lock()
			issued++
			tok := fmt.Sprintf("tok%d", issued)
			mu.Unlock()
			json.NewEncoder(w).Encode(map[string]any{"token": tok, "expires_in": 300})
			return true
		}
		mu.Lock()
		tok := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		uses[tok]++
		ok := tok != "" && uses[tok] <= 3 // each token is good for three requests
		mu.Unlock()
		if !ok {
			w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm=%q,service="scripted",scope="repository:test/repo:pull,push"`, realm))
			http.Error(w, `{"errors":[{"code":"UNAUTHORIZED"}]}`, http.StatusUnauthorized)
			return true
		}
		switch {
		case r.URL.Path == "/v2/":
		case r.Method == http.MethodHead && strings.Contains(r.URL.Path, "/blobs/sha256:"):
			d := r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:]
			if b, ok := blobs[d]; ok {
				w.Header().Set("Content-Length", strconv.Itoa(len(b)))
				return true
			}
			w.WriteHeader(http.StatusNotFound)
		case r.Method == http.MethodPost:
			w.Header().Set("Location", "/v2/test/repo/blobs/uploads/u1")
			w.WriteHeader(http.StatusAccepted)
		case r.Method == http.MethodPut:
			body, _ := io.ReadAll(r.Body)
			mu.Lock()
			blobs[r.URL.Query().Get("digest")] = body
			mu.Unlock()
			w.WriteHeader(http.StatusCreated)
		case r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/"):
			d := r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:]
			w.Write(blobs[d])
		default:
			return false
		}
		return true
	})
	realm = s.URL + "/token"
	repo := s.repo(t, WithCredentials(staticCreds(credentials.Credential{Username: "bob", Password: "pw"})))
	ctx := context.Background()
	for i := range 4 {
		data := []byte(fmt.Sprintf("blob %d", i))
		desc := blobDesc(data)
		// A reader that cannot be rewound: only requests refused before
		// their body was read can be sent again.
		if err := repo.Push(ctx, desc, io.MultiReader(bytes.NewReader(data))); err != nil {
			t.Fatalf("push %d: %v", i, err)
		}
		got := readAll(t, func() (io.ReadCloser, error) { return repo.Fetch(ctx, desc) })
		if !bytes.Equal(got, data) {
			t.Fatalf("blob %d differs", i)
		}
	}
	if issued < 3 {
		t.Fatalf("only %d tokens issued; the client did not refresh", issued)
	}
}

func TestPushRoutesByMediaType(t *testing.T) {
	var mu sync.Mutex
	stored := map[string]bool{}
	s := newScripted(t, func(w http.ResponseWriter, r *http.Request) bool {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case r.URL.Path == "/v2/":
		case r.Method == http.MethodHead:
			d := r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:]
			if !stored[d] {
				w.WriteHeader(http.StatusNotFound)
			}
		case r.Method == http.MethodPost:
			w.Header().Set("Location", "/v2/test/repo/blobs/uploads/abc?state=xyz")
			w.WriteHeader(http.StatusAccepted)
		case r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/uploads/"):
			if r.URL.Query().Get("state") != "xyz" || r.ContentLength < 0 {
				t.Errorf("PUT to %s: query lost or no Content-Length", r.URL)
			}
			io.Copy(io.Discard, r.Body)
			stored[r.URL.Query().Get("digest")] = true
			w.WriteHeader(http.StatusCreated)
		case r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/manifests/"):
			if r.Header.Get("Content-Type") != ocispec.MediaTypeImageIndex {
				t.Errorf("manifest PUT with Content-Type %q", r.Header.Get("Content-Type"))
			}
			io.Copy(io.Discard, r.Body)
			stored[r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:]] = true
			w.WriteHeader(http.StatusCreated)
		default:
			return false
		}
		return true
	})
	repo := s.repo(t)
	ctx := context.Background()
	idx := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}`)
	idxDesc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageIndex, Digest: digest.FromBytes(idx), Size: int64(len(idx))}
	helm := []byte("a helm chart, or any artifact")
	helmDesc := ocispec.Descriptor{MediaType: "application/vnd.cncf.helm.chart.content.v1.tar+gzip", Digest: digest.FromBytes(helm), Size: int64(len(helm))}
	for _, c := range []struct {
		desc ocispec.Descriptor
		data []byte
	}{{idxDesc, idx}, {helmDesc, helm}, {helmDesc, helm}} {
		if err := repo.Push(ctx, c.desc, bytes.NewReader(c.data)); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{
		"GET /v2/",
		"PUT /v2/test/repo/manifests/" + idxDesc.Digest.String(),
		"HEAD /v2/test/repo/blobs/" + helmDesc.Digest.String(),
		"POST /v2/test/repo/blobs/uploads/",
		"PUT /v2/test/repo/blobs/uploads/abc?digest=" + strings.Replace(helmDesc.Digest.String(), ":", "%3A", 1) + "&state=xyz",
		"HEAD /v2/test/repo/blobs/" + helmDesc.Digest.String(), // the second push stops here
	}
	if got := s.requests(); !slices.Equal(got, want) {
		t.Fatalf("requests:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestChunkMinLength(t *testing.T) {
	const minLen = 100_000
	var mu sync.Mutex
	var patches []int
	var got bytes.Buffer
	s := newScripted(t, func(w http.ResponseWriter, r *http.Request) bool {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case r.URL.Path == "/v2/":
		case r.Method == http.MethodPost:
			w.Header().Set("Location", "/v2/test/repo/blobs/uploads/c1")
			w.Header().Set("OCI-Chunk-Min-Length", strconv.Itoa(minLen))
			w.WriteHeader(http.StatusAccepted)
		case r.Method == http.MethodPatch:
			want := fmt.Sprintf("%d-%d", got.Len(), got.Len()+int(r.ContentLength)-1)
			if r.Header.Get("Content-Range") != want {
				t.Errorf("Content-Range %q, want %q", r.Header.Get("Content-Range"), want)
			}
			n, _ := io.Copy(&got, r.Body)
			patches = append(patches, int(n))
			w.Header().Set("Location", "/v2/test/repo/blobs/uploads/c1")
			w.Header().Set("Range", fmt.Sprintf("0-%d", got.Len()-1))
			w.WriteHeader(http.StatusAccepted)
		case r.Method == http.MethodPut:
			io.Copy(&got, r.Body)
			if digest.FromBytes(got.Bytes()).String() != r.URL.Query().Get("digest") {
				http.Error(w, `{"errors":[{"code":"DIGEST_INVALID"}]}`, http.StatusBadRequest)
				return true
			}
			w.WriteHeader(http.StatusCreated)
		default:
			return false
		}
		return true
	})
	repo := s.repo(t, WithChunkSize(10_000))
	data := bytes.Repeat([]byte("x"), 350_000)
	w, err := repo.Ingest(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	for off := 0; off < len(data); off += 7000 {
		w.Write(data[off:min(off+7000, len(data))])
	}
	if _, err := w.Commit(context.Background(), int64(len(data)), digest.FromBytes(data)); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Bytes(), data) {
		t.Fatal("uploaded content differs")
	}
	if len(patches) != 3 {
		t.Errorf("%d PATCHes of %v, want 3 of at least %d", len(patches), patches, minLen)
	}
	for _, n := range patches {
		if n < minLen {
			t.Errorf("chunk of %d bytes, below the registry's minimum %d", n, minLen)
		}
	}
}

// TestLoopbackScheme: a loopback registry is tried over HTTPS first and
// spoken to in plain HTTP only when it answers in plain HTTP.
func TestLoopbackScheme(t *testing.T) {
	var tlsHits atomic.Int32
	tlsSrv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { tlsHits.Add(1) }))
	defer tlsSrv.Close()
	certPEM := pemOf(tlsSrv.Certificate().Raw)
	host := strings.TrimPrefix(tlsSrv.URL, "https://")
	c := newTestClient(t, WithCA(host, certPEM))
	if err := c.Ping(context.Background(), host); err != nil {
		t.Fatalf("ping TLS loopback: %v", err)
	}
	h, _ := c.host(host)
	if h.getScheme() != "https" || tlsHits.Load() == 0 {
		t.Fatalf("TLS loopback registry spoken to over %q", h.getScheme())
	}
	// Without the CA the certificate is refused, not downgraded.
	c2 := newTestClient(t)
	if err := c2.Ping(context.Background(), host); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("ping with an unknown CA = %v", err)
	}
	// Skipping verification for the host works too.
	c3 := newTestClient(t, WithInsecureSkipVerify(host))
	if err := c3.Ping(context.Background(), host); err != nil {
		t.Fatalf("ping with verification skipped: %v", err)
	}
	// A plain server on loopback: HTTPS is refused by it, plain is used.
	plain := newScripted(t, func(http.ResponseWriter, *http.Request) bool { return false })
	c4 := newTestClient(t)
	if err := c4.Ping(context.Background(), plain.host); err != nil {
		t.Fatalf("ping plain loopback: %v", err)
	}
	h4, _ := c4.host(plain.host)
	if h4.getScheme() != "http" {
		t.Fatalf("plain loopback registry spoken to over %q", h4.getScheme())
	}
	// A bad CA is an error of New.
	if _, err := New(WithCA("x", []byte("not pem"))); !errors.Is(err, errdef.ErrInvalid) {
		t.Fatalf("New with a bad CA: %v", err)
	}
}

// TestPushFile pushes from a file (sent as it is, for the kernel to copy)
// and refuses a file of the wrong size before sending.
func TestPushFile(t *testing.T) {
	reg := registrytest.Start(t, registrytest.Distribution28(t), "")
	repo, _ := newTestClient(t).Repository(reg.Host, "lading/file")
	data := bytes.Repeat([]byte("file content "), 100_000)
	path := filepath.Join(t.TempDir(), "blob")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	desc := blobDesc(data)
	f, _ := os.Open(path)
	defer f.Close()
	short := desc
	short.Size--
	if err := repo.Push(context.Background(), short, f); !errors.Is(err, errdef.ErrSizeMismatch) {
		t.Fatalf("push of a file longer than its descriptor: %v", err)
	}
	if err := repo.Push(context.Background(), desc, f); err != nil {
		t.Fatal(err)
	}
	got := readAll(t, func() (io.ReadCloser, error) { return repo.Fetch(context.Background(), desc) })
	if !bytes.Equal(got, data) {
		t.Fatal("content differs")
	}
	// Chunked pushes, for registries behind request size limits.
	chunked, _ := newTestClient(t, WithChunkedPush(100_000), WithChunkSize(256<<10)).Repository(reg.Host, "lading/chunked")
	f.Seek(0, io.SeekStart)
	if err := chunked.Push(context.Background(), desc, f); err != nil {
		t.Fatalf("chunked push: %v", err)
	}
	got = readAll(t, func() (io.ReadCloser, error) { return chunked.Fetch(context.Background(), desc) })
	if !bytes.Equal(got, data) {
		t.Fatal("chunked content differs")
	}
}

func TestWarnings(t *testing.T) {
	s := newScripted(t, func(w http.ResponseWriter, r *http.Request) bool {
		if strings.Contains(r.URL.Path, "/blobs/") {
			w.Header().Add("Warning", `299 - "This image is deprecated and will be removed soon."`)
			w.Header().Add("Warning", `199 - "not for clients"`)
			w.Write([]byte("x"))
			return true
		}
		return false
	})
	var logged bytes.Buffer
	repo := s.repo(t, WithLogger(slog.New(slog.NewTextHandler(&logged, nil))))
	for range 3 {
		readAll(t, func() (io.ReadCloser, error) { return repo.Fetch(context.Background(), blobDesc([]byte("x"))) })
	}
	if n := strings.Count(logged.String(), "deprecated and will be removed"); n != 1 {
		t.Fatalf("warning logged %d times, want once:\n%s", n, logged.String())
	}
	if strings.Contains(logged.String(), "not for clients") {
		t.Fatal("a non-299 warning was reported")
	}
}

// TestRedirectKeepsCredentials: a blob redirected to another host (a CDN)
// is fetched there without the registry's Authorization header.
func TestRedirectKeepsCredentials(t *testing.T) {
	data := []byte("served by the CDN")
	var cdnAuth atomic.Value
	cdnAuth.Store("unset")
	cdn := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cdnAuth.Store(r.Header.Get("Authorization"))
		w.Write(data)
	}))
	defer cdn.Close()
	// The CDN is "localhost", the registry 127.0.0.1: two hosts.
	cdnURL := strings.Replace(cdn.URL, "127.0.0.1", "localhost", 1)
	s := newScripted(t, func(w http.ResponseWriter, r *http.Request) bool {
		if u, p, ok := r.BasicAuth(); !ok || u != "bob" || p != "pw" {
			w.Header().Set("WWW-Authenticate", `Basic realm="scripted"`)
			w.WriteHeader(http.StatusUnauthorized)
			return true
		}
		if strings.Contains(r.URL.Path, "/blobs/") {
			http.Redirect(w, r, cdnURL+"/signed/blob?sig=abc", http.StatusTemporaryRedirect)
			return true
		}
		return false
	})
	repo := s.repo(t, WithCredentials(staticCreds(credentials.Credential{Username: "bob", Password: "pw"})))
	got := readAll(t, func() (io.ReadCloser, error) { return repo.Fetch(context.Background(), blobDesc(data)) })
	if !bytes.Equal(got, data) {
		t.Fatal("content differs")
	}
	if a := cdnAuth.Load().(string); a != "" {
		t.Fatalf("the CDN got Authorization %q", a)
	}
}

// TestPushEmptyFile pushes a zero-byte blob from a file.
func TestPushEmptyFile(t *testing.T) {
	var put atomic.Int32
	s := newScripted(t, func(w http.ResponseWriter, r *http.Request) bool {
		switch {
		case r.Method == http.MethodHead:
			w.WriteHeader(http.StatusNotFound)
		case r.Method == http.MethodPost:
			w.Header().Set("Location", "/v2/test/repo/blobs/uploads/e")
			w.WriteHeader(http.StatusAccepted)
		case r.Method == http.MethodPut:
			if r.ContentLength != 0 {
				t.Errorf("PUT of an empty blob with Content-Length %d", r.ContentLength)
			}
			put.Add(1)
			w.WriteHeader(http.StatusCreated)
		default:
			return false
		}
		return true
	})
	path := filepath.Join(t.TempDir(), "empty")
	os.WriteFile(path, nil, 0o644)
	f, _ := os.Open(path)
	defer f.Close()
	if err := s.repo(t).Push(context.Background(), blobDesc(nil), f); err != nil {
		t.Fatal(err)
	}
	if put.Load() != 1 {
		t.Fatalf("%d PUTs", put.Load())
	}
}

// TestMountFallsBackToUpload: a registry that will not mount opens an
// upload session instead (202); the blob is streamed from the source
// repository into it.
func TestMountFallsBackToUpload(t *testing.T) {
	data := []byte("a layer in team/base")
	desc := blobDesc(data)
	var mu sync.Mutex
	var got []byte
	s := newScripted(t, func(w http.ResponseWriter, r *http.Request) bool {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case r.URL.Path == "/v2/":
		case r.Method == http.MethodHead && strings.HasPrefix(r.URL.Path, "/v2/team/app/"):
			w.WriteHeader(http.StatusNotFound)
		case r.Method == http.MethodGet && r.URL.Path == "/v2/team/base/blobs/"+desc.Digest.String():
			w.Write(data)
		case r.Method == http.MethodPost && r.URL.Path == "/v2/team/app/blobs/uploads/":
			if r.URL.Query().Get("mount") != desc.Digest.String() || r.URL.Query().Get("from") != "team/base" {
				t.Errorf("POST %s: not a mount", r.URL)
			}
			w.Header().Set("Location", "/v2/team/app/blobs/uploads/m1")
			w.WriteHeader(http.StatusAccepted)
		case r.Method == http.MethodPut && r.URL.Path == "/v2/team/app/blobs/uploads/m1":
			got, _ = io.ReadAll(r.Body)
			w.WriteHeader(http.StatusCreated)
		default:
			return false
		}
		return true
	})
	c := newTestClient(t)
	dst, _ := c.Repository(s.host, "team/app")
	if err := dst.Mount(context.Background(), desc, "team/base", nil); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("uploaded %q, want the source's content", got)
	}
}

// TestPushAfterExistsAsksOnce: a Push right after Exists found the blob
// missing does not send a second HEAD; a Push on its own does.
func TestPushAfterExistsAsksOnce(t *testing.T) {
	data := []byte("a blob")
	desc := blobDesc(data)
	s := newScripted(t, func(w http.ResponseWriter, r *http.Request) bool {
		switch {
		case r.Method == http.MethodHead && strings.Contains(r.URL.Path, "/blobs/"):
			w.WriteHeader(http.StatusNotFound)
		case r.Method == http.MethodPost:
			w.Header().Set("Location", "/v2/test/repo/blobs/uploads/u1")
			w.WriteHeader(http.StatusAccepted)
		case r.Method == http.MethodPut:
			io.Copy(io.Discard, r.Body)
			w.WriteHeader(http.StatusCreated)
		default:
			return false
		}
		return true
	})
	repo := s.repo(t)
	ctx := context.Background()
	heads := func() int {
		n := 0
		for _, e := range s.requests() {
			if strings.HasPrefix(e, "HEAD ") {
				n++
			}
		}
		return n
	}
	if ok, err := repo.Exists(ctx, desc); err != nil || ok {
		t.Fatalf("exists: %v %v", ok, err)
	}
	if err := repo.Push(ctx, desc, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	if n := heads(); n != 1 {
		t.Fatalf("%d HEADs for Exists then Push, want 1: %v", n, s.requests())
	}
	if err := repo.Push(ctx, desc, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	if n := heads(); n != 2 {
		t.Fatalf("a Push on its own sent %d HEADs, want 1: %v", n-1, s.requests())
	}
}
