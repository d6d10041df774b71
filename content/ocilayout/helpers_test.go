package ocilayout_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/lading-oci/lading/content/contenttest"
	"github.com/lading-oci/lading/content/ocilayout"
	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// newLayout creates a layout in a fresh temporary directory.
func newLayout(t testing.TB, opts ...ocilayout.Option) *ocilayout.Store {
	t.Helper()
	s, err := ocilayout.Init(context.Background(), filepath.Join(t.TempDir(), "layout"), opts...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// pushJSON marshals v, pushes it with media type mt and returns its descriptor.
func pushJSON(t testing.TB, s *ocilayout.Store, mt string, v any) ocispec.Descriptor {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	desc := contenttest.Describe(mt, data)
	contenttest.Push(t, s, desc, data)
	return desc
}

// gzipTar returns a gzip-compressed tar holding the given files.
func gzipTar(t testing.TB, files map[string]string) (compressed []byte, diffID digest.Digest) {
	t.Helper()
	var raw bytes.Buffer
	tw := tar.NewWriter(&raw)
	for name, body := range files {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	if _, err := zw.Write(raw.Bytes()); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return gz.Bytes(), digest.FromBytes(raw.Bytes())
}

// testImage is an image pushed by pushImage.
type testImage struct {
	manifest ocispec.Descriptor
	config   ocispec.Descriptor
	layers   []ocispec.Descriptor
}

// pushImage pushes a runnable-shaped linux/amd64 image with the given
// layers (each a map of file names to contents) and returns its parts.
func pushImage(t testing.TB, s *ocilayout.Store, layers ...map[string]string) testImage {
	t.Helper()
	var img testImage
	cfg := ocispec.Image{
		Platform: ocispec.Platform{Architecture: "amd64", OS: "linux"},
		Config:   ocispec.ImageConfig{Cmd: []string{"/bin/true"}},
		RootFS:   ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{}},
	}
	for _, files := range layers {
		data, diffID := gzipTar(t, files)
		d := contenttest.Describe(ocispec.MediaTypeImageLayerGzip, data)
		contenttest.Push(t, s, d, data)
		img.layers = append(img.layers, d)
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, diffID)
	}
	img.config = pushJSON(t, s, ocispec.MediaTypeImageConfig, cfg)
	m := ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    img.config,
		Layers:    append([]ocispec.Descriptor{}, img.layers...),
	}
	img.manifest = pushJSON(t, s, ocispec.MediaTypeImageManifest, m)
	return img
}

// pushArtifact pushes an artifact manifest whose subject is subject, with one
// small blob as its layer.
func pushArtifact(t testing.TB, s *ocilayout.Store, subject ocispec.Descriptor, payload string) (manifest, blob ocispec.Descriptor) {
	t.Helper()
	empty := []byte("{}")
	contenttest.Push(t, s, contenttest.Describe(ocispec.MediaTypeEmptyJSON, empty), empty)
	blob = contenttest.Describe("application/vnd.example.sig", []byte(payload))
	contenttest.Push(t, s, blob, []byte(payload))
	m := ocispec.Manifest{
		Versioned:    specs.Versioned{SchemaVersion: 2},
		MediaType:    ocispec.MediaTypeImageManifest,
		ArtifactType: "application/vnd.example.sig",
		Config:       ocispec.DescriptorEmptyJSON,
		Layers:       []ocispec.Descriptor{blob},
		Subject:      &subject,
	}
	return pushJSON(t, s, ocispec.MediaTypeImageManifest, m), blob
}

func tag(t testing.TB, s *ocilayout.Store, d ocispec.Descriptor, name string) {
	t.Helper()
	if err := s.Tag(context.Background(), d, name); err != nil {
		t.Fatalf("tag %q: %v", name, err)
	}
}

// blobFiles lists the files under dir/blobs.
func blobFiles(t testing.TB, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(filepath.Join(dir, "blobs"), func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			out = append(out, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func mustMarshal(t testing.TB, v any) string {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// pushJSONBytes pushes data as an octet-stream blob.
func pushJSONBytes(t testing.TB, s *ocilayout.Store, data []byte) {
	t.Helper()
	contenttest.Push(t, s, contenttest.Describe("application/octet-stream", data), data)
}

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }
