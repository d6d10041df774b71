package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lading-oci/lading/image"
	"github.com/lading-oci/lading/registry/errcode"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func TestPushPull(t *testing.T) {
	r := newTestRegistry(t, Options{ChunkMinLength: 1024})
	expect(t, r.do("GET", "/v2/", nil, nil), 200, "")

	// A chunked upload: POST, PATCH, PATCH, PUT with a last chunk.
	data := randomBytes(10000)
	resp := r.do("POST", "/v2/lib/app/blobs/uploads/", nil, nil)
	expect(t, resp, http.StatusAccepted, "")
	loc := resp.Header.Get("Location")
	if resp.Header.Get("OCI-Chunk-Min-Length") != "1024" || !strings.HasPrefix(loc, "/v2/lib/app/blobs/uploads/") {
		t.Fatalf("POST headers: %v", resp.Header)
	}
	resp = r.do("PATCH", loc, data[:4000], hdr{"Content-Range": "0-3999", "Content-Type": "application/octet-stream"})
	expect(t, resp, http.StatusAccepted, "")
	if resp.Header.Get("Range") != "0-3999" {
		t.Fatalf("Range after a chunk: %q", resp.Header.Get("Range"))
	}
	// Out of order, overlapping: 416, nothing written.
	resp = r.do("PATCH", loc, data[3000:5000], hdr{"Content-Range": "3000-4999"})
	expect(t, resp, http.StatusRequestedRangeNotSatisfiable, errcode.BlobUploadInvalid)
	if resp.Header.Get("Range") != "0-3999" {
		t.Fatalf("Range after a 416: %q", resp.Header.Get("Range"))
	}
	resp = r.do("GET", loc, nil, nil)
	expect(t, resp, http.StatusNoContent, "")
	if resp.Header.Get("Range") != "0-3999" {
		t.Fatalf("status Range: %q", resp.Header.Get("Range"))
	}
	expect(t, r.do("PATCH", loc, data[4000:8000], hdr{"Content-Range": "4000-7999"}), http.StatusAccepted, "")
	d := digest.FromBytes(data)
	resp = r.do("PUT", loc+"?digest="+string(d), data[8000:], hdr{"Content-Range": "8000-9999"})
	expect(t, resp, http.StatusCreated, "")
	if resp.Header.Get("Docker-Content-Digest") != string(d) || resp.Header.Get("Location") != "/v2/lib/app/blobs/"+string(d) {
		t.Fatalf("PUT headers: %v", resp.Header)
	}

	// Reads: whole, HEAD, ranges.
	got := expect(t, r.do("GET", "/v2/lib/app/blobs/"+string(d), nil, nil), 200, "")
	if !bytes.Equal(got, data) {
		t.Fatal("blob differs")
	}
	resp = r.do("HEAD", "/v2/lib/app/blobs/"+string(d), nil, nil)
	if resp.StatusCode != 200 || resp.ContentLength != 10000 || resp.Header.Get("Docker-Content-Digest") != string(d) {
		t.Fatalf("HEAD: %d %d %v", resp.StatusCode, resp.ContentLength, resp.Header)
	}
	got = expect(t, r.do("GET", "/v2/lib/app/blobs/"+string(d), nil, hdr{"Range": "bytes=100-199"}), http.StatusPartialContent, "")
	if !bytes.Equal(got, data[100:200]) {
		t.Fatal("range differs")
	}
	expect(t, r.do("GET", "/v2/lib/app/blobs/"+string(d), nil, hdr{"Range": "bytes=20000-"}), http.StatusRequestedRangeNotSatisfiable, "")

	// A manifest by tag; GET and HEAD by tag and digest.
	m, mdata := r.image("lib/app", nil)
	resp = r.putManifest("lib/app", "v1", ocispec.MediaTypeImageManifest, mdata)
	expect(t, resp, http.StatusCreated, "")
	md := digest.FromBytes(mdata)
	if resp.Header.Get("Docker-Content-Digest") != string(md) {
		t.Fatalf("manifest digest header %q", resp.Header.Get("Docker-Content-Digest"))
	}
	for _, ref := range []string{"v1", string(md)} {
		resp = r.do("GET", "/v2/lib/app/manifests/"+ref, nil, hdr{"Accept": ocispec.MediaTypeImageManifest})
		got = expect(t, resp, 200, "")
		if !bytes.Equal(got, mdata) || resp.Header.Get("Content-Type") != ocispec.MediaTypeImageManifest || resp.Header.Get("Docker-Content-Digest") != string(md) {
			t.Fatalf("GET manifest %s: %v", ref, resp.Header)
		}
	}
	_ = m
	expect(t, r.do("GET", "/v2/lib/app/manifests/v2", nil, nil), 404, errcode.ManifestUnknown)
	expect(t, r.do("GET", "/v2/nope/manifests/v1", nil, nil), 404, errcode.ManifestUnknown)
	expect(t, r.do("GET", "/v2/nope/tags/list", nil, nil), 404, errcode.NameUnknown)

	// Deleting a tag removes the tag only.
	expect(t, r.do("DELETE", "/v2/lib/app/manifests/v1", nil, nil), http.StatusAccepted, "")
	expect(t, r.do("GET", "/v2/lib/app/manifests/v1", nil, nil), 404, errcode.ManifestUnknown)
	expect(t, r.do("GET", "/v2/lib/app/manifests/"+string(md), nil, nil), 200, "")
	expect(t, r.do("DELETE", "/v2/lib/app/manifests/"+string(md), nil, nil), http.StatusAccepted, "")
	expect(t, r.do("GET", "/v2/lib/app/manifests/"+string(md), nil, nil), 404, errcode.ManifestUnknown)
	r.verifyLayouts()
}

