package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lading-oci/lading/registry/errcode"
	"github.com/lading-oci/lading/registry/storage"
	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// soakDuration is how long TestSoakGC runs: 30s, 5s with -short,
// LADING_SOAK to set it.
func soakDuration() time.Duration {
	if v := os.Getenv("LADING_SOAK"); v != "" {
		if d, err := time.ParseDuration(v); err == nil {
			return d
		}
	}
	if testing.Short() {
		return 5 * time.Second
	}
	return 30 * time.Second
}

type soakStats struct {
	pushes, pulls, deletes, gcs atomic.Int64
	removed                     atomic.Int64
	mu                          sync.Mutex
	failures                    []string
}

func (s *soakStats) fail(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.failures) < 20 {
		s.failures = append(s.failures, fmt.Sprintf(format, args...))
	}
}

// TestSoakGC pushes, pulls and deletes images from several clients while
// garbage collection runs in a loop with no grace period: the fence alone
// must keep every push whole. Clients pause between their last blob and
// their manifest, and reuse a base layer they check with HEAD or mount,
// which is the case that breaks registries that collect by time alone.
// The result: no BLOB_UNKNOWN or MANIFEST_BLOB_UNKNOWN, and every
// repository passes the embedded store's Verify.
func TestSoakGC(t *testing.T) {
	r := newTestRegistry(t, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), soakDuration())
	defer cancel()
	base := randomBytes(4096)
	baseDesc := r.pushBlob("base", base)
	baseDesc.MediaType = ocispec.MediaTypeImageLayerGzip
	// The base repository holds an image made of the base layer.
	bcfg := r.pushBlob("base", []byte(fmt.Sprintf(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["%s"]}}`, digest.FromString("a"))))
	bcfg.MediaType = ocispec.MediaTypeImageConfig
	bmData, _ := json.Marshal(ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest, Config: bcfg, Layers: []ocispec.Descriptor{baseDesc}})
	expect(t, r.putManifest("base", "latest", ocispec.MediaTypeImageManifest, bmData), 201, "")
	st := &soakStats{}
	client := &http.Client{Timeout: 30 * time.Second}
	do := func(method, path string, body []byte, h hdr) (*http.Response, []byte, error) {
		req, _ := http.NewRequestWithContext(context.Background(), method, r.srv.URL+path, bytesOrNil(body))
		for k, v := range h {
			req.Header.Set(k, v)
		}
		resp, err := client.Do(req)
		if err != nil {
			return nil, nil, err
		}
		defer resp.Body.Close()
		b := make([]byte, 0, 512)
		buf := make([]byte, 32<<10)
		for {
			n, err := resp.Body.Read(buf)
			b = append(b, buf[:n]...)
			if err != nil {
				break
			}
		}
		return resp, b, nil
	}
	code := func(body []byte) errcode.Code {
		var es errcode.Errors
		if json.Unmarshal(body, &es) == nil && len(es) > 0 {
			return es[0].Code
		}
		return ""
	}
	upload := func(repo string, data []byte, chunked bool) error {
		d := digest.FromBytes(data)
		if !chunked {
			resp, body, err := do("POST", "/v2/"+repo+"/blobs/uploads/?digest="+string(d), data, nil)
			if err != nil || resp.StatusCode != 201 {
				return fmt.Errorf("monolithic upload: %v %s", err, body)
			}
			return nil
		}
		resp, body, err := do("POST", "/v2/"+repo+"/blobs/uploads/", nil, nil)
		if err != nil || resp.StatusCode != 202 {
			return fmt.Errorf("start upload: %v %s", err, body)
		}
		loc := resp.Header.Get("Location")
		half := len(data) / 2
		resp, body, err = do("PATCH", loc, data[:half], hdr{"Content-Range": fmt.Sprintf("0-%d", half-1)})
		if err != nil || resp.StatusCode != 202 {
			return fmt.Errorf("patch: %v %s", err, body)
		}
		resp, body, err = do("PUT", loc+"?digest="+string(d), data[half:], nil)
		if err != nil || resp.StatusCode != 201 {
			return fmt.Errorf("finish upload: %v %s", err, body)
		}
		return nil
	}

	var wg sync.WaitGroup
	// GC, in a loop, no grace.
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			rep, err := r.store.GC(context.Background(), storage.GCOptions{})
			if err != nil {
				st.fail("gc: %v", err)
				return
			}
			st.gcs.Add(1)
			st.removed.Add(int64(len(rep.Links)))
			for _, p := range rep.Problems {
				st.fail("gc problem: %s", p)
			}
			time.Sleep(time.Duration(rand.IntN(50)) * time.Millisecond)
		}
	}()
	// Pushers.
	const pushers = 4
	stable := make([]atomic.Value, pushers) // a tag never deleted, for pullers
	for p := range pushers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			repo := fmt.Sprintf("soak/p%d", p)
			var history []digest.Digest
			for i := 0; ctx.Err() == nil; i++ {
				// The base layer: HEAD, else mount, else upload.
				resp, _, err := do("HEAD", "/v2/"+repo+"/blobs/"+string(baseDesc.Digest), nil, nil)
				if err != nil {
					st.fail("head: %v", err)
					return
				}
				if resp.StatusCode != 200 {
					resp, body, err := do("POST", "/v2/"+repo+"/blobs/uploads/?mount="+string(baseDesc.Digest)+"&from=base", nil, nil)
					if err != nil {
						st.fail("mount: %v", err)
						return
					}
					if resp.StatusCode != 201 { // not mountable: upload it
						if err := upload(repo, base, false); err != nil {
							st.fail("%s: %v %s", repo, err, body)
							return
						}
					}
				}
				cfg := []byte(fmt.Sprintf(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["%s","%s"]},"comment":"%d-%d"}`, digest.FromString("a"), digest.FromString("b"), p, i))
				layer := randomBytes(1024 + rand.IntN(64<<10))
				if err := upload(repo, cfg, false); err != nil {
					st.fail("%s: %v", repo, err)
					return
				}
				if err := upload(repo, layer, i%2 == 0); err != nil {
					st.fail("%s: %v", repo, err)
					return
				}
				// The pause between the last blob and the manifest.
				time.Sleep(time.Duration(rand.IntN(400)) * time.Millisecond)
				m := ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest,
					Config: ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: digest.FromBytes(cfg), Size: int64(len(cfg))},
					Layers: []ocispec.Descriptor{baseDesc, {MediaType: ocispec.MediaTypeImageLayerGzip, Digest: digest.FromBytes(layer), Size: int64(len(layer))}}}
				data, _ := json.Marshal(m)
				tag := fmt.Sprintf("v%d", i)
				resp, body, err := do("PUT", "/v2/"+repo+"/manifests/"+tag, data, hdr{"Content-Type": ocispec.MediaTypeImageManifest})
				if err != nil || resp.StatusCode != 201 {
					st.fail("%s:%s manifest: %v %s (%s)", repo, tag, err, body, code(body))
					continue
				}
				st.pushes.Add(1)
				d := digest.FromBytes(data)
				if i == 0 {
					stable[p].Store(repo + ":" + tag)
				} else {
					history = append(history, d)
				}
				// Delete older manifests: their blobs become garbage.
				if len(history) > 2 {
					old := history[0]
					history = history[1:]
					resp, body, err := do("DELETE", "/v2/"+repo+"/manifests/"+string(old), nil, nil)
					if err != nil || resp.StatusCode != 202 {
						st.fail("delete: %v %s", err, body)
					}
					st.deletes.Add(1)
				}
			}
		}()
	}
	// Pullers: the stable tags, manifest and every blob.
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				for p := range pushers {
					v, _ := stable[p].Load().(string)
					if v == "" {
						continue
					}
					repo, tag := v[:len(v)-3], v[len(v)-2:]
					resp, body, err := do("GET", "/v2/"+repo+"/manifests/"+tag, nil, hdr{"Accept": ocispec.MediaTypeImageManifest})
					if err != nil || resp.StatusCode != 200 {
						st.fail("pull %s: %v %s", v, err, body)
						continue
					}
					var m ocispec.Manifest
					json.Unmarshal(body, &m)
					for _, l := range append(m.Layers, m.Config) {
						resp, body, err := do("GET", "/v2/"+repo+"/blobs/"+string(l.Digest), nil, nil)
						if err != nil || resp.StatusCode != 200 || digest.FromBytes(body) != l.Digest {
							st.fail("pull %s blob %s: %v %d %s", v, l.Digest, err, resp.StatusCode, code(body))
						}
					}
					st.pulls.Add(1)
				}
				time.Sleep(10 * time.Millisecond)
			}
		}()
	}
	wg.Wait()
	t.Logf("%d pushes, %d pulls, %d deletes, %d collections removing %d blobs", st.pushes.Load(), st.pulls.Load(), st.deletes.Load(), st.gcs.Load(), st.removed.Load())
	for _, f := range st.failures {
		t.Error(f)
	}
	if st.pushes.Load() < 10 || st.gcs.Load() < 10 || st.removed.Load() == 0 {
		t.Errorf("the soak did too little to prove anything")
	}
	if _, err := r.store.GC(context.Background(), storage.GCOptions{}); err != nil {
		t.Fatal(err)
	}
	r.verifyLayouts()
}

func bytesOrNil(b []byte) io.Reader {
	if b == nil {
		return nil
	}
	return bytes.NewReader(b)
}
