//lint:file-ignore SA1019 the deprecated non-distributable layer types are still converted

package image_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lading-oci/lading/errdef"
	"github.com/lading-oci/lading/image"
	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func desc(mt, content string) ocispec.Descriptor {
	return ocispec.Descriptor{MediaType: mt, Digest: digest.FromString(content), Size: int64(len(content))}
}

func ociManifest(t testing.TB, layers []ocispec.Descriptor, edit func(*ocispec.Manifest)) []byte {
	t.Helper()
	m := ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest,
		Config: desc(ocispec.MediaTypeImageConfig, "config"), Layers: layers}
	if edit != nil {
		edit(&m)
	}
	data, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func convert(t *testing.T, mt string, data []byte, to image.Format, opts image.ConvertOptions) *image.Converted {
	t.Helper()
	c, err := image.Convert(mt, data, to, opts)
	if err != nil {
		t.Fatalf("convert %s to %s: %v", mt, to, err)
	}
	if err := image.Validate(c.Descriptor.MediaType, c.Data); err != nil {
		t.Fatalf("converted document is invalid: %v", err)
	}
	if c.Descriptor.Digest != digest.FromBytes(c.Data) || c.Descriptor.Size != int64(len(c.Data)) {
		t.Fatalf("descriptor %+v does not describe the data", c.Descriptor)
	}
	return c
}

func TestConvertManifestRoundTrip(t *testing.T) {
	layers := []ocispec.Descriptor{
		desc(ocispec.MediaTypeImageLayerGzip, "gz"),
		desc(ocispec.MediaTypeImageLayer, "tar"),
		desc(ocispec.MediaTypeImageLayerNonDistributableGzip, "foreign-gz"),
	}
	layers[2].URLs = []string{"https://example.com/layer"}
	src := ociManifest(t, layers, nil)
	d := convert(t, ocispec.MediaTypeImageManifest, src, image.FormatDocker, image.ConvertOptions{})
	if d.Descriptor.MediaType != image.MediaTypeDockerManifest || !d.Changed || len(d.Warnings) != 0 {
		t.Fatalf("to docker: %+v", d)
	}
	dm, err := image.DecodeManifest(d.Data)
	if err != nil {
		t.Fatal(err)
	}
	wantTypes := []string{image.MediaTypeDockerLayer, image.MediaTypeDockerLayerUncompressed, image.MediaTypeDockerForeignLayer}
	for i, l := range dm.Layers {
		if l.MediaType != wantTypes[i] || l.Digest != layers[i].Digest || l.Size != layers[i].Size {
			t.Errorf("layer %d: %+v", i, l)
		}
	}
	if dm.Config.MediaType != image.MediaTypeDockerConfig || dm.Config.Digest != digest.FromString("config") {
		t.Errorf("config %+v", dm.Config)
	}
	if len(dm.Layers[2].URLs) != 1 {
		t.Errorf("foreign layer lost its URLs")
	}
	// Docker orders descriptor fields mediaType, size, digest.
	if !bytes.Contains(d.Data, []byte(`"config":{"mediaType":"application/vnd.docker.container.image.v1+json","size":6,"digest":"sha256:`)) {
		t.Errorf("docker field order: %s", d.Data)
	}
	back := convert(t, image.MediaTypeDockerManifest, d.Data, image.FormatOCI, image.ConvertOptions{})
	if !bytes.Equal(back.Data, src) {
		t.Fatalf("round trip differs:\n%s\n%s", back.Data, src)
	}
	// A document already in the target format comes back as it is.
	same := convert(t, ocispec.MediaTypeImageManifest, src, image.FormatOCI, image.ConvertOptions{})
	if same.Changed || !bytes.Equal(same.Data, src) {
		t.Fatal("conversion to the same format changed the document")
	}
	// The media type may be left to the document.
	if c := convert(t, "", src, image.FormatDocker, image.ConvertOptions{}); c.Descriptor.Digest != d.Descriptor.Digest {
		t.Fatal("sniffed conversion differs")
	}
}