// TestDockerSchema2 pushes a Docker manifest list and manifest: they are
// served as pushed, byte for byte, with their own media types.
func TestDockerSchema2(t *testing.T) {
	r := newTestRegistry(t, Options{})
	cfg := r.pushBlob("d", []byte(fmt.Sprintf(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["%s"]}}`, digest.FromString("x"))))
	layer := r.pushBlob("d", randomBytes(100))
	man := fmt.Sprintf(`{
   "schemaVersion": 2,
   "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
   "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": %d, "digest": "%s"},
   "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": %d, "digest": "%s"}]
}`, cfg.Size, cfg.Digest, layer.Size, layer.Digest)
	md := digest.FromString(man)
	expect(t, r.putManifest("d", string(md), image.MediaTypeDockerManifest, []byte(man)), 201, "")
	list := fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json","manifests":[{"mediaType":"application/vnd.docker.distribution.manifest.v2+json","size":%d,"digest":"%s","platform":{"architecture":"amd64","os":"linux"}}]}`, len(man), md)
	expect(t, r.putManifest("d", "latest", image.MediaTypeDockerManifestList, []byte(list)), 201, "")
	resp := r.do("GET", "/v2/d/manifests/latest", nil, hdr{"Accept": image.MediaTypeDockerManifestList + ", " + image.MediaTypeDockerManifest})
	if got := expect(t, resp, 200, ""); string(got) != list || resp.Header.Get("Content-Type") != image.MediaTypeDockerManifestList {
		t.Fatalf("list served as %s: %s", resp.Header.Get("Content-Type"), got)
	}
	resp = r.do("GET", "/v2/d/manifests/"+string(md), nil, nil)
	if got := expect(t, resp, 200, ""); string(got) != man {
		t.Fatalf("manifest bytes differ")
	}
	// A client that lists only OCI types is not given a Docker list.
	expect(t, r.do("GET", "/v2/d/manifests/latest", nil, hdr{"Accept": ocispec.MediaTypeImageIndex}), 404, errcode.ManifestUnknown)
	// One that names no manifest type (a generic client) is.
	expect(t, r.do("GET", "/v2/d/manifests/latest", nil, hdr{"Accept": "application/json"}), 200, "")
	r.verifyLayouts()
}

