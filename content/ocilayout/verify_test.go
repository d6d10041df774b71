package ocilayout_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/lading-oci/lading/content/contenttest"
	"github.com/lading-oci/lading/content/ocilayout"
	"github.com/lading-oci/lading/errdef"
	"github.com/lading-oci/lading/image"
	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func verify(t *testing.T, s *ocilayout.Store) *ocilayout.VerifyReport {
	t.Helper()
	rep, err := s.Verify(context.Background(), ocilayout.VerifyOptions{})
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	return rep
}

func TestVerifyClean(t *testing.T) {
	s := newLayout(t)
	img := pushImage(t, s, map[string]string{"a": "1"}, map[string]string{"b": "2"})
	tag(t, s, img.manifest, "latest")
	sig, _ := pushArtifact(t, s, img.manifest, "signature")
	tag(t, s, sig, "sig")
	idx := pushJSON(t, s, ocispec.MediaTypeImageIndex, ocispec.Index{
		Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex,
		Manifests: []ocispec.Descriptor{withPlatform(img.manifest, "amd64")},
	})
	tag(t, s, idx, "multi")
	rep := verify(t, s)
	if !rep.OK() {
		t.Fatalf("clean layout has problems:\n%v", rep.Err())
	}
	var n, bytes int64
	s.Blobs(context.Background(), func(d ocispec.Descriptor) error { n++; bytes += d.Size; return nil })
	if rep.Blobs != n || rep.Bytes != bytes || n != 8 {
		t.Fatalf("report counts %d blobs / %d bytes, store has %d / %d (want 8 blobs)", rep.Blobs, rep.Bytes, n, bytes)
	}
	if rep.Documents != 4 { // index, 2 manifests, config (the empty config is not one)
		t.Fatalf("report counts %d documents, want 4", rep.Documents)
	}
}

func withPlatform(d ocispec.Descriptor, arch string) ocispec.Descriptor {
	d.Platform = &ocispec.Platform{OS: "linux", Architecture: arch}
	return d
}