func TestConvertDockerZstd(t *testing.T) {
	src := ociManifest(t, []ocispec.Descriptor{desc(image.MediaTypeDockerLayerZstd, "z")}, func(m *ocispec.Manifest) {
		m.MediaType = image.MediaTypeDockerManifest
		m.Config.MediaType = image.MediaTypeDockerConfig
	})
	c := convert(t, image.MediaTypeDockerManifest, src, image.FormatOCI, image.ConvertOptions{})
	m, _ := image.DecodeManifest(c.Data)
	if m.Layers[0].MediaType != ocispec.MediaTypeImageLayerZstd {
		t.Fatalf("docker zstd became %s", m.Layers[0].MediaType)
	}
}

func TestConvertDropsOrRefuses(t *testing.T) {
	subject := desc(ocispec.MediaTypeImageManifest, "subject")
	layer := desc(ocispec.MediaTypeImageLayerGzip, "gz")
	layer.Annotations = map[string]string{"org.example.layer": "x"}
	src := ociManifest(t, []ocispec.Descriptor{layer}, func(m *ocispec.Manifest) {
		m.Annotations = map[string]string{"org.opencontainers.image.created": "2024-01-01T00:00:00Z", "org.example": "y"}
		m.Subject = &subject
	})
	c := convert(t, ocispec.MediaTypeImageManifest, src, image.FormatDocker, image.ConvertOptions{})
	warn := strings.Join(c.Warnings, "\n")
	for _, want := range []string{"manifest.annotations", "org.example, org.opencontainers.image.created", "manifest.subject", "manifest.layers[0].annotations"} {
		if !strings.Contains(warn, want) {
			t.Errorf("warnings lack %q:\n%s", want, warn)
		}
	}
	_, err := image.Convert(ocispec.MediaTypeImageManifest, src, image.FormatDocker, image.ConvertOptions{Strict: true})
	if !errors.Is(err, errdef.ErrUnsupported) || !strings.Contains(err.Error(), "manifest.annotations") {
		t.Fatalf("strict: %v", err)
	}

	foreign := desc(ocispec.MediaTypeImageLayerNonDistributable, "f")
	if _, err := image.Convert(ocispec.MediaTypeImageManifest, ociManifest(t, []ocispec.Descriptor{foreign}, nil), image.FormatDocker, image.ConvertOptions{}); !errors.Is(err, errdef.ErrUnsupported) || !strings.Contains(err.Error(), "layers[0]") {
		t.Fatalf("uncompressed non-distributable: %v", err)
	}
	zstd := desc(ocispec.MediaTypeImageLayerZstd, "z")
	_, err = image.Convert(ocispec.MediaTypeImageManifest, ociManifest(t, []ocispec.Descriptor{layer, zstd}, nil), image.FormatDocker, image.ConvertOptions{})
	if !errors.Is(err, errdef.ErrUnsupported) || !strings.Contains(err.Error(), "layers[1]") || !strings.Contains(err.Error(), zstd.Digest.String()) {
		t.Fatalf("zstd: %v", err)
	}
	artifact := ociManifest(t, []ocispec.Descriptor{desc("application/vnd.example.data", "d")}, func(m *ocispec.Manifest) {
		m.Config = desc("application/vnd.example.config+json", "{}")
	})
	if _, err := image.Convert(ocispec.MediaTypeImageManifest, artifact, image.FormatDocker, image.ConvertOptions{}); !errors.Is(err, errdef.ErrUnsupported) || !strings.Contains(err.Error(), "artifact") {
		t.Fatalf("artifact: %v", err)
	}
	if _, err := image.Convert(ocispec.MediaTypeImageManifest, []byte(`{"schemaVersion":2}`), image.FormatDocker, image.ConvertOptions{}); !errors.Is(err, errdef.ErrInvalid) {
		t.Fatalf("invalid input: %v", err)
	}
	if _, err := image.Convert(ocispec.MediaTypeImageConfig, []byte(`{}`), image.FormatDocker, image.ConvertOptions{}); !errors.Is(err, errdef.ErrUnsupported) {
		t.Fatalf("config: %v", err)
	}
	if _, err := image.Convert(image.MediaTypeDockerSchema1, []byte(`{}`), image.FormatOCI, image.ConvertOptions{}); !errors.Is(err, errdef.ErrUnsupported) {
		t.Fatalf("schema 1: %v", err)
	}
}