func TestTagParamsSubjectAndReferrers(t *testing.T) {
	r := newTestRegistry(t, Options{})
	_, base := r.image("r", nil)
	bd := digest.FromBytes(base)
	resp := r.do("PUT", "/v2/r/manifests/"+string(bd)+"?tag=a&tag=b&tag=c", base, hdr{"Content-Type": ocispec.MediaTypeImageManifest})
	expect(t, resp, 201, "")
	if got := resp.Header.Values("OCI-Tag"); fmt.Sprint(got) != "[a b c]" {
		t.Fatalf("OCI-Tag = %v", got)
	}
	// Referrers: one with an artifactType, one with only a config media
	// type, one whose subject is missing; pushed twice, listed once.
	subject := &ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: bd, Size: int64(len(base))}
	m1, _ := r.image("r", subject)
	m1.ArtifactType = "application/vnd.example.sig"
	d1, _ := json.Marshal(m1)
	_, d2 := r.image("r", subject)
	missing := &ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromString("gone"), Size: 3}
	_, d3 := r.image("r", missing)
	for _, d := range [][]byte{d1, d2, d1, d3} {
		resp := r.putManifest("r", string(digest.FromBytes(d)), ocispec.MediaTypeImageManifest, d)
		expect(t, resp, 201, "")
		if resp.Header.Get("OCI-Subject") == "" {
			t.Fatal("no OCI-Subject header")
		}
	}
	var idx ocispec.Index
	resp = r.do("GET", "/v2/r/referrers/"+string(bd), nil, nil)
	json.Unmarshal(expect(t, resp, 200, ""), &idx)
	if len(idx.Manifests) != 2 || resp.Header.Get("Content-Type") != ocispec.MediaTypeImageIndex || resp.Header.Get("OCI-Filters-Applied") != "" {
		t.Fatalf("referrers: %+v %v", idx, resp.Header)
	}
	for _, m := range idx.Manifests {
		if m.ArtifactType == "" {
			t.Fatalf("referrer without artifactType: %+v", m)
		}
	}
	resp = r.do("GET", "/v2/r/referrers/"+string(bd)+"?artifactType=application/vnd.example.sig", nil, nil)
	json.Unmarshal(expect(t, resp, 200, ""), &idx)
	if len(idx.Manifests) != 1 || idx.Manifests[0].Digest != digest.FromBytes(d1) || resp.Header.Get("OCI-Filters-Applied") != "artifactType" {
		t.Fatalf("filtered referrers: %+v", idx)
	}
	json.Unmarshal(expect(t, r.do("GET", "/v2/r/referrers/"+string(missing.Digest), nil, nil), 200, ""), &idx)
	if len(idx.Manifests) != 1 {
		t.Fatalf("referrers of a missing subject: %+v", idx)
	}
	json.Unmarshal(expect(t, r.do("GET", "/v2/unknown/referrers/"+string(bd), nil, nil), 200, ""), &idx)
	if len(idx.Manifests) != 0 {
		t.Fatal("referrers in an unknown repository")
	}
	expect(t, r.do("GET", "/v2/r/referrers/sha256:abc", nil, nil), 400, errcode.DigestInvalid)
}

