package contenttest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
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

// Archive is an archive writer: a Storage that tags, finished by Close or
// given up by Abort.
type Archive interface {
	content.Storage
	content.Tagger
	Close() error
	Abort() error
}

// CopyImage copies the image md, with everything it references, from src
// into w, tags it and closes w; on a failure it aborts w.
func CopyImage(t testing.TB, src content.Fetcher, md ocispec.Descriptor, w Archive, tag string) {
	t.Helper()
	ctx := context.Background()
	err := content.WalkGraph(ctx, src, []ocispec.Descriptor{md}, func(ctx context.Context, d ocispec.Descriptor) error {
		return content.Copy(ctx, src, w, d)
	})
	if err == nil {
		err = w.Tag(ctx, md, tag)
	}
	if err != nil {
		w.Abort()
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

// Member is one entry of a hand-made tar: a regular file holding Body unless
// Typ says otherwise (Link is a link's target).
type Member struct {
	Name, Body, Link string
	Typ              byte
}

// TarMembers returns a tar of members, each with mode 0644, as they are:
// hostile names and links included.
func TarMembers(t testing.TB, members ...Member) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, m := range members {
		typ := m.Typ
		if typ == 0 {
			typ = tar.TypeReg
		}
		hdr := &tar.Header{Name: m.Name, Typeflag: typ, Linkname: m.Link, Mode: 0o644}
		if typ == tar.TypeReg {
			hdr.Size = int64(len(m.Body))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(m.Body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// ReadLayers reads every layer of the image md from f to its end.
func ReadLayers(t testing.TB, f content.Fetcher, md ocispec.Descriptor) {
	t.Helper()
	ctx := context.Background()
	li, err := content.LoadImage(ctx, f, md, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range li.Manifest.Layers {
		rc, err := f.Fetch(ctx, l)
		if err != nil {
			t.Fatal(err)
		}
		_, err = io.Copy(io.Discard, rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
}
