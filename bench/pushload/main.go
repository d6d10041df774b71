// Command pushload measures how fast a registry takes concurrent pushes of
// distinct images, with the request sequence docker and crane use for each
// blob (HEAD, POST, PATCH with the content, PUT with the digest) followed by
// a manifest PUT. All content is generated before the clock starts, so the
// client costs little more than the HTTP round trips and the server's work is
// what is timed.
//
//	go run ./bench/pushload -url http://127.0.0.1:5000 -clients 8 -images 8
//
// It prints one line: seconds, images, bytes, and the rates.
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"sync"
	"time"
)

type blob struct {
	digest string
	data   []byte
}

type image struct {
	repo, tag string
	blobs     []blob // layers then config
	manifest  []byte
}

func main() {
	base := flag.String("url", "http://127.0.0.1:5000", "registry base URL")
	clients := flag.Int("clients", 8, "concurrent clients, each pushing to its own repository")
	images := flag.Int("images", 8, "images per client")
	layers := flag.Int("layers", 3, "layers per image")
	size := flag.Int("size", 1<<20, "bytes per layer")
	prefix := flag.String("repo", "push", "repository prefix; client N pushes to PREFIX/cN")
	flag.Parse()

	work := make([][]image, *clients)
	var total int64
	for c := range work {
		for i := range *images {
			img := makeImage(fmt.Sprintf("%s/c%d", *prefix, c+1), fmt.Sprintf("v%d", i+1), *layers, *size)
			for _, b := range img.blobs {
				total += int64(len(b.data))
			}
			work[c] = append(work[c], img)
		}
	}
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: *clients * 2}, Timeout: 5 * time.Minute}
	ctx := context.Background()
	errs := make(chan error, *clients)
	var wg sync.WaitGroup
	start := time.Now()
	for c := range work {
		wg.Add(1)
		go func(imgs []image) {
			defer wg.Done()
			for _, img := range imgs {
				if err := push(ctx, hc, *base, img); err != nil {
					errs <- err
					return
				}
			}
		}(work[c])
	}
	wg.Wait()
	elapsed := time.Since(start).Seconds()
	close(errs)
	if err := <-errs; err != nil {
		fmt.Fprintln(os.Stderr, "pushload:", err)
		os.Exit(1)
	}
	n := *clients * *images
	fmt.Printf("%.3f s, %d images, %d bytes: %.1f images/s, %.1f MB/s\n", elapsed, n, total, float64(n)/elapsed, float64(total)/elapsed/1e6)
}

func digestOf(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

func makeImage(repo, tag string, layers, size int) image {
	img := image{repo: repo, tag: tag}
	type desc struct {
		MediaType string `json:"mediaType"`
		Digest    string `json:"digest"`
		Size      int    `json:"size"`
	}
	var ls []desc
	var diffIDs []string
	for range layers {
		b := make([]byte, size)
		_, _ = rand.Read(b)
		d := digestOf(b)
		img.blobs = append(img.blobs, blob{d, b})
		ls = append(ls, desc{"application/vnd.oci.image.layer.v1.tar", d, size})
		diffIDs = append(diffIDs, d)
	}
	cfg, _ := json.Marshal(map[string]any{
		"architecture": "amd64", "os": "linux",
		"rootfs":  map[string]any{"type": "layers", "diff_ids": diffIDs},
		"comment": repo + ":" + tag,
	})
	cd := digestOf(cfg)
	img.blobs = append(img.blobs, blob{cd, cfg})
	img.manifest, _ = json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.manifest.v1+json",
		"config":        desc{"application/vnd.oci.image.config.v1+json", cd, len(cfg)},
		"layers":        ls,
	})
	return img
}

func push(ctx context.Context, hc *http.Client, base string, img image) error {
	for _, b := range img.blobs {
		if err := pushBlob(ctx, hc, base, img.repo, b); err != nil {
			return fmt.Errorf("%s:%s blob %s: %w", img.repo, img.tag, b.digest, err)
		}
	}
	_, err := do(ctx, hc, http.MethodPut, base+"/v2/"+img.repo+"/manifests/"+img.tag,
		"application/vnd.oci.image.manifest.v1+json", img.manifest, http.StatusCreated)
	if err != nil {
		return fmt.Errorf("%s:%s manifest: %w", img.repo, img.tag, err)
	}
	return nil
}

func pushBlob(ctx context.Context, hc *http.Client, base, repo string, b blob) error {
	if _, err := do(ctx, hc, http.MethodHead, base+"/v2/"+repo+"/blobs/"+b.digest, "", nil, http.StatusNotFound); err != nil {
		return err
	}
	resp, err := do(ctx, hc, http.MethodPost, base+"/v2/"+repo+"/blobs/uploads/", "", nil, http.StatusAccepted)
	if err != nil {
		return err
	}
	loc, err := location(base, resp)
	if err != nil {
		return err
	}
	resp, err = do(ctx, hc, http.MethodPatch, loc, "application/octet-stream", b.data, http.StatusAccepted)
	if err != nil {
		return err
	}
	if loc, err = location(base, resp); err != nil {
		return err
	}
	u, err := url.Parse(loc)
	if err != nil {
		return err
	}
	q := u.Query()
	q.Set("digest", b.digest)
	u.RawQuery = q.Encode()
	_, err = do(ctx, hc, http.MethodPut, u.String(), "", nil, http.StatusCreated)
	return err
}

func location(base string, resp *http.Response) (string, error) {
	loc := resp.Header.Get("Location")
	if loc == "" {
		return "", fmt.Errorf("%s %s: no Location", resp.Request.Method, resp.Request.URL)
	}
	b, err := url.Parse(base)
	if err != nil {
		return "", err
	}
	l, err := url.Parse(loc)
	if err != nil {
		return "", err
	}
	return b.ResolveReference(l).String(), nil
}

func do(ctx context.Context, hc *http.Client, method, u, ctype string, body []byte, want int) (*http.Response, error) {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, r)
	if err != nil {
		return nil, err
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	if resp.StatusCode != want {
		return nil, fmt.Errorf("%s %s: %s: %s", method, u, resp.Status, bytes.TrimSpace(msg))
	}
	return resp, nil
}
