package dockerarchive_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"sort"
	"testing"

	"github.com/lading-oci/lading/content"
	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// testImage is a small image held in memory.
type testImage struct {
	manifest ocispec.Descriptor
	config   ocispec.Descriptor
	layers   []ocispec.Descriptor
	blobs    map[digest.Digest][]byte
}

func describe(mt string, data []byte) ocispec.Descriptor {
	return ocispec.Descriptor{MediaType: mt, Digest: digest.FromBytes(data), Size: int64(len(data))}
}

// tarOf returns a tar holding files, in name order.
func tarOf(t testing.TB, files map[string]string) []byte {
	t.Helper()
	var names []string
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
		tw.Write([]byte(files[n]))
	}
	tw.Close()
	return buf.Bytes()
}

func gzipped(data []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(data)
	zw.Close()
	return buf.Bytes()
}

// makeImage builds an OCI image with one gzip layer per file set.
func makeImage(t testing.TB, layers ...map[string]string) testImage {
	t.Helper()
	img := testImage{blobs: map[digest.Digest][]byte{}}
	cfg := ocispec.Image{Platform: ocispec.Platform{OS: "linux", Architecture: "amd64"}, RootFS: ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{}}}
	for _, files := range layers {
		raw := tarOf(t, files)
		gz := gzipped(raw)
		d := describe(ocispec.MediaTypeImageLayerGzip, gz)
		img.blobs[d.Digest] = gz
		img.layers = append(img.layers, d)
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, digest.FromBytes(raw))
	}
	cfgData, _ := json.Marshal(cfg)
	img.config = describe(ocispec.MediaTypeImageConfig, cfgData)
	img.blobs[img.config.Digest] = cfgData
	m := ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest, Config: img.config, Layers: img.layers}
	if img.layers == nil {
		m.Layers = []ocispec.Descriptor{}
	}
	mData, _ := json.Marshal(m)
	img.manifest = describe(ocispec.MediaTypeImageManifest, mData)
	img.blobs[img.manifest.Digest] = mData
	return img
}

// push writes every blob of img to s, children first.
func (img testImage) push(t testing.TB, s content.Pusher) {
	t.Helper()
	ctx := context.Background()
	for _, d := range append(append(append([]ocispec.Descriptor(nil), img.layers...), img.config), img.manifest) {
		if err := s.Push(ctx, d, bytes.NewReader(img.blobs[d.Digest])); err != nil {
			t.Fatalf("push %s: %v", d.Digest, err)
		}
	}
}

// tool returns the path of an external program, skipping the test if it is
// not installed.
func tool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s is not installed (on PATH); skipping the interoperability test", name)
	}
	return p
}

func run(t *testing.T, name string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return out
}

// rawLayers returns the uncompressed tars of img's layers, by diff_id.
func (img testImage) raw(t testing.TB, i int) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(img.blobs[img.layers[i].Digest]))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	buf.ReadFrom(zr)
	return buf.Bytes()
}