func TestTagsAndCatalogPages(t *testing.T) {
	r := newTestRegistry(t, Options{})
	_, m := r.image("p", nil)
	md := string(digest.FromBytes(m))
	q := ""
	for i := range 25 {
		q += fmt.Sprintf("&tag=t%02d", i)
	}
	expect(t, r.do("PUT", "/v2/p/manifests/"+md+"?"+q[1:], m, hdr{"Content-Type": ocispec.MediaTypeImageManifest}), 201, "")
	var page struct {
		Name string
		Tags []string
	}
	var all []string
	next := "/v2/p/tags/list?n=10"
	for next != "" {
		resp := r.do("GET", next, nil, nil)
		json.Unmarshal(expect(t, resp, 200, ""), &page)
		all = append(all, page.Tags...)
		next = ""
		if l := resp.Header.Get("Link"); l != "" {
			next = strings.TrimSuffix(strings.TrimPrefix(l, "<"), `>; rel="next"`)
		}
	}
	if len(all) != 25 || all[0] != "t00" || all[24] != "t24" {
		t.Fatalf("tags over pages: %v", all)
	}
	resp := r.do("GET", "/v2/p/tags/list?n=0", nil, nil)
	json.Unmarshal(expect(t, resp, 200, ""), &page)
	if len(page.Tags) != 0 || resp.Header.Get("Link") != "" {
		t.Fatalf("n=0: %v %v", page.Tags, resp.Header.Get("Link"))
	}
	json.Unmarshal(expect(t, r.do("GET", "/v2/p/tags/list?last=t22", nil, nil), 200, ""), &page)
	if fmt.Sprint(page.Tags) != "[t23 t24]" {
		t.Fatalf("last=t22: %v", page.Tags)
	}
	expect(t, r.do("GET", "/v2/p/tags/list?n=-1", nil, nil), 400, "")
	for _, n := range []string{"b/x", "a", "c"} {
		r.pushBlob(n, []byte("x"))
	}
	var cat struct{ Repositories []string }
	resp = r.do("GET", "/v2/_catalog?n=2", nil, nil)
	json.Unmarshal(expect(t, resp, 200, ""), &cat)
	if fmt.Sprint(cat.Repositories) != "[a b/x]" || !strings.Contains(resp.Header.Get("Link"), "last=b%2Fx") {
		t.Fatalf("catalog page: %v %q", cat.Repositories, resp.Header.Get("Link"))
	}
	json.Unmarshal(expect(t, r.do("GET", "/v2/_catalog?last=b/x", nil, nil), 200, ""), &cat)
	if fmt.Sprint(cat.Repositories) != "[c p]" {
		t.Fatalf("catalog after b/x: %v", cat.Repositories)
	}
}

func TestMount(t *testing.T) {
	r := newTestRegistry(t, Options{})
	d := r.pushBlob("src", []byte("shared"))
	resp := r.do("POST", "/v2/dst/blobs/uploads/?mount="+string(d.Digest)+"&from=src", nil, nil)
	expect(t, resp, 201, "")
	if resp.Header.Get("Location") != "/v2/dst/blobs/"+string(d.Digest) {
		t.Fatalf("mount location %q", resp.Header.Get("Location"))
	}
	// Without from: any repository the client may read.
	expect(t, r.do("POST", "/v2/dst2/blobs/uploads/?mount="+string(d.Digest), nil, nil), 201, "")
	// A blob nobody has: an upload session instead.
	resp = r.do("POST", "/v2/dst/blobs/uploads/?mount="+string(digest.FromString("none"))+"&from=src", nil, nil)
	expect(t, resp, 202, "")
	if !strings.Contains(resp.Header.Get("Location"), "/blobs/uploads/") {
		t.Fatal("no session after a failed mount")
	}
	expect(t, r.do("GET", "/v2/dst/blobs/"+string(d.Digest), nil, nil), 200, "")
}

