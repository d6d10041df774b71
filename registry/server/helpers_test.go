package server

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lading-oci/lading/content/ocilayout"
	"github.com/lading-oci/lading/registry/errcode"
	"github.com/lading-oci/lading/registry/storage"
	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

type testRegistry struct {
	t     testing.TB
	srv   *httptest.Server
	store *storage.FS
	root  string
	auth  [2]string // basic credentials for requests, if set
}

func newTestRegistry(t testing.TB, opts Options) *testRegistry {
	t.Helper()
	root := t.TempDir()
	st, err := storage.Open(context.Background(), root, storage.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(New(st, opts))
	t.Cleanup(func() {
		srv.Close()
		st.Close()
	})
	return &testRegistry{t: t, srv: srv, store: st, root: root}
}

type hdr map[string]string

func (r *testRegistry) do(method, path string, body []byte, h hdr) *http.Response {
	r.t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	u := path
	if !strings.HasPrefix(path, "http") {
		u = r.srv.URL + path
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		r.t.Fatal(err)
	}
	for k, v := range h {
		req.Header.Set(k, v)
	}
	if r.auth[0] != "" && req.Header.Get("Authorization") == "" {
		req.SetBasicAuth(r.auth[0], r.auth[1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func readBody(t testing.TB, resp *http.Response) []byte {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// expect checks a response's status and, if code is set, its first error
// code; it returns the body.
func expect(t testing.TB, resp *http.Response, status int, code errcode.Code) []byte {
	t.Helper()
	body := readBody(t, resp)
	if resp.StatusCode != status {
		t.Fatalf("%s %s: status %d, want %d: %s", resp.Request.Method, resp.Request.URL.Path, resp.StatusCode, status, body)
	}
	if code != "" {
		var es errcode.Errors
		if err := json.Unmarshal(body, &es); err != nil || len(es) == 0 || es[0].Code != code {
			t.Fatalf("%s %s: body %s, want code %s", resp.Request.Method, resp.Request.URL.Path, body, code)
		}
	}
	return body
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// pushBlob uploads data monolithically.
func (r *testRegistry) pushBlob(repo string, data []byte) ocispec.Descriptor {
	r.t.Helper()
	d := digest.FromBytes(data)
	expect(r.t, r.do("POST", "/v2/"+repo+"/blobs/uploads/?digest="+string(d), data, hdr{"Content-Type": "application/octet-stream"}), http.StatusCreated, "")
	return ocispec.Descriptor{MediaType: "application/octet-stream", Digest: d, Size: int64(len(data))}
}

// image builds and pushes the blobs of a small image to repo and returns
// its manifest (not pushed).
func (r *testRegistry) image(repo string, subject *ocispec.Descriptor) (ocispec.Manifest, []byte) {
	r.t.Helper()
	cfg := []byte(fmt.Sprintf(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["%s"]},"created":"2026-01-01T00:00:00Z","comment":"%x"}`, digest.FromString("diff"), randomBytes(8)))
	cd := r.pushBlob(repo, cfg)
	cd.MediaType = ocispec.MediaTypeImageConfig
	ld := r.pushBlob(repo, randomBytes(2048))
	ld.MediaType = ocispec.MediaTypeImageLayerGzip
	m := ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest, Config: cd, Layers: []ocispec.Descriptor{ld}, Subject: subject}
	data, _ := json.Marshal(m)
	return m, data
}

func (r *testRegistry) putManifest(repo, ref, mt string, data []byte) *http.Response {
	r.t.Helper()
	return r.do("PUT", "/v2/"+repo+"/manifests/"+ref, data, hdr{"Content-Type": mt})
}

// verifyLayouts runs the embedded store's Verify on every repository.
func (r *testRegistry) verifyLayouts() {
	r.t.Helper()
	names, _ := r.store.Repositories(context.Background(), "", -1)
	for _, n := range names {
		st, err := ocilayout.Open(context.Background(), filepath.Join(r.root, n))
		if err != nil {
			r.t.Fatalf("open layout %s: %v", n, err)
		}
		rep, err := st.Verify(context.Background(), ocilayout.VerifyOptions{})
		if err != nil {
			r.t.Fatalf("verify %s: %v", n, err)
		}
		for _, p := range rep.Problems {
			r.t.Errorf("layout %s: %s", n, p)
		}
	}
}
