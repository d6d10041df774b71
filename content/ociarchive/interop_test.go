package ociarchive_test

import (
	"archive/tar"
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
	"github.com/lading-oci/lading/content/ociarchive"
	"github.com/lading-oci/lading/content/ocilayout"
	"github.com/lading-oci/lading/internal/testutil"
	"github.com/lading-oci/lading/layer"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// checkImage loads the image tag names in r and reads every blob of it,
// verified; it returns the files of the image's layers.
func checkImage(t *testing.T, r content.Fetcher, res content.Resolver, tag string) (ocispec.Descriptor, []string) {
	t.Helper()
	ctx := context.Background()
	d, err := res.Resolve(ctx, tag)
	if err != nil {
		t.Fatalf("resolve %s: %v", tag, err)
	}
	// The manifest is read leniently: buildah's carry an empty
	// org.opencontainers.image.base.digest annotation, which image refuses.
	raw, err := content.ReadAll(ctx, r, d, 0)
	if err != nil {
		t.Fatalf("read manifest of %s: %v", tag, err)
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	if _, err := content.ReadAll(ctx, r, m.Config, 0); err != nil {
		t.Fatalf("read config of %s: %v", tag, err)
	}
	var files []string
	for _, l := range m.Layers {
		rc, err := r.Fetch(ctx, l)
		if err != nil {
			t.Fatal(err)
		}
		zr, _, err := layer.Decompress(rc)
		if err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(zr)
		for {
			h, err := tr.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			files = append(files, h.Name)
		}
		zr.Close()
		if _, err := io.Copy(io.Discard, rc); err != nil { // the verifying reader checks the digest at the end
			t.Fatalf("layer %s: %v", l.Digest, err)
		}
		rc.Close()
	}
	return d, files
}

func TestSkopeoWritesLadingReads(t *testing.T) {
	skopeo := testutil.Tool(t, "skopeo")
	img := contenttest.MakeImage(t, map[string]string{"etc/hello": "hello\n"}, map[string]string{"bin/tool": "#!/bin/sh\n"})
	dir := testutil.Layout(t, img, "src")
	file := filepath.Join(t.TempDir(), "a.tar")
	testutil.Run(t, skopeo, "copy", "oci:"+dir+":src", "oci-archive:"+file+":v1")
	r := open(t, file)
	d, files := checkImage(t, r, r, "v1")
	if d.Digest != img.Manifest.Digest {
		t.Fatalf("skopeo's archive has manifest %s, the source %s", d.Digest, img.Manifest.Digest)
	}
	if strings.Join(files, ",") != "etc/hello,bin/tool" {
		t.Fatalf("layers hold %v", files)
	}
}

func TestLadingWritesSkopeoReads(t *testing.T) {
	skopeo := testutil.Tool(t, "skopeo")
	ctx := context.Background()
	img := contenttest.MakeImage(t, map[string]string{"etc/hello": "hello\n"})
	w, file := create(t)
	img.Push(t, w)
	if err := w.Tag(ctx, img.Manifest, "v1"); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	out := testutil.Run(t, skopeo, "inspect", "--raw", "oci-archive:"+file+":v1")
	if got := contenttest.Describe("", out).Digest; got != img.Manifest.Digest {
		t.Fatalf("skopeo inspect --raw gives manifest %s, want %s", got, img.Manifest.Digest)
	}
	var info struct{ Layers []string }
	json.Unmarshal(testutil.Run(t, skopeo, "inspect", "oci-archive:"+file+":v1"), &info)
	if len(info.Layers) != 1 || info.Layers[0] != img.Layers[0].Digest.String() {
		t.Fatalf("skopeo inspect: %+v", info)
	}
	dir := filepath.Join(t.TempDir(), "copy")
	testutil.Run(t, skopeo, "copy", "oci-archive:"+file+":v1", "oci:"+dir+":x")
	s, err := ocilayout.Open(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	if d, err := s.Resolve(ctx, "x"); err != nil || d.Digest != img.Manifest.Digest {
		t.Fatalf("skopeo's copy: %v %v", d.Digest, err)
	}
}

// buildahImage builds a FROM scratch image holding one file with buildah
// (vfs storage under a temporary root) and returns a function that runs
// buildah on that storage.
func buildahImage(t *testing.T, name string) func(args ...string) []byte {
	t.Helper()
	buildah := testutil.Tool(t, "buildah")
	if os.Geteuid() != 0 {
		t.Skip("buildah needs root here; skipping")
	}
	root := t.TempDir()
	bh := func(args ...string) []byte {
		return testutil.Run(t, buildah, append([]string{"--root", filepath.Join(root, "root"), "--runroot", filepath.Join(root, "run"), "--storage-driver", "vfs"}, args...)...)
	}
	ctxDir := filepath.Join(root, "ctx")
	os.MkdirAll(ctxDir, 0o755)
	os.WriteFile(filepath.Join(ctxDir, "hello.txt"), []byte("hello from buildah\n"), 0o644)
	os.WriteFile(filepath.Join(ctxDir, "Containerfile"), []byte("FROM scratch\nCOPY hello.txt /hello.txt\n"), 0o644)
	bh("build", "--isolation", "chroot", "-t", name, "-f", filepath.Join(ctxDir, "Containerfile"), ctxDir)
	t.Cleanup(func() { bh("rmi", "--all", "--force") })
	return bh
}

func TestBuildahWritesLadingReads(t *testing.T) {
	bh := buildahImage(t, "localhost/ladingtest:1")
	file := filepath.Join(t.TempDir(), "b.tar")
	bh("push", "localhost/ladingtest:1", "oci-archive:"+file+":v1")
	r, err := ociarchive.Open(context.Background(), file)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	_, files := checkImage(t, r, r, "v1")
	if strings.Join(files, ",") != "hello.txt" {
		t.Fatalf("buildah's layer holds %v", files)
	}
}
