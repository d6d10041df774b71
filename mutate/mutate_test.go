package mutate

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/lading-oci/lading/content"
	"github.com/lading-oci/lading/content/memory"
	"github.com/lading-oci/lading/errdef"
	"github.com/lading-oci/lading/layer"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, data := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestConfigChangesApply(t *testing.T) {
	m := New(ocispec.Platform{OS: "linux", Architecture: "amd64"})
	m.ConfigFile.Config.Env = []string{"PATH=/bin", "A=1"}
	wd, user := "/srv", "app"
	created := time.Date(2024, 5, 1, 12, 0, 0, 0, time.FixedZone("x", 3600))
	err := ConfigChanges{
		Entrypoint:   []string{"/app"},
		Cmd:          []string{},
		Env:          []string{"A=2", "B=3"},
		WorkingDir:   &wd,
		User:         &user,
		ExposedPorts: []string{"80", "53/UDP"},
		Volumes:      []string{"/data"},
		Labels:       map[string]string{"k": "v"},
		Annotations:  map[string]string{"a": "b"},
		Platform:     &ocispec.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"},
		Created:      &created,
	}.Apply(m)
	if err != nil {
		t.Fatal(err)
	}
	c := m.ConfigFile.Config
	if got := c.Env; len(got) != 3 || got[0] != "PATH=/bin" || got[1] != "A=2" || got[2] != "B=3" {
		t.Errorf("Env = %v", got)
	}
	if c.Cmd == nil || len(c.Cmd) != 0 || c.Entrypoint[0] != "/app" {
		t.Errorf("Entrypoint %v Cmd %v", c.Entrypoint, c.Cmd)
	}
	if _, ok := c.ExposedPorts["80/tcp"]; !ok {
		t.Errorf("ExposedPorts = %v", c.ExposedPorts)
	}
	if _, ok := c.ExposedPorts["53/udp"]; !ok {
		t.Errorf("ExposedPorts = %v", c.ExposedPorts)
	}
	if m.ConfigFile.Architecture != "arm64" || m.ConfigFile.Variant != "v8" || m.Manifest.Annotations["a"] != "b" || c.Labels["k"] != "v" {
		t.Errorf("config = %+v", m.ConfigFile)
	}
	if m.ConfigFile.Created.Location() != time.UTC || !m.ConfigFile.Created.Equal(created) {
		t.Errorf("Created = %v", m.ConfigFile.Created)
	}

	for _, bad := range []ConfigChanges{
		{Env: []string{"NOVALUE"}},
		{Env: []string{"=x"}},
		{ExposedPorts: []string{"0"}},
		{ExposedPorts: []string{"80/icmp"}},
		{ExposedPorts: []string{"080"}},
		{Volumes: []string{""}},
	} {
		before := m.ConfigFile.Config.Env
		if err := bad.Apply(m); !errors.Is(err, errdef.ErrInvalid) {
			t.Errorf("%+v: err = %v, want ErrInvalid", bad, err)
		}
		if len(m.ConfigFile.Config.Env) != len(before) {
			t.Errorf("%+v: a refused change modified the image", bad)
		}
	}
}

func TestBuildOnMemoryStore(t *testing.T) {
	ctx := context.Background()
	s := memory.New()
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"a/b.txt": "hello", "c.txt": "world"})
	ts := time.Unix(1700000000, 0)
	lo := LayerOptions{Compression: layer.Zstd, Timestamp: &ts, CreatedBy: "test"}
	desc, err := Build(ctx, s, dir, BuildOptions{LayerOptions: lo, Platform: &ocispec.Platform{OS: "linux", Architecture: "riscv64"}})
	if err != nil {
		t.Fatal(err)
	}
	img, err := content.LoadImage(ctx, s, desc, &ocispec.Platform{OS: "linux", Architecture: "riscv64"})
	if err != nil {
		t.Fatal(err)
	}
	if len(img.Manifest.Layers) != 1 || img.Manifest.Layers[0].MediaType != ocispec.MediaTypeImageLayerZstd {
		t.Fatalf("layers = %+v", img.Manifest.Layers)
	}
	if !img.ConfigFile.Created.Equal(ts) || img.ConfigFile.History[0].CreatedBy != "test" {
		t.Errorf("created %v history %+v", img.ConfigFile.Created, img.ConfigFile.History)
	}

	// The same build again gives the same digest (reproducible), and a
	// second layer on top stacks.
	again, err := Build(ctx, s, dir, BuildOptions{LayerOptions: lo, Platform: &ocispec.Platform{OS: "linux", Architecture: "riscv64"}})
	if err != nil || again.Digest != desc.Digest {
		t.Fatalf("rebuild: %v %s vs %s", err, again.Digest, desc.Digest)
	}
	top := t.TempDir()
	writeFiles(t, top, map[string]string{"d.txt": "top"})
	stacked, err := Build(ctx, s, top, BuildOptions{LayerOptions: lo, Base: img})
	if err != nil {
		t.Fatal(err)
	}
	img2, err := content.LoadImage(ctx, s, stacked, &ocispec.Platform{OS: "linux", Architecture: "riscv64"})
	if err != nil {
		t.Fatal(err)
	}
	if len(img2.Manifest.Layers) != 2 || img2.Manifest.Layers[0].Digest != img.Manifest.Layers[0].Digest || len(img2.ConfigFile.History) != 2 {
		t.Errorf("stacked image: %+v", img2.Manifest)
	}

	// Unpack gives both layers' files.
	root := t.TempDir()
	if err := Unpack(ctx, s, img2, root, UnpackOptions{Rootless: true}); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"a/b.txt": "hello", "c.txt": "world", "d.txt": "top"} {
		if got, err := os.ReadFile(filepath.Join(root, name)); err != nil || string(got) != want {
			t.Errorf("%s = %q, %v", name, got, err)
		}
	}
}

func TestAppendRefusesGarbage(t *testing.T) {
	ctx := context.Background()
	s := memory.New()
	base, err := Write(ctx, s, New(ocispec.Platform{OS: "linux", Architecture: "amd64"}))
	if err != nil {
		t.Fatal(err)
	}
	img, err := content.LoadImage(ctx, s, base, &ocispec.Platform{OS: "linux", Architecture: "amd64"})
	if err != nil {
		t.Fatal(err)
	}
	// gzip magic followed by garbage: not a layer.
	bad := append([]byte{0x1f, 0x8b, 8, 0}, bytes.Repeat([]byte{0xaa}, 100)...)
	if _, err := Append(ctx, s, img, bytes.NewReader(bad), AppendOptions{}); err == nil {
		t.Fatal("append of a corrupt gzip stream succeeded")
	}
	if _, err := Append(ctx, s, img, bytes.NewReader(bytes.Repeat([]byte("not a tar "), 100)), AppendOptions{}); err == nil {
		t.Fatal("append of a text file succeeded")
	}
	var n int
	_ = s.Blobs(ctx, func(ocispec.Descriptor) error { n++; return nil })
	if n != 2 {
		t.Errorf("store holds %d blobs after a failed append, want the 2 of the base", n)
	}
}