// TestVerifyReportsEverything breaks one layout in several ways at once and
// expects every problem to be reported, each naming its blob and file.
func TestVerifyReportsEverything(t *testing.T) {
	s := newLayout(t)
	ctx := context.Background()
	path := func(d digest.Digest) string {
		p, err := s.BlobPath(d)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}

	// 1. A flipped byte in a layer.
	flipped := pushImage(t, s, map[string]string{"flip": strings.Repeat("f", 1000)})
	tag(t, s, flipped.manifest, "flipped")
	data, _ := os.ReadFile(path(flipped.layers[0].Digest))
	data[len(data)/2] ^= 0x40
	os.WriteFile(path(flipped.layers[0].Digest), data, 0o644)

	// 2. A truncated layer.
	truncated := pushImage(t, s, map[string]string{"trunc": strings.Repeat("t", 1000)})
	tag(t, s, truncated.manifest, "truncated")
	os.Truncate(path(truncated.layers[0].Digest), truncated.layers[0].Size-10)

	// 3. A missing config.
	missing := pushImage(t, s, map[string]string{"miss": "m"})
	tag(t, s, missing.manifest, "missing")
	os.Remove(path(missing.config.Digest))

	// 4. A config listing two diff_ids for a manifest with one layer.
	layerData, diffID := gzipTar(t, map[string]string{"d": "d"})
	layer := contenttest.Describe(ocispec.MediaTypeImageLayerGzip, layerData)
	contenttest.Push(t, s, layer, layerData)
	cfg := pushJSON(t, s, ocispec.MediaTypeImageConfig, ocispec.Image{
		Platform: ocispec.Platform{OS: "linux", Architecture: "amd64"},
		RootFS:   ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{diffID, diffID}},
	})
	diffIDs := pushJSON(t, s, ocispec.MediaTypeImageManifest, ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest,
		Config: cfg, Layers: []ocispec.Descriptor{layer},
	})
	tag(t, s, diffIDs, "diffids")

	// 5. An invalid manifest (schemaVersion 3, a layer without a digest).
	invalidData := []byte(`{"schemaVersion":3,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":` +
		string(mustJSON(t, flipped.config)) + `,"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","size":1}]}`)
	invalid := contenttest.Describe(ocispec.MediaTypeImageManifest, invalidData)
	contenttest.Push(t, s, invalid, invalidData)
	tag(t, s, invalid, "invalid")

	// 5b. A Docker image whose config lists no diff_ids for one layer.
	dockerLayer, _ := gzipTar(t, map[string]string{"docker": "d"})
	dl := contenttest.Describe(image.MediaTypeDockerLayer, dockerLayer)
	contenttest.Push(t, s, dl, dockerLayer)
	dcfg := pushJSON(t, s, image.MediaTypeDockerConfig, ocispec.Image{
		Platform: ocispec.Platform{OS: "linux", Architecture: "amd64"},
		RootFS:   ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{}},
	})
	docker := pushJSON(t, s, image.MediaTypeDockerManifest, ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: image.MediaTypeDockerManifest,
		Config: dcfg, Layers: []ocispec.Descriptor{dl},
	})
	tag(t, s, docker, "docker")

	// 6. A blob whose name does not match, untagged.
	stray, strayDesc := contenttest.Blob(t, 100)
	contenttest.Push(t, s, strayDesc, stray)
	os.WriteFile(path(strayDesc.Digest), []byte("not the content"), 0o644)

	rep := verify(t, s)
	t.Logf("report:\n%v", rep.Err())
	want := []struct {
		what   string
		digest digest.Digest
		parent string
		target error
	}{
		{"flipped layer", flipped.layers[0].Digest, "", errdef.ErrDigestMismatch},
		{"truncated layer content", truncated.layers[0].Digest, "", errdef.ErrDigestMismatch},
		{"truncated layer size", truncated.layers[0].Digest, truncated.manifest.Digest.String(), errdef.ErrSizeMismatch},
		{"missing config", missing.config.Digest, missing.manifest.Digest.String(), errdef.ErrNotFound},
		{"diff_ids count", diffIDs.Digest, "", errdef.ErrInvalid},
		{"invalid manifest", invalid.Digest, "", errdef.ErrInvalid},
		{"docker diff_ids count", docker.Digest, "", errdef.ErrInvalid},
		{"stray blob", strayDesc.Digest, "", errdef.ErrDigestMismatch},
	}
	for _, w := range want {
		found := false
		for _, p := range rep.Problems {
			if p.Digest == w.digest && p.Path == path(w.digest) && p.Parent == w.parent && errors.Is(p.Err, w.target) {
				found = true
			}
		}
		if !found {
			t.Errorf("%s: no problem for %s (parent %q) matching %v", w.what, w.digest, w.parent, w.target)
		}
	}
	if len(rep.Problems) != len(want) {
		t.Errorf("got %d problems, want %d", len(rep.Problems), len(want))
	}
	if err := rep.Err(); !errors.Is(err, errdef.ErrDigestMismatch) || !errors.Is(err, errdef.ErrNotFound) {
		t.Errorf("report error does not match the problems' categories: %v", err)
	}
	_ = ctx
}

func TestVerifyLayoutFiles(t *testing.T) {
	s := newLayout(t)
	os.WriteFile(s.Dir()+"/oci-layout", []byte(`{"imageLayoutVersion":"1.1.0"}`), 0o644)
	os.WriteFile(s.Dir()+"/index.json", []byte(`{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","size":-5,"digest":"sha256:`+strings.Repeat("0", 64)+`"}]}`), 0o644)
	rep := verify(t, s)
	var layout, index bool
	for _, p := range rep.Problems {
		layout = layout || p.Path == s.Dir()+"/oci-layout" && errors.Is(p.Err, errdef.ErrInvalid)
		index = index || p.Path == s.Dir()+"/index.json" && errors.Is(p.Err, errdef.ErrInvalid)
	}
	if !layout || !index {
		t.Fatalf("oci-layout reported %v, index.json reported %v:\n%v", layout, index, rep.Err())
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	return []byte(mustMarshal(t, v))
}
