package dockerarchive_test

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lading-oci/lading/content"
	"github.com/lading-oci/lading/content/contenttest"
	"github.com/lading-oci/lading/content/dockerarchive"
	"github.com/lading-oci/lading/errdef"
	"github.com/lading-oci/lading/image"
	"github.com/lading-oci/lading/ref"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func create(t *testing.T) (*dockerarchive.Writer, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "img.tar")
	w, err := dockerarchive.Create(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Abort() })
	return w, path
}

func open(t *testing.T, path string) *dockerarchive.Reader {
	t.Helper()
	r, err := dockerarchive.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func tags(t *testing.T, s content.TagLister) string {
	t.Helper()
	return strings.Join(contenttest.Tags(t, s), ",")
}

func mustRef(t *testing.T, s string) ref.Reference {
	t.Helper()
	r, err := ref.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// loadAndCheck loads the image desc names from r, checks that its layers
// are the uncompressed tars of src and returns the loaded image.
func loadAndCheck(t *testing.T, r *dockerarchive.Reader, desc ocispec.Descriptor, src contenttest.Image) *content.LoadedImage {
	t.Helper()
	ctx := context.Background()
	li, err := content.LoadImage(ctx, r, desc, nil)
	if err != nil {
		t.Fatalf("load %s: %v", desc.Digest, err)
	}
	if li.Desc.MediaType != image.MediaTypeDockerManifest || li.Manifest.Config.MediaType != image.MediaTypeDockerConfig {
		t.Fatalf("manifest %s / config %s", li.Desc.MediaType, li.Manifest.Config.MediaType)
	}
	if err := image.Validate(image.MediaTypeDockerManifest, li.RawManifest); err != nil {
		t.Fatalf("synthesised manifest: %v", err)
	}
	if li.Manifest.Config.Digest != src.Config.Digest {
		t.Fatalf("config %s, want %s", li.Manifest.Config.Digest, src.Config.Digest)
	}
	for i, l := range li.Manifest.Layers {
		if l.MediaType != image.MediaTypeDockerLayerUncompressed || l.Digest != li.ConfigFile.RootFS.DiffIDs[i] {
			t.Fatalf("layer %d: %+v", i, l)
		}
		data, err := content.ReadAll(ctx, r, l, 1<<20)
		if err != nil || !bytes.Equal(data, src.Raw[i]) {
			t.Fatalf("layer %d: %v", i, err)
		}
	}
	return li
}

func TestWriteThenRead(t *testing.T) {
	ctx := context.Background()
	shared := map[string]string{"etc/os-release": "ID=test\n"}
	one := contenttest.MakeImage(t, shared, map[string]string{"bin/one": strings.Repeat("1", 3000)})
	two := contenttest.MakeImage(t, shared, map[string]string{"bin/two": "2"})
	w, path := create(t)
	one.Push(t, w)
	two.Push(t, w)
	if err := w.Tag(ctx, one.Manifest, "busybox:1"); err != nil {
		t.Fatal(err)
	}
	if err := w.AddImage(ctx, two.Manifest, "example.com/app:v2", "docker.io/library/busybox:latest"); err != nil {
		t.Fatal(err)
	}
	if err := w.Tag(ctx, one.Manifest, "busybox:latest"); err != nil { // moves from two
		t.Fatal(err)
	}
	if got := tags(t, w); got != "docker.io/library/busybox:1,docker.io/library/busybox:latest,example.com/app:v2" {
		t.Fatalf("writer tags %s", got)
	}
	if d, err := w.Resolve(ctx, "busybox:latest"); err != nil || d.Digest != one.Manifest.Digest {
		t.Fatalf("writer resolve: %v %v", d.Digest, err)
	}
	// A layer pushed compressed is held decompressed, under its diff_id.
	if _, err := w.Fetch(ctx, one.Layers[0]); !errors.Is(err, errdef.ErrNotFound) {
		t.Fatalf("fetch of a compressed layer from the writer: %v", err)
	}
	diffID := digest.FromBytes(one.Raw[0])
	if rc, err := w.Fetch(ctx, ocispec.Descriptor{Digest: diffID}); err != nil {
		t.Fatal(err)
	} else {
		rc.Close()
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}

	r := open(t, path)
	if got := tags(t, r); got != "docker.io/library/busybox:1,docker.io/library/busybox:latest,example.com/app:v2" {
		t.Fatalf("reader tags %s", got)
	}
	items := r.Items()
	if len(items) != 2 || strings.Join(items[0].RepoTags, ",") != "busybox:1,busybox:latest" || strings.Join(items[1].RepoTags, ",") != "example.com/app:v2" {
		t.Fatalf("manifest.json items %+v", items)
	}
	if items[0].Layers[0] != items[1].Layers[0] || items[0].Layers[0] != diffID.Encoded()+".tar" {
		t.Fatalf("shared layer stored as %q and %q", items[0].Layers[0], items[1].Layers[0])
	}
	d1, err := r.Select(ctx, mustRef(t, "docker-archive:"+path+":busybox:latest"))
	if err != nil {
		t.Fatal(err)
	}
	loadAndCheck(t, r, d1, one)
	if d1.Platform == nil || d1.Platform.OS != "linux" {
		t.Fatalf("platform %+v", d1.Platform)
	}
	d2, err := r.Select(ctx, mustRef(t, "docker-archive:"+path+":@1"))
	if err != nil {
		t.Fatal(err)
	}
	loadAndCheck(t, r, d2, two)
	if d, err := r.Resolve(ctx, "example.com/app:v2"); err != nil || d.Digest != d2.Digest {
		t.Fatalf("resolve by name: %v %v", d.Digest, err)
	}
	if d, err := r.Resolve(ctx, d2.Digest.String()); err != nil || d.Digest != d2.Digest {
		t.Fatalf("resolve by digest: %v %v", d.Digest, err)
	}
	if _, err := r.Select(ctx, mustRef(t, "docker-archive:"+path)); !errors.Is(err, errdef.ErrInvalid) {
		t.Fatalf("select without a name in a two-image archive: %v", err)
	}
	for _, s := range []string{"busybox:2", "@2", "sha256:" + strings.Repeat("0", 64)} {
		if _, err := r.Resolve(ctx, s); !errors.Is(err, errdef.ErrNotFound) {
			t.Errorf("resolve %s: %v", s, err)
		}
	}
	// The manifest is the same every time the archive is read.
	r2 := open(t, path)
	if d, _ := r2.Image(ctx, 0); d.Digest != d1.Digest {
		t.Fatalf("manifest digest changed between readings: %s, %s", d.Digest, d1.Digest)
	}
	// The repositories file names the top layers, as docker save writes it.
	var repos map[string]map[string]string
	extract(t, path, "repositories", &repos)
	if repos["busybox"]["latest"] != digest.FromBytes(one.Raw[1]).Encoded() || repos["example.com/app"]["v2"] == "" {
		t.Fatalf("repositories %v", repos)
	}
}

// extract decodes a JSON member of a tar file.
func extract(t *testing.T, path, name string, v any) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err != nil {
			t.Fatalf("%s: no member %s: %v", path, name, err)
		}
		if h.Name == name {
			if err := json.NewDecoder(tr).Decode(v); err != nil {
				t.Fatal(err)
			}
			return
		}
	}
}

func TestWriterRefusals(t *testing.T) {
	ctx := context.Background()
	img := contenttest.MakeImage(t, map[string]string{"a": "a"})
	w, path := create(t)
	// A layer whose bytes do not match its digest leaves nothing.
	bad := img.Layers[0]
	bad.Digest = digest.FromString("x")
	if err := w.Push(ctx, bad, bytes.NewReader(img.Blobs[img.Layers[0].Digest])); !errors.Is(err, errdef.ErrDigestMismatch) {
		t.Fatalf("bad layer digest: %v", err)
	}
	raw := img.Raw[0]
	badRaw := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayer, Digest: digest.FromString("y"), Size: int64(len(raw))}
	if err := w.Push(ctx, badRaw, bytes.NewReader(raw)); !errors.Is(err, errdef.ErrDigestMismatch) {
		t.Fatalf("bad uncompressed layer digest: %v", err)
	}
	if err := w.Push(ctx, ocispec.Descriptor{MediaType: "application/vnd.example+json", Digest: digest.FromString("{}"), Size: 2}, strings.NewReader("{}")); !errors.Is(err, errdef.ErrUnsupported) {
		t.Fatalf("artifact blob: %v", err)
	}
	// A manifest whose layer is missing, or is not what the config says.
	w.Push(ctx, img.Config, bytes.NewReader(img.Blobs[img.Config.Digest]))
	w.Push(ctx, img.Manifest, bytes.NewReader(img.Blobs[img.Manifest.Digest]))
	if err := w.Tag(ctx, img.Manifest, "a:1"); !errors.Is(err, errdef.ErrNotFound) {
		t.Fatalf("tag with a missing layer: %v", err)
	}
	other := contenttest.MakeImage(t, map[string]string{"b": "b"})
	w.Push(ctx, other.Layers[0], bytes.NewReader(other.Blobs[other.Layers[0].Digest]))
	liar := img
	var m ocispec.Manifest
	json.Unmarshal(img.Blobs[img.Manifest.Digest], &m)
	m.Layers = other.Layers
	mData, _ := json.Marshal(m)
	liar.Manifest = contenttest.Describe(ocispec.MediaTypeImageManifest, mData)
	w.Push(ctx, liar.Manifest, bytes.NewReader(mData))
	err := w.Tag(ctx, liar.Manifest, "a:1")
	if !errors.Is(err, errdef.ErrDigestMismatch) || !strings.Contains(err.Error(), "layer 0") {
		t.Fatalf("tag with a layer the config does not name: %v", err)
	}
	if err := w.Tag(ctx, img.Manifest, "a@sha256:"+strings.Repeat("0", 64)); !errors.Is(err, errdef.ErrInvalid) {
		t.Fatalf("digest as a tag: %v", err)
	}
	idx := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageIndex, Digest: digest.FromString("i"), Size: 1}
	if err := w.Tag(ctx, idx, "a:1"); !errors.Is(err, errdef.ErrUnsupported) {
		t.Fatalf("index: %v", err)
	}
	if err := w.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	// An archive with no images is still a valid one.
	r := open(t, path)
	if len(r.Items()) != 0 {
		t.Fatalf("items %+v", r.Items())
	}
}

func TestUncompressedLayersAndSHA512(t *testing.T) {
	ctx := context.Background()
	src := contenttest.MakeImage(t, map[string]string{"a": "a"})
	raw := src.Raw[0]
	rawDesc := contenttest.Describe(ocispec.MediaTypeImageLayer, raw)
	sha512Desc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayer, Digest: digest.SHA512.FromBytes(raw), Size: int64(len(raw))}
	w, path := create(t)
	for _, d := range []ocispec.Descriptor{rawDesc, sha512Desc, src.Layers[0]} {
		if err := w.Push(ctx, d, bytes.NewReader(raw)); err != nil && d.Digest != src.Layers[0].Digest {
			t.Fatalf("push %s: %v", d.Digest, err)
		}
	}
	w.Push(ctx, src.Layers[0], bytes.NewReader(src.Blobs[src.Layers[0].Digest]))
	for _, d := range []ocispec.Descriptor{rawDesc, sha512Desc, src.Layers[0]} {
		if ok, _ := w.Exists(ctx, d); !ok {
			t.Fatalf("%s does not exist", d.Digest)
		}
	}
	src.Push(t, w)
	w.Tag(ctx, src.Manifest, "x:1")
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	r := open(t, path)
	if len(r.Items()[0].Layers) != 1 {
		t.Fatal("layers")
	}
	d, _ := r.Image(ctx, 0)
	loadAndCheck(t, r, d, src)
}

func TestReaderIsReadOnly(t *testing.T) {
	ctx := context.Background()
	img := contenttest.MakeImage(t, map[string]string{"a": "a"})
	w, path := create(t)
	img.Push(t, w)
	w.Tag(ctx, img.Manifest, "a:1")
	w.Close()
	r := open(t, path)
	if err := r.Push(ctx, img.Config, bytes.NewReader(img.Blobs[img.Config.Digest])); !errors.Is(err, errdef.ErrUnsupported) {
		t.Fatalf("push: %v", err)
	}
	if err := r.Tag(ctx, img.Manifest, "a:2"); !errors.Is(err, errdef.ErrUnsupported) {
		t.Fatalf("tag: %v", err)
	}
}
