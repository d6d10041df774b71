package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/lading-oci/lading/internal/registrytest"
	"io"
	"path"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/lading-oci/lading/content"
	"github.com/lading-oci/lading/content/contenttest"
	"github.com/lading-oci/lading/errdef"
	"github.com/lading-oci/lading/registry/credentials"
)

// registryStore adapts a Repository to content.Store for the conformance
// suite: a registry has no API to list its blobs.
type registryStore struct{ *Repository }

func (registryStore) Blobs(context.Context, func(ocispec.Descriptor) error) error {
	return fmt.Errorf("list blobs: %w: a registry has no API for it", errdef.ErrUnsupported)
}

// runSuite runs contenttest.Suite against fresh repositories of the
// registry at host.
func runSuite(t *testing.T, host string) {
	c := newTestClient(t)
	n := 0
	contenttest.Suite(t, func(t *testing.T) content.Store {
		switch path.Base(t.Name()) {
		case "Blobs":
			t.Skip("a registry has no API to list blobs")
		case "Tags":
			t.Skip("the suite's tags (\"a/b:c\") are outside the registry tag grammar; TestTagsAndUntag covers tags")
		}
		n++
		repo, err := c.Repository(host, fmt.Sprintf("suite/r%d", n))
		if err != nil {
			t.Fatal(err)
		}
		return registryStore{repo}
	})
}

func TestSuiteDistribution28(t *testing.T) {
	reg := registrytest.Start(t, registrytest.Distribution28(t), "")
	runSuite(t, reg.Host)
}

func TestSuiteDistributionV3(t *testing.T) {
	reg := registrytest.Start(t, registrytest.DistributionV3(t), "")
	runSuite(t, reg.Host)
}