// TestHostile sends what an attacker or a broken client would.
func TestHostile(t *testing.T) {
	r := newTestRegistry(t, Options{MaxManifestBytes: 64 << 10})
	good := r.pushBlob("ok", []byte("content"))
	// Names: traversal, encodings, reserved components.
	for _, p := range []string{
		"/v2/../etc/blobs/" + string(good.Digest),
		"/v2/a/%2e%2e/b/blobs/" + string(good.Digest),
		"/v2/a%2Fb/blobs/" + string(good.Digest),
		"/v2/ok/blobs/sha256%3A" + good.Digest.Encoded(),
		"/v2/Upper/blobs/" + string(good.Digest),
		"/v2/a/blobs/blobs/" + string(good.Digest),
		"/v2/a/index.json/manifests/latest",
		"/v2/.lading/blobs/" + string(good.Digest),
	} {
		req, _ := http.NewRequest("GET", r.srv.URL+p, nil)
		req.URL.Opaque = p // send as written
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body := readBody(t, resp)
		resp.Body.Close()
		if resp.StatusCode != 400 && resp.StatusCode != 404 || resp.StatusCode == 200 {
			t.Errorf("GET %s: %d %s", p, resp.StatusCode, body)
		}
		if resp.StatusCode == 400 && !bytes.Contains(body, []byte("NAME_INVALID")) {
			t.Errorf("GET %s: %s", p, body)
		}
	}
	// Digests.
	for _, dg := range []string{"sha256:abc", "md5:" + strings.Repeat("a", 32), "sha256:" + strings.Repeat("G", 64), "nothing"} {
		expect(t, r.do("GET", "/v2/ok/blobs/"+dg, nil, nil), 400, errcode.DigestInvalid)
		expect(t, r.do("POST", "/v2/ok/blobs/uploads/?digest="+dg, []byte("x"), nil), 400, errcode.DigestInvalid)
	}
	// Content that does not match its digest, or its size: nothing stored.
	wrong := digest.FromString("something else")
	expect(t, r.do("POST", "/v2/ok/blobs/uploads/?digest="+string(wrong), []byte("content!"), nil), 400, errcode.DigestInvalid)
	expect(t, r.do("HEAD", "/v2/ok/blobs/"+string(wrong), nil, nil), 404, "")
	resp := r.do("POST", "/v2/ok/blobs/uploads/", nil, nil)
	loc := resp.Header.Get("Location")
	expect(t, r.do("PATCH", loc, []byte("abc"), hdr{"Content-Range": "0-9"}), 400, errcode.SizeInvalid)
	expect(t, r.do("PUT", loc+"?digest="+string(wrong), []byte("tail"), nil), 400, errcode.DigestInvalid)
	expect(t, r.do("GET", loc, nil, nil), 404, errcode.BlobUploadUnknown) // the session ended
	expect(t, r.do("PUT", "/v2/ok/blobs/uploads/"+strings.Repeat("0", 32)+"?digest="+string(wrong), nil, nil), 404, errcode.BlobUploadUnknown)
	expect(t, r.do("PATCH", "/v2/ok/blobs/uploads/../../x", nil, nil), 404, "")
	resp = r.do("POST", "/v2/ok/blobs/uploads/", nil, nil)
	expect(t, r.do("PUT", resp.Header.Get("Location"), []byte("x"), nil), 400, errcode.DigestInvalid)
	entries, _ := os.ReadDir(filepath.Join(r.root, "ok", "blobs", "sha256"))
	if len(entries) != 1 {
		t.Fatalf("%d blobs stored, want 1", len(entries))
	}

	// Manifests: invalid JSON, broken rules (the reason is given), media
	// type mismatch, wrong digest, too large, missing blobs.
	expect(t, r.putManifest("ok", "x", ocispec.MediaTypeImageManifest, []byte("{not json")), 400, errcode.ManifestInvalid)
	body := expect(t, r.putManifest("ok", "x", ocispec.MediaTypeImageManifest, []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","size":"12","digest":"sha256:abc"},"layers":[]}`)), 400, errcode.ManifestInvalid)
	if !bytes.Contains(body, []byte("config.size")) || !bytes.Contains(body, []byte("config.digest")) {
		t.Fatalf("no reason given: %s", body)
	}
	_, m := r.image("ok", nil)
	expect(t, r.putManifest("ok", "x", ocispec.MediaTypeImageIndex, m), 400, errcode.ManifestInvalid)
	expect(t, r.putManifest("ok", "x", "application/vnd.docker.distribution.manifest.v1+prettyjws", m), 400, errcode.ManifestInvalid)
	expect(t, r.putManifest("ok", string(digest.FromString("x")), ocispec.MediaTypeImageManifest, m), 400, errcode.DigestInvalid)
	expect(t, r.putManifest("ok", "bad:tag", ocispec.MediaTypeImageManifest, m), 400, "")
	big := append([]byte(`{"schemaVersion":2,"annotations":{"a":"`), bytes.Repeat([]byte("x"), 70<<10)...)
	expect(t, r.putManifest("ok", "big", ocispec.MediaTypeImageManifest, big), http.StatusRequestEntityTooLarge, errcode.ManifestInvalid)
	var mm ocispec.Manifest
	json.Unmarshal(m, &mm)
	mm.Layers = append(mm.Layers, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: good.Digest, Size: good.Size + 1})
	mm.Layers = append(mm.Layers, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: digest.FromString("absent"), Size: 5})
	m2, _ := json.Marshal(mm)
	body = expect(t, r.putManifest("ok", "x", ocispec.MediaTypeImageManifest, m2), 400, errcode.ManifestInvalid)
	if !bytes.Contains(body, []byte("MANIFEST_BLOB_UNKNOWN")) || !bytes.Contains(body, []byte(digest.FromString("absent"))) {
		t.Fatalf("missing blob not named: %s", body)
	}
	// Another repository's blob does not count.
	other := r.pushBlob("other", []byte("theirs"))
	mm.Layers = mm.Layers[:1]
	mm.Layers = append(mm.Layers, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: other.Digest, Size: other.Size})
	m3, _ := json.Marshal(mm)
	expect(t, r.putManifest("ok", "x", ocispec.MediaTypeImageManifest, m3), 400, errcode.ManifestBlobUnknown)
	expect(t, r.do("GET", "/v2/ok/blobs/"+string(other.Digest), nil, nil), 404, errcode.BlobUnknown)
	expect(t, r.do("GET", "/v2/ok/manifests/x", nil, nil), 404, errcode.ManifestUnknown)
	expect(t, r.do("TRACE", "/v2/ok/manifests/x", nil, nil), 405, errcode.Unsupported)
	r.verifyLayouts()
}