func index(t testing.TB, mt string, entries []ocispec.Descriptor, edit func(*ocispec.Index)) []byte {
	t.Helper()
	idx := ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: mt, Manifests: entries}
	if edit != nil {
		edit(&idx)
	}
	data, err := json.Marshal(idx)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestConvertIndex(t *testing.T) {
	amd := &ocispec.Platform{OS: "linux", Architecture: "amd64"}
	arm := &ocispec.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}
	// Two OCI image manifests, as children stored somewhere.
	children := map[digest.Digest][]byte{}
	var entries []ocispec.Descriptor
	for i, p := range []*ocispec.Platform{amd, arm} {
		m := ociManifest(t, []ocispec.Descriptor{desc(ocispec.MediaTypeImageLayerGzip, string(rune('a'+i)))}, nil)
		d := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromBytes(m), Size: int64(len(m)), Platform: p}
		children[d.Digest] = m
		entries = append(entries, d)
	}
	entries[1].Annotations = map[string]string{"org.example": "x"}
	src := index(t, ocispec.MediaTypeImageIndex, entries, func(idx *ocispec.Index) {
		idx.Annotations = map[string]string{"org.example.index": "y"}
	})
	stored := map[digest.Digest][]byte{}
	child := func(i int, d ocispec.Descriptor) (ocispec.Descriptor, error) {
		c, err := image.Convert(d.MediaType, children[d.Digest], image.FormatDocker, image.ConvertOptions{})
		if err != nil {
			return ocispec.Descriptor{}, err
		}
		stored[c.Descriptor.Digest] = c.Data
		return c.Descriptor, nil
	}
	if _, err := image.Convert(ocispec.MediaTypeImageIndex, src, image.FormatDocker, image.ConvertOptions{}); !errors.Is(err, errdef.ErrInvalid) || !strings.Contains(err.Error(), "Child") {
		t.Fatalf("without Child: %v", err)
	}
	c := convert(t, ocispec.MediaTypeImageIndex, src, image.FormatDocker, image.ConvertOptions{Child: child})
	if c.Descriptor.MediaType != image.MediaTypeDockerManifestList || len(c.Children) != 2 {
		t.Fatalf("to docker list: %+v", c)
	}
	list, _ := image.DecodeIndex(c.Data)
	for i, e := range list.Manifests {
		if e.MediaType != image.MediaTypeDockerManifest || stored[e.Digest] == nil || e.Platform == nil || e.Platform.Architecture != entries[i].Platform.Architecture {
			t.Fatalf("list entry %d: %+v", i, e)
		}
		if c.Children[i].Old.Digest != entries[i].Digest || c.Children[i].New.Digest != e.Digest {
			t.Fatalf("child change %d: %+v", i, c.Children[i])
		}
	}
	if w := strings.Join(c.Warnings, "\n"); !strings.Contains(w, "index.annotations") || !strings.Contains(w, "index.manifests[1].annotations") {
		t.Fatalf("warnings: %s", w)
	}
	// And back: the Docker manifests convert to the original OCI ones.
	back := convert(t, image.MediaTypeDockerManifestList, c.Data, image.FormatOCI, image.ConvertOptions{
		Child: func(i int, d ocispec.Descriptor) (ocispec.Descriptor, error) {
			r, err := image.Convert(d.MediaType, stored[d.Digest], image.FormatOCI, image.ConvertOptions{})
			if err != nil {
				return ocispec.Descriptor{}, err
			}
			return r.Descriptor, nil
		},
	})
	bidx, _ := image.DecodeIndex(back.Data)
	for i, e := range bidx.Manifests {
		if e.Digest != entries[i].Digest {
			t.Fatalf("round trip entry %d: %s, want %s", i, e.Digest, entries[i].Digest)
		}
	}
	// A skipped child is dropped with a warning.
	skip := convert(t, ocispec.MediaTypeImageIndex, src, image.FormatDocker, image.ConvertOptions{Child: func(i int, d ocispec.Descriptor) (ocispec.Descriptor, error) {
		if i == 1 {
			return ocispec.Descriptor{}, image.ErrSkipChild
		}
		return child(i, d)
	}})
	sl, _ := image.DecodeIndex(skip.Data)
	if len(sl.Manifests) != 1 || !strings.Contains(strings.Join(skip.Warnings, "\n"), "index.manifests[1]") || skip.Children[1].New.Digest != "" {
		t.Fatalf("skip: %+v", skip)
	}
	// A child that fails fails the conversion, naming the entry.
	boom := errors.New("boom")
	if _, err := image.Convert(ocispec.MediaTypeImageIndex, src, image.FormatDocker, image.ConvertOptions{Child: func(int, ocispec.Descriptor) (ocispec.Descriptor, error) { return ocispec.Descriptor{}, boom }}); !errors.Is(err, boom) || !strings.Contains(err.Error(), "index.manifests[0]") {
		t.Fatalf("failing child: %v", err)
	}
}