// roundTrip pushes an image and reads everything back.
func roundTrip(t *testing.T, c *Client, host string) {
	ctx := context.Background()
	repo, err := c.Repository(host, "lading/round-trip")
	if err != nil {
		t.Fatal(err)
	}
	img := newTestImage(t, 3, 200_000)
	img.push(t, repo, "v1")

	// Resolve by tag and digest.
	for _, r := range []string{"v1", img.Manifest.Digest.String()} {
		d, err := repo.Resolve(ctx, r)
		if err != nil {
			t.Fatalf("resolve %s: %v", r, err)
		}
		if d.Digest != img.Manifest.Digest || d.Size != img.Manifest.Size || d.MediaType != img.Manifest.MediaType {
			t.Fatalf("resolve %s = %+v, want %+v", r, d, img.Manifest)
		}
	}
	desc, data, err := repo.FetchReference(ctx, "v1")
	if err != nil || desc.Digest != img.Manifest.Digest || !bytes.Equal(data, img.ManifestData) {
		t.Fatalf("fetch reference v1 = %+v, %d bytes, %v", desc, len(data), err)
	}
	// Every blob and the manifest through Fetch, verified.
	for _, d := range append([]ocispec.Descriptor{img.Manifest, img.Config}, img.Layers...) {
		got := readAll(t, func() (io.ReadCloser, error) { return repo.Fetch(ctx, d) })
		want := img.Blobs[d.Digest]
		if d.Digest == img.Manifest.Digest {
			want = img.ManifestData
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("fetch %s: content differs", d.Digest)
		}
		if ok, err := repo.Exists(ctx, d); err != nil || !ok {
			t.Fatalf("exists %s = %v, %v", d.Digest, ok, err)
		}
	}
	st, err := repo.Stat(ctx, img.Layers[0].Digest)
	if err != nil || st.Size != img.Layers[0].Size {
		t.Fatalf("stat = %+v, %v", st, err)
	}
	// A LoadImage over the repository works as over any store.
	loaded, err := content.LoadImage(ctx, repo, img.Manifest, nil)
	if err != nil {
		t.Fatalf("load image: %v", err)
	}
	if len(loaded.Manifest.Layers) != 3 {
		t.Fatalf("loaded %d layers", len(loaded.Manifest.Layers))
	}

	// Mount into another repository of the same registry.
	other, _ := c.Repository(host, "lading/mounted")
	for _, d := range append([]ocispec.Descriptor{img.Config}, img.Layers...) {
		if err := other.Mount(ctx, d, repo.Name(), nil); err != nil {
			t.Fatalf("mount %s: %v", d.Digest, err)
		}
		if ok, err := other.Exists(ctx, d); err != nil || !ok {
			t.Fatalf("mounted %s exists = %v, %v", d.Digest, ok, err)
		}
	}
	if err := other.PushManifest(ctx, img.Manifest, img.ManifestData, "m"); err != nil {
		t.Fatalf("push manifest after mounts: %v", err)
	}

	// Missing things are errdef.ErrNotFound.
	missing := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: digest.FromString("missing"), Size: 7}
	if _, err := repo.Fetch(ctx, missing); !errors.Is(err, errdef.ErrNotFound) {
		t.Fatalf("fetch missing blob: %v", err)
	}
	_, _, err = repo.FetchReference(ctx, "nope")
	var nf *errdef.NotFoundError
	if !errors.Is(err, errdef.ErrNotFound) || !errors.As(err, &nf) || nf.What != errdef.WhatTag || nf.Name != "nope" || nf.In != repo.String() {
		t.Fatalf("fetch missing tag: %v", err)
	}
	if _, err := repo.Stat(ctx, missing.Digest); !errors.As(err, &nf) || nf.What != errdef.WhatBlob {
		t.Fatalf("stat missing blob: %v", err)
	}
	nothing, _ := c.Repository(host, "lading/none")
	called := false
	if err := nothing.Tags(ctx, func([]string) error { called = true; return nil }); err != nil || called {
		t.Fatalf("tags of a missing repository: %v (callback called: %v)", err, called)
	}

	// Catalog lists both repositories.
	var repos []string
	if err := c.Catalog(ctx, host, func(page []string) error { repos = append(repos, page...); return nil }); err != nil {
		t.Fatalf("catalog: %v", err)
	}
	if !slices.Contains(repos, "lading/round-trip") || !slices.Contains(repos, "lading/mounted") {
		t.Fatalf("catalog = %v", repos)
	}
	if err := c.Ping(ctx, host); err != nil {
		t.Fatalf("ping: %v", err)
	}

	// Delete the manifest, then a blob.
	if err := repo.DeleteManifest(ctx, img.Manifest.Digest); err != nil {
		t.Fatalf("delete manifest: %v", err)
	}
	if _, err := repo.Resolve(ctx, img.Manifest.Digest.String()); !errors.Is(err, errdef.ErrNotFound) {
		// A digest that names no manifest may still name a blob; the
		// manifest blob itself is not a layer of the repository.
		t.Fatalf("resolve deleted manifest: %v", err)
	}
	if _, err := repo.Fetch(ctx, img.Manifest); !errors.Is(err, errdef.ErrNotFound) {
		t.Fatalf("fetch deleted manifest: %v", err)
	}
	if err := repo.Delete(ctx, img.Layers[0].Digest); err != nil {
		t.Fatalf("delete blob: %v", err)
	}
	if ok, _ := repo.Exists(ctx, img.Layers[0]); ok {
		t.Fatal("deleted blob still exists")
	}
}

func TestRoundTripDistribution28(t *testing.T) {
	reg := registrytest.Start(t, registrytest.Distribution28(t), "")
	roundTrip(t, newTestClient(t), reg.Host)
}

func TestRoundTripDistributionV3(t *testing.T) {
	reg := registrytest.Start(t, registrytest.DistributionV3(t), "")
	roundTrip(t, newTestClient(t), reg.Host)
}

func tagsOf(t *testing.T, repo *Repository) []string {
	t.Helper()
	var all []string
	if err := repo.Tags(context.Background(), func(p []string) error { all = append(all, p...); return nil }); err != nil {
		t.Fatalf("tags: %v", err)
	}
	return all
}

