package contenttest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"sort"
	"testing"

	"github.com/lading-oci/lading/content"
	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Image is a small OCI image built in memory for tests.
type Image struct {
	Manifest ocispec.Descriptor
	Config   ocispec.Descriptor
	Layers   []ocispec.Descriptor
	// Blobs holds every blob by digest; Raw the uncompressed tar of each
	// layer, in order.
	Blobs map[digest.Digest][]byte
	Raw   [][]byte
}

// TarOf returns a tar holding files (regular, mode 0644), in name order.
func TarOf(t testing.TB, files map[string]string) []byte {
	t.Helper()
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, n := range names {
		if err := tw.WriteHeader(&tar.Header{Name: n, Mode: 0o644, Size: int64(len(files[n])), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(files[n])); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// Gzipped compresses data with gzip.
func Gzipped(data []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(data)
	zw.Close()
	return buf.Bytes()
}

// MakeImage builds an OCI image (linux/amd64) with one gzip layer per file
// set.
func MakeImage(t testing.TB, layers ...map[string]string) Image {
	t.Helper()
	img := Image{Blobs: map[digest.Digest][]byte{}}
	cfg := ocispec.Image{Platform: ocispec.Platform{OS: "linux", Architecture: "amd64"}, RootFS: ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{}}}
	for _, files := range layers {
		raw := TarOf(t, files)
		gz := Gzipped(raw)
		d := Describe(ocispec.MediaTypeImageLayerGzip, gz)
		img.Blobs[d.Digest] = gz
		img.Layers = append(img.Layers, d)
		img.Raw = append(img.Raw, raw)
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, digest.FromBytes(raw))
	}
	cfgData, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	img.Config = Describe(ocispec.MediaTypeImageConfig, cfgData)
	img.Blobs[img.Config.Digest] = cfgData
	m := ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest, Config: img.Config, Layers: img.Layers}
	if img.Layers == nil {
		m.Layers = []ocispec.Descriptor{}
	}
	mData, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	img.Manifest = Describe(ocispec.MediaTypeImageManifest, mData)
	img.Blobs[img.Manifest.Digest] = mData
	return img
}

// Push writes every blob of img to s, children first.
func (img Image) Push(t testing.TB, s content.Pusher) {
	t.Helper()
	ctx := context.Background()
	for _, d := range append(append(append([]ocispec.Descriptor(nil), img.Layers...), img.Config), img.Manifest) {
		if err := s.Push(ctx, d, bytes.NewReader(img.Blobs[d.Digest])); err != nil {
			t.Fatalf("push %s: %v", d.Digest, err)
		}
	}
}

// PushManifest writes to s a linux/amd64 config with diffIDs and a manifest
// of the layers (already in s), tags the manifest and returns it.
func PushManifest(t testing.TB, s interface {
	content.Pusher
	content.Tagger
}, layers []ocispec.Descriptor, diffIDs []digest.Digest, tag string) ocispec.Descriptor {
	t.Helper()
	cfg := ocispec.Image{Platform: ocispec.Platform{OS: "linux", Architecture: "amd64"}, RootFS: ocispec.RootFS{Type: "layers", DiffIDs: diffIDs}}
	cfgData, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cd := Describe(ocispec.MediaTypeImageConfig, cfgData)
	Push(t, s, cd, cfgData)
	m, err := json.Marshal(ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest, Config: cd, Layers: layers})
	if err != nil {
		t.Fatal(err)
	}
	md := Describe(ocispec.MediaTypeImageManifest, m)
	Push(t, s, md, m)
	if err := s.Tag(context.Background(), md, tag); err != nil {
		t.Fatal(err)
	}
	return md
}