func TestConvertIndexRefusals(t *testing.T) {
	nested := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageIndex, Digest: digest.FromString("n"), Size: 1}
	child := func(int, ocispec.Descriptor) (ocispec.Descriptor, error) {
		return desc(image.MediaTypeDockerManifest, "m"), nil
	}
	_, err := image.Convert(ocispec.MediaTypeImageIndex, index(t, ocispec.MediaTypeImageIndex, []ocispec.Descriptor{nested}, nil), image.FormatDocker, image.ConvertOptions{Child: child})
	if !errors.Is(err, errdef.ErrUnsupported) || !strings.Contains(err.Error(), "index.manifests[0]") {
		t.Fatalf("nested index: %v", err)
	}
	noPlatform := desc(ocispec.MediaTypeImageManifest, "m")
	_, err = image.Convert(ocispec.MediaTypeImageIndex, index(t, ocispec.MediaTypeImageIndex, []ocispec.Descriptor{noPlatform}, nil), image.FormatDocker, image.ConvertOptions{Child: child})
	if !errors.Is(err, errdef.ErrUnsupported) || !strings.Contains(err.Error(), "platform") {
		t.Fatalf("no platform: %v", err)
	}
	// An index whose entries are already OCI stays as it is.
	ok := index(t, ocispec.MediaTypeImageIndex, []ocispec.Descriptor{nested}, nil)
	if c := convert(t, ocispec.MediaTypeImageIndex, ok, image.FormatOCI, image.ConvertOptions{}); c.Changed {
		t.Fatal("OCI index to OCI changed")
	}
}