// tagsAndUntag covers Tag, Tags (more than a page), multi-tag pushes and
// Untag.
func tagsAndUntag(t *testing.T, host string, untagWorks bool) {
	ctx := context.Background()
	c := newTestClient(t)
	repo, _ := c.Repository(host, "lading/tags")
	img := newTestImage(t, 1, 100)
	img.push(t, repo, "a", "b", "c")
	if got := tagsOf(t, repo); strings.Join(got, ",") != "a,b,c" {
		t.Fatalf("tags after a multi-tag push = %v", got)
	}
	if err := repo.Tag(ctx, img.Manifest, "d"); err != nil {
		t.Fatal(err)
	}
	if err := repo.Tag(ctx, img.Manifest, "a/b"); !errors.Is(err, errdef.ErrInvalid) {
		t.Fatalf("tag a/b: %v", err)
	}
	err := repo.Untag(ctx, "b")
	if untagWorks {
		if err != nil {
			t.Fatalf("untag: %v", err)
		}
		if _, err := repo.Resolve(ctx, "b"); !errors.Is(err, errdef.ErrNotFound) {
			t.Fatalf("resolve untagged: %v", err)
		}
	} else if !errors.Is(err, errdef.ErrUnsupported) {
		t.Fatalf("untag on a registry that deletes only by digest: %v", err)
	}
	if err := repo.Untag(ctx, "never-was"); !errors.Is(err, errdef.ErrNotFound) {
		t.Fatalf("untag missing: %v", err)
	}
}

func TestTagsAndUntagDistribution28(t *testing.T) {
	reg := registrytest.Start(t, registrytest.Distribution28(t), "")
	tagsAndUntag(t, reg.Host, false)
}

func TestTagsAndUntagDistributionV3(t *testing.T) {
	reg := registrytest.Start(t, registrytest.DistributionV3(t), "")
	tagsAndUntag(t, reg.Host, true)
}