// TestSlowClient: a body that stalls is cut off after the stall timeout,
// and the session keeps what arrived.
func TestSlowClient(t *testing.T) {
	r := newTestRegistry(t, Options{StallTimeout: 300 * time.Millisecond})
	resp := r.do("POST", "/v2/s/blobs/uploads/", nil, nil)
	loc := resp.Header.Get("Location")
	conn, err := net.Dial("tcp", r.srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "PATCH %s HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\nContent-Range: 0-99\r\n\r\n0123456789", loc)
	start := time.Now()
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 4096)
	n, _ := conn.Read(buf)
	if time.Since(start) > 3*time.Second {
		t.Fatalf("a stalled body held the request for %v", time.Since(start))
	}
	_ = n
	resp = r.do("GET", loc, nil, nil)
	expect(t, resp, http.StatusNoContent, "")
	if resp.Header.Get("Range") != "0-9" {
		t.Fatalf("session after a stall: Range %q", resp.Header.Get("Range"))
	}
}

func TestReadOnlyAndLimits(t *testing.T) {
	r := newTestRegistry(t, Options{ReadOnly: true})
	expect(t, r.do("POST", "/v2/x/blobs/uploads/", nil, nil), 405, errcode.Unsupported)
	expect(t, r.do("PUT", "/v2/x/manifests/a", []byte("{}"), nil), 405, errcode.Unsupported)
	expect(t, r.do("GET", "/v2/x/tags/list", nil, nil), 404, errcode.NameUnknown)
	r2 := newTestRegistry(t, Options{MaxBlobBytes: 100})
	expect(t, r2.do("POST", "/v2/x/blobs/uploads/?digest="+string(digest.FromBytes(make([]byte, 200))), make([]byte, 200), nil), 413, errcode.SizeInvalid)
}