// TestConvertMatchesSkopeo converts the same OCI image with skopeo copy
// --format v2s2 and with Convert: the Docker manifests must be the same
// bytes.
func TestConvertMatchesSkopeo(t *testing.T) {
	skopeo, err := exec.LookPath("skopeo")
	if err != nil {
		t.Skip("skopeo is not installed (on PATH); skipping the comparison")
	}
	dir := t.TempDir()
	layout := filepath.Join(dir, "layout")
	blob := func(data []byte) ocispec.Descriptor {
		d := ocispec.Descriptor{Digest: digest.FromBytes(data), Size: int64(len(data))}
		os.MkdirAll(filepath.Join(layout, "blobs", "sha256"), 0o755)
		os.WriteFile(filepath.Join(layout, "blobs", "sha256", d.Digest.Encoded()), data, 0o644)
		return d
	}
	cfg := blob([]byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["` + digest.FromString("l1").String() + `","` + digest.FromString("l2").String() + `"]}}`))
	cfg.MediaType = ocispec.MediaTypeImageConfig
	l1, l2 := blob([]byte("l1")), blob([]byte("l2"))
	l1.MediaType, l2.MediaType = ocispec.MediaTypeImageLayerGzip, ocispec.MediaTypeImageLayer
	m := ociManifest(t, []ocispec.Descriptor{l1, l2}, func(m *ocispec.Manifest) {
		m.Config = cfg
		m.Annotations = map[string]string{"org.example": "dropped by both"}
	})
	md := blob(m)
	md.MediaType = ocispec.MediaTypeImageManifest
	md.Annotations = map[string]string{ocispec.AnnotationRefName: "t"}
	os.WriteFile(filepath.Join(layout, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644)
	os.WriteFile(filepath.Join(layout, "index.json"), index(t, ocispec.MediaTypeImageIndex, []ocispec.Descriptor{md}, nil), 0o644)
	out := filepath.Join(dir, "out")
	cmd := exec.Command(skopeo, "copy", "--format", "v2s2", "oci:"+layout+":t", "dir:"+out)
	cmd.Env = append(os.Environ(), "HOME="+dir)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("skopeo: %v\n%s", err, b)
	}
	want, err := os.ReadFile(filepath.Join(out, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	c := convert(t, ocispec.MediaTypeImageManifest, m, image.FormatDocker, image.ConvertOptions{})
	if !bytes.Equal(c.Data, want) {
		t.Fatalf("lading:\n%s\nskopeo:\n%s", c.Data, want)
	}
}

func FuzzConvert(f *testing.F) {
	f.Add(ociManifest(f, []ocispec.Descriptor{desc(ocispec.MediaTypeImageLayerGzip, "a")}, nil), true)
	f.Add(index(f, image.MediaTypeDockerManifestList, []ocispec.Descriptor{{MediaType: image.MediaTypeDockerManifest, Digest: digest.FromString("m"), Size: 1, Platform: &ocispec.Platform{OS: "linux", Architecture: "amd64"}}}, nil), false)
	f.Fuzz(func(t *testing.T, data []byte, toDocker bool) {
		to := image.FormatOCI
		if toDocker {
			to = image.FormatDocker
		}
		child := func(i int, d ocispec.Descriptor) (ocispec.Descriptor, error) {
			mt := ocispec.MediaTypeImageManifest
			if to == image.FormatDocker {
				mt = image.MediaTypeDockerManifest
			}
			return ocispec.Descriptor{MediaType: mt, Digest: d.Digest, Size: d.Size}, nil
		}
		c, err := image.Convert("", data, to, image.ConvertOptions{Child: child})
		if err != nil || !c.Changed {
			return
		}
		// What Convert returns reads back as what it says it is, and a
		// document the specification accepts converts to one it accepts.
		if image.IsManifest(c.Descriptor.MediaType) {
			_, err = image.DecodeManifest(c.Data)
		} else {
			_, err = image.DecodeIndex(c.Data)
		}
		if err != nil {
			t.Fatalf("converted document does not decode: %v\n%s", err, c.Data)
		}
		if image.Validate("", data) == nil {
			if err := image.Validate(c.Descriptor.MediaType, c.Data); err != nil {
				t.Fatalf("valid document converted to an invalid one: %v\n%s\n%s", err, data, c.Data)
			}
		}
	})
}

// Converting an OCI image manifest for a Docker-only consumer: the layer
// and config blobs stay as they are; only the manifest changes.
func ExampleConvert() {
	oci := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",` +
		`"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},` +
		`"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:3a6eb0790f39ac87c94f3856b2dd2c5d110e6811602261a9a923d3bb23adc8b7","size":4}],` +
		`"annotations":{"org.opencontainers.image.version":"1.0"}}`)
	c, err := image.Convert(ocispec.MediaTypeImageManifest, oci, image.FormatDocker, image.ConvertOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(c.Descriptor.MediaType)
	fmt.Println(string(c.Data))
	fmt.Println(c.Warnings)
	// Output:
	// application/vnd.docker.distribution.manifest.v2+json
	// {"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{"mediaType":"application/vnd.docker.container.image.v1+json","size":2,"digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"},"layers":[{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","size":4,"digest":"sha256:3a6eb0790f39ac87c94f3856b2dd2c5d110e6811602261a9a923d3bb23adc8b7"}]}
	// [manifest.annotations: dropped: Docker documents have no annotations (org.opencontainers.image.version)]
}