func TestHtpasswd(t *testing.T) {
	reg := registrytest.Start(t, registrytest.Distribution28(t), registrytest.HtpasswdConfig(t, "alice", "s3cret"))
	ctx := context.Background()
	creds := func(pass string) CredentialFunc {
		return func(_ context.Context, host string) (credentials.Credential, error) {
			if host != reg.Host {
				return credentials.Credential{}, fmt.Errorf("asked for %s", host)
			}
			return credentials.Credential{Username: "alice", Password: pass}, nil
		}
	}
	good := newTestClient(t, WithCredentials(creds("s3cret")))
	roundTrip(t, good, reg.Host)

	for name, c := range map[string]*Client{
		"wrong password": newTestClient(t, WithCredentials(creds("wrong"))),
		"anonymous":      newTestClient(t),
	} {
		repo, _ := c.Repository(reg.Host, "lading/round-trip")
		_, err := repo.Resolve(ctx, "v1")
		var ae *AuthError
		if !errors.Is(err, errdef.ErrUnauthorized) || !errors.As(err, &ae) {
			t.Fatalf("%s: resolve = %v, want an AuthError matching ErrUnauthorized", name, err)
		}
		msg := err.Error()
		if !strings.Contains(msg, reg.Host) || !strings.Contains(msg, "repository:lading/round-trip:pull") {
			t.Errorf("%s: error %q does not name host and scope", name, msg)
		}
		if name == "wrong password" && !strings.Contains(msg, `user "alice"`) {
			t.Errorf("%s: error %q does not name the credentials", name, msg)
		}
		if strings.Contains(msg, "s3cret") || strings.Contains(msg, "wrong") && name != "wrong password" {
			t.Errorf("%s: error %q leaks a password", name, msg)
		}
		if err := c.Ping(ctx, reg.Host); !errors.Is(err, errdef.ErrUnauthorized) {
			t.Errorf("%s: ping = %v", name, err)
		}
	}

	// A lookup per repository, which says where the credentials came from.
	var asked []string
	var mu sync.Mutex
	lookup := func(_ context.Context, host, repo string) (credentials.Credential, string, error) {
		mu.Lock()
		asked = append(asked, host+"|"+repo)
		mu.Unlock()
		if repo == "lading/round-trip" {
			return credentials.Credential{Username: "alice", Password: "stale"}, `auths["` + host + `/lading"]`, nil
		}
		return credentials.Credential{Username: "alice", Password: "s3cret"}, `auths["` + host + `"]`, nil
	}
	c := newTestClient(t, WithCredentialLookup(lookup))
	repo, _ := c.Repository(reg.Host, "lading/round-trip")
	_, err := repo.Resolve(ctx, "v1")
	if !errors.Is(err, errdef.ErrUnauthorized) || !strings.Contains(err.Error(), `user "alice" from auths["`+reg.Host+`/lading"]`) {
		t.Fatalf("resolve with stale per-repository credentials = %v, want the source named", err)
	}
	if err := c.Ping(ctx, reg.Host); err != nil {
		t.Fatalf("ping with the host's credentials: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Contains(asked, reg.Host+"|lading/round-trip") || !slices.Contains(asked, reg.Host+"|") {
		t.Fatalf("lookups %q", asked)
	}
}

// pushPull is a smaller round trip for the auth variants.
func pushPull(t *testing.T, c *Client, host, name string) *testImage {
	t.Helper()
	repo, err := c.Repository(host, name)
	if err != nil {
		t.Fatal(err)
	}
	img := newTestImage(t, 2, 10_000)
	img.push(t, repo, "v1")
	_, data, err := repo.FetchReference(context.Background(), "v1")
	if err != nil || !bytes.Equal(data, img.ManifestData) {
		t.Fatalf("fetch v1: %v", err)
	}
	got := readAll(t, func() (io.ReadCloser, error) { return repo.Fetch(context.Background(), img.Layers[1]) })
	if !bytes.Equal(got, img.Blobs[img.Layers[1].Digest]) {
		t.Fatal("layer content differs")
	}
	return img
}

// referrers pushes an artifact whose subject is an image, lists it, and
// deletes it. On a registry without the referrers API the client keeps the
// referrers tag itself.
func referrers(t *testing.T, host string) (apiSupported bool) {
	ctx := context.Background()
	c := newTestClient(t)
	repo, _ := c.Repository(host, "lading/referrers")
	img := newTestImage(t, 1, 100)
	img.push(t, repo, "v1")

	empty := []byte("{}")
	emptyDesc := ocispec.Descriptor{MediaType: "application/vnd.oci.empty.v1+json", Digest: digest.FromBytes(empty), Size: 2}
	if err := repo.Push(ctx, emptyDesc, bytes.NewReader(empty)); err != nil {
		t.Fatal(err)
	}
	var arts []ocispec.Descriptor
	for i, at := range []string{"application/vnd.example.sbom", "application/vnd.example.sig"} {
		m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest, ArtifactType: at, Config: emptyDesc,
			Layers: []ocispec.Descriptor{}, Subject: &img.Manifest, Annotations: map[string]string{"n": fmt.Sprint(i)}}
		m.SchemaVersion = 2
		data, _ := json.Marshal(m)
		d := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromBytes(data), Size: int64(len(data))}
		if err := repo.Push(ctx, d, bytes.NewReader(data)); err != nil {
			t.Fatalf("push artifact: %v", err)
		}
		arts = append(arts, d)
	}
	_, supported, err := repo.referrersAPI(ctx, img.Manifest.Digest, "")
	if err != nil {
		t.Fatal(err)
	}
	list, err := repo.Referrers(ctx, img.Manifest, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 {
		t.Fatalf("referrers = %+v, want the two artifacts", list)
	}
	for _, d := range list {
		if d.Annotations["n"] == "" || d.ArtifactType == "" {
			t.Errorf("referrer %+v lacks the artifact type or annotations", d)
		}
	}
	list, err = repo.Referrers(ctx, img.Manifest, "application/vnd.example.sig")
	if err != nil || len(list) != 1 || list[0].Digest != arts[1].Digest {
		t.Fatalf("referrers of type sig = %+v, %v", list, err)
	}
	if !supported {
		// The referrers tag holds the index the client maintains.
		if _, err := repo.Resolve(ctx, ReferrersTag(img.Manifest.Digest)); err != nil {
			t.Fatalf("referrers tag: %v", err)
		}
	}
	if err := repo.DeleteManifest(ctx, arts[0].Digest); err != nil {
		t.Fatalf("delete artifact: %v", err)
	}
	list, err = repo.Referrers(ctx, img.Manifest, "")
	if err != nil || len(list) != 1 || list[0].Digest != arts[1].Digest {
		t.Fatalf("referrers after a delete = %+v, %v", list, err)
	}
	return supported
}

func TestReferrersDistribution28(t *testing.T) {
	reg := registrytest.Start(t, registrytest.Distribution28(t), "")
	if referrers(t, reg.Host) {
		t.Fatal("distribution 2.8 claims the referrers API")
	}
}

func TestReferrersDistributionV3(t *testing.T) {
	reg := registrytest.Start(t, registrytest.DistributionV3(t), "")
	t.Logf("referrers API supported: %v", referrers(t, reg.Host))
}

// TestIngestResumeAcrossClients: an upload begun by one client is finished
// by another (another process, say) from its location.
func TestIngestResumeAcrossClients(t *testing.T) {
	reg := registrytest.Start(t, registrytest.Distribution28(t), "")
	ctx := context.Background()
	data := bytes.Repeat([]byte("resumable "), 300_000)
	desc := blobDesc(data)
	first, _ := newTestClient(t, WithChunkSize(1<<20)).Repository(reg.Host, "lading/resume")
	w, err := first.Ingest(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	ref := w.Ref()
	if !strings.HasPrefix(ref, "http://"+reg.Host+"/v2/lading/resume/blobs/uploads/") {
		t.Fatalf("ref %q is not the upload location", ref)
	}
	if _, err := w.Write(data[:1_234_567]); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	// The registry moved the upload with each chunk: resume at its latest
	// location.
	ref = w.(*UploadWriter).Location()
	second, _ := newTestClient(t, WithChunkSize(1<<20)).Repository(reg.Host, "lading/resume")
	w2, err := second.Ingest(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	if w2.Offset() != 1_234_567 {
		t.Fatalf("resumed at %d, want 1234567", w2.Offset())
	}
	if _, err := w2.Write(data[1_234_567:]); err != nil {
		t.Fatal(err)
	}
	if _, err := w2.Commit(ctx, desc.Size, desc.Digest); err != nil {
		t.Fatal(err)
	}
	got := readAll(t, func() (io.ReadCloser, error) { return second.Fetch(ctx, desc) })
	if !bytes.Equal(got, data) {
		t.Fatal("content differs")
	}
	// A location of another repository is refused.
	other, _ := newTestClient(t).Repository(reg.Host, "lading/other")
	if _, err := other.Ingest(ctx, ref); !errors.Is(err, errdef.ErrInvalid) {
		t.Fatalf("ingest of another repository's upload: %v", err)
	}
}

// TestCopyBetweenRegistries copies an image from distribution 2.8 to
// distribution v3 through the content roles alone.
func TestCopyBetweenRegistries(t *testing.T) {
	from := registrytest.Start(t, registrytest.Distribution28(t), "")
	to := registrytest.Start(t, registrytest.DistributionV3(t), "")
	ctx := context.Background()
	c := newTestClient(t)
	src, _ := c.Repository(from.Host, "lading/src")
	dst, _ := c.Repository(to.Host, "lading/dst")
	img := newTestImage(t, 3, 30_000)
	img.push(t, src, "v1")
	root, err := src.Resolve(ctx, "v1")
	if err != nil {
		t.Fatal(err)
	}
	if err := copyImage(ctx, src, dst, root); err != nil {
		t.Fatal(err)
	}
	if err := dst.Tag(ctx, root, "copied"); err != nil {
		t.Fatal(err)
	}
	loaded, err := content.LoadImage(ctx, dst, root, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(loaded.RawManifest, img.ManifestData) {
		t.Fatal("manifest differs after the copy")
	}
	for _, l := range img.Layers {
		got := readAll(t, func() (io.ReadCloser, error) { return dst.Fetch(ctx, l) })
		if !bytes.Equal(got, img.Blobs[l.Digest]) {
			t.Fatalf("layer %s differs", l.Digest)
		}
	}
}
