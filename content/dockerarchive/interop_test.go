package dockerarchive_test

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lading-oci/lading/content"
	"github.com/lading-oci/lading/content/contenttest"
	"github.com/lading-oci/lading/content/dockerarchive"
	"github.com/lading-oci/lading/content/ocilayout"
	"github.com/lading-oci/lading/image"
	"github.com/lading-oci/lading/internal/testutil"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func TestSkopeoWritesLadingReads(t *testing.T) {
	skopeo := testutil.Tool(t, "skopeo")
	ctx := context.Background()
	one := contenttest.MakeImage(t, map[string]string{"etc/hello": "hello\n"}, map[string]string{"bin/x": strings.Repeat("x", 10000)})
	file := filepath.Join(t.TempDir(), "a.tar")
	testutil.Run(t, skopeo, "copy", "oci:"+testutil.Layout(t, one, "src")+":src", "docker-archive:"+file+":example.com/one:v1")
	r := open(t, file)
	d, err := r.Select(ctx, mustRef(t, "docker-archive:"+file+":example.com/one:v1"))
	if err != nil {
		t.Fatal(err)
	}
	li := loadAndCheck(t, r, d, one)
	// skopeo keeps the config as it was; the layers are the diff_ids.
	if li.Manifest.Config.Digest != one.Config.Digest {
		t.Fatalf("config changed: %s", li.Manifest.Config.Digest)
	}
	if got := tags(t, r); got != "example.com/one:v1" {
		t.Fatalf("tags %s", got)
	}
}

func TestLadingWritesSkopeoReads(t *testing.T) {
	skopeo := testutil.Tool(t, "skopeo")
	ctx := context.Background()
	shared := map[string]string{"etc/os-release": "ID=lading\n"}
	one := contenttest.MakeImage(t, shared, map[string]string{"one": "1"})
	two := contenttest.MakeImage(t, shared, map[string]string{"two": "2"})
	w, file := create(t)
	one.Push(t, w)
	two.Push(t, w)
	if err := w.Tag(ctx, one.Manifest, "example.com/one:v1"); err != nil {
		t.Fatal(err)
	}
	if err := w.Tag(ctx, two.Manifest, "busybox:two"); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	for i, c := range []struct {
		src string
		img contenttest.Image
	}{
		{"docker-archive:" + file + ":example.com/one:v1", one},
		{"docker-archive:" + file + ":@1", two},
		{"docker-archive:" + file + ":busybox:two", two},
	} {
		var info struct {
			Layers []string
			Os     string
		}
		if err := json.Unmarshal(testutil.Run(t, skopeo, "inspect", c.src), &info); err != nil {
			t.Fatal(err)
		}
		if len(info.Layers) != 2 || info.Layers[1] != digest.FromBytes(c.img.Raw[1]).String() || info.Os != "linux" {
			t.Fatalf("skopeo inspect %s: %+v", c.src, info)
		}
		dir := filepath.Join(t.TempDir(), "copy")
		testutil.Run(t, skopeo, "copy", c.src, "oci:"+dir+":x")
		s, err := ocilayout.Open(context.Background(), dir)
		if err != nil {
			t.Fatal(err)
		}
		d, err := s.Resolve(ctx, "x")
		if err != nil {
			t.Fatal(err)
		}
		li, err := content.LoadImage(ctx, s, d, nil)
		if err != nil {
			t.Fatalf("copy %d: %v", i, err)
		}
		if !bytes.Equal(li.RawConfig, c.img.Blobs[c.img.Config.Digest]) {
			t.Fatalf("copy %d: skopeo's copy has another config", i)
		}
	}
}

func TestBuildahWritesLadingReads(t *testing.T) {
	buildah := testutil.Tool(t, "buildah")
	if os.Geteuid() != 0 {
		t.Skip("buildah needs root here; skipping")
	}
	ctx := context.Background()
	root := t.TempDir()
	bh := func(args ...string) []byte {
		return testutil.Run(t, buildah, append([]string{"--root", filepath.Join(root, "root"), "--runroot", filepath.Join(root, "run"), "--storage-driver", "vfs"}, args...)...)
	}
	ctxDir := filepath.Join(root, "ctx")
	os.MkdirAll(ctxDir, 0o755)
	os.WriteFile(filepath.Join(ctxDir, "hello.txt"), []byte("hello from buildah\n"), 0o644)
	os.WriteFile(filepath.Join(ctxDir, "Containerfile"), []byte("FROM scratch\nCOPY hello.txt /hello.txt\n"), 0o644)
	bh("build", "--isolation", "chroot", "-t", "localhost/ladingtest:1", "-f", filepath.Join(ctxDir, "Containerfile"), ctxDir)
	t.Cleanup(func() { bh("rmi", "--all", "--force") })
	file := filepath.Join(t.TempDir(), "b.tar")
	bh("push", "localhost/ladingtest:1", "docker-archive:"+file+":localhost/ladingtest:1")

	r := open(t, file)
	d, err := r.Resolve(ctx, "localhost/ladingtest:1")
	if err != nil {
		t.Fatal(err)
	}
	li, err := content.LoadImage(ctx, r, d, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(li.Manifest.Layers) != 1 || li.Manifest.Layers[0].MediaType != image.MediaTypeDockerLayerUncompressed {
		t.Fatalf("layers %+v", li.Manifest.Layers)
	}
	rc, err := r.Fetch(ctx, li.Manifest.Layers[0])
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	var names []string
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
	}
	if _, err := io.Copy(io.Discard, rc); err != nil {
		t.Fatal(err)
	}
	if strings.Join(names, ",") != "hello.txt" {
		t.Fatalf("buildah's layer holds %v", names)
	}

	// And the other way: what we write, buildah pulls.
	out := filepath.Join(t.TempDir(), "c.tar")
	w, err := dockerarchive.Create(ctx, out)
	if err != nil {
		t.Fatal(err)
	}
	for _, blob := range []ocispec.Descriptor{li.Manifest.Layers[0], li.Manifest.Config, d} {
		if err := content.Copy(ctx, r, w, blob); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Tag(ctx, d, "localhost/roundtrip:2"); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	bh("pull", "docker-archive:"+out)
	if got := string(bh("images", "--format", "{{.Name}}:{{.Tag}}")); !strings.Contains(got, "localhost/roundtrip:2") {
		t.Fatalf("buildah images after pull: %s", got)
	}
}