// TestConcurrentPushes: many clients push different tags of one repository
// at once; none is lost.
func TestConcurrentPushes(t *testing.T) {
	r := newTestRegistry(t, Options{})
	const clients = 32
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, m := r.image("many", nil)
			resp := r.putManifest("many", fmt.Sprintf("c%02d", i), ocispec.MediaTypeImageManifest, m)
			if resp.StatusCode != 201 {
				errs <- fmt.Errorf("client %d: %d", i, resp.StatusCode)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	var page struct{ Tags []string }
	json.Unmarshal(expect(t, r.do("GET", "/v2/many/tags/list", nil, nil), 200, ""), &page)
	if len(page.Tags) != clients {
		t.Fatalf("%d tags, want %d", len(page.Tags), clients)
	}
	r.verifyLayouts()
}

func TestHealthAndMetrics(t *testing.T) {
	r := newTestRegistry(t, Options{Metrics: NewMetrics()})
	expect(t, r.do("GET", "/healthz", nil, nil), 200, "")
	r.pushBlob("m", randomBytes(1000))
	expect(t, r.do("GET", "/v2/m/blobs/"+string(digest.FromString("x")), nil, nil), 404, "")
	body := string(expect(t, r.do("GET", "/metrics", nil, nil), 200, ""))
	for _, want := range []string{
		`lading_registry_requests_total{method="POST",route="upload",status="201"} 1`,
		`lading_registry_requests_total{method="GET",route="blob",status="404"} 1`,
		`lading_registry_received_bytes_total{route="upload"} 1000`,
		`lading_registry_request_duration_seconds_bucket{method="POST",route="upload"`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	n := newTestRegistry(t, Options{})
	expect(t, n.do("GET", "/metrics", nil, nil), 404, "")
}

func TestParsePath(t *testing.T) {
	cases := map[string]request{
		"/v2/":                        {route: routeBase},
		"/v2/_catalog":                {route: routeCatalog},
		"/v2/a/b/blobs/sha256:x":      {route: routeBlob, name: "a/b", ref: "sha256:x"},
		"/v2/a/blobs/uploads/":        {route: routeUpload, name: "a"},
		"/v2/a/blobs/uploads":         {route: routeUpload, name: "a"},
		"/v2/a/blobs/uploads/id":      {route: routeUploadID, name: "a", ref: "id"},
		"/v2/a/manifests/manifests/t": {route: routeManifest, name: "a/manifests", ref: "t"},
		"/v2/a/manifests/tags/list":   {route: routeTags, name: "a/manifests"},
		"/v2/x/tags/referrers/sha":    {route: routeReferrers, name: "x/tags", ref: "sha"},
	}
	for p, want := range cases {
		got, ok := parsePath(p)
		if !ok || got.route != want.route || got.name != want.name || got.ref != want.ref {
			t.Errorf("parsePath(%q) = %+v, %v; want %+v", p, got, ok, want)
		}
	}
	for _, p := range []string{"/v2/a", "/v2/a/unknown/x", "/v3/a/blobs/x", "/v2/blobs/x"} {
		if got, ok := parsePath(p); ok && got.name != "" {
			t.Errorf("parsePath(%q) = %+v", p, got)
		}
	}
}

func FuzzParsePath(f *testing.F) {
	for _, s := range []string{"/v2/a/blobs/uploads/", "/v2/a/b/manifests/x", "/v2/_catalog", "/v2//blobs/x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		req, ok := parsePath(p)
		if !ok {
			return
		}
		if req.name != "" && !strings.HasPrefix(p, "/v2/"+req.name+"/") {
			t.Fatalf("name %q not at the start of %q", req.name, p)
		}
		if strings.Contains(req.ref, "/") {
			t.Fatalf("ref %q has a slash", req.ref)
		}
	})
}

func FuzzContentRange(f *testing.F) {
	for _, s := range []string{"0-0", "10-5", "bytes=0-99/100", "1-", "99999999999999999999-1"} {
		f.Add(s, int64(10))
	}
	f.Fuzz(func(t *testing.T, cr string, cl int64) {
		req := httptest.NewRequest("PATCH", "/", nil)
		req.Header.Set("Content-Range", cr)
		req.ContentLength = cl
		start, size, err := parseContentRange(req)
		if err != nil {
			return
		}
		if cr == "" {
			if start != -1 || size != cl {
				t.Fatalf("no Content-Range (length %d) gave start %d size %d", cl, start, size)
			}
			return
		}
		if start < 0 || size <= 0 || (cl >= 0 && size != cl) {
			t.Fatalf("%q (length %d) gave start %d size %d", cr, cl, start, size)
		}
	})
}

func FuzzAccept(f *testing.F) {
	f.Add("application/vnd.oci.image.index.v1+json;q=0.5, */*;q=0", ocispec.MediaTypeImageManifest)
	f.Fuzz(func(t *testing.T, accept, mt string) {
		if !acceptable([]string{accept}, mt) && !strings.Contains(accept, "/") {
			t.Fatalf("%q refused %q without naming a type", accept, mt)
		}
	})
}

// TestManifestWarnings: an image without layers breaks only a SHOULD of
// the image specification: it is accepted, with a Warning header.
func TestManifestWarnings(t *testing.T) {
	r := newTestRegistry(t, Options{})
	m, _ := r.image("w", nil)
	m.Layers = []ocispec.Descriptor{}
	data, _ := json.Marshal(m)
	resp := r.putManifest("w", "nolayers", ocispec.MediaTypeImageManifest, data)
	expect(t, resp, 201, "")
	ws := resp.Header.Values("Warning")
	if len(ws) == 0 || !strings.HasPrefix(ws[0], `299 - "manifest accepted, but`) || !strings.Contains(ws[0], "layers") {
		t.Fatalf("warnings: %q", ws)
	}
}

// FuzzManifestPut sends arbitrary manifests: the answer is 201 or a 4xx,
// never a server error, and an accepted manifest reads back byte for byte.
func FuzzManifestPut(f *testing.F) {
	r := newTestRegistry(f, Options{Sparse: true})
	_, m := r.image("f", nil)
	f.Add(m, ocispec.MediaTypeImageManifest)
	f.Add([]byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}`), ocispec.MediaTypeImageIndex)
	f.Add([]byte(`{"schemaVersion":2,"config":{}}`), "")
	f.Fuzz(func(t *testing.T, body []byte, mt string) {
		if len(body) > 1<<16 {
			return
		}
		req := httptest.NewRequest("PUT", "/v2/f/manifests/fuzz", bytes.NewReader(body))
		req.Header.Set("Content-Type", mt)
		rec := httptest.NewRecorder()
		New(r.store, Options{Sparse: true}).ServeHTTP(rec, req)
		switch {
		case rec.Code == http.StatusCreated:
			get := httptest.NewRequest("GET", "/v2/f/manifests/"+rec.Header().Get("Docker-Content-Digest"), nil)
			grec := httptest.NewRecorder()
			New(r.store, Options{}).ServeHTTP(grec, get)
			if grec.Code != 200 || !bytes.Equal(grec.Body.Bytes(), body) {
				t.Fatalf("accepted manifest reads back %d %q", grec.Code, grec.Body.Bytes())
			}
		case rec.Code >= 500:
			t.Fatalf("server error %d: %s", rec.Code, rec.Body.String())
		}
	})
}
