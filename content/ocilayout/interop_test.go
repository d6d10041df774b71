package ocilayout_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/lading-oci/lading/content/ocilayout"
	"github.com/lading-oci/lading/internal/testutil"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// checkForeign opens a layout written by another tool, resolves tag and
// verifies the whole layout.
func checkForeign(t *testing.T, dir, tagName string) ocispec.Descriptor {
	t.Helper()
	s, err := ocilayout.Open(context.Background(), dir)
	if err != nil {
		t.Fatalf("open %s: %v", dir, err)
	}
	d, err := s.Resolve(context.Background(), tagName)
	if err != nil {
		t.Fatalf("resolve %q in %s: %v", tagName, dir, err)
	}
	if d.MediaType != ocispec.MediaTypeImageManifest {
		t.Fatalf("resolve %q: media type %q", tagName, d.MediaType)
	}
	rep, err := s.Verify(context.Background(), ocilayout.VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() {
		t.Fatalf("verify %s:\n%v", dir, rep.Err())
	}
	if rep.Blobs == 0 {
		t.Fatalf("verify %s checked no blobs", dir)
	}
	return d
}

func TestInteropUmociAndSkopeoLayouts(t *testing.T) {
	umoci := testutil.Tool(t, "umoci")
	skopeo := testutil.Tool(t, "skopeo")
	a := filepath.Join(t.TempDir(), "a")
	b := filepath.Join(t.TempDir(), "b")
	testutil.Run(t, umoci, "init", "--layout", a)
	testutil.Run(t, umoci, "new", "--image", a+":tag")
	// One layer, so the manifest has the layer the specification says it
	// SHOULD have (umoci new alone makes none).
	file := filepath.Join(t.TempDir(), "hello")
	os.WriteFile(file, []byte("hello\n"), 0o644)
	testutil.Run(t, umoci, "insert", "--rootless", "--image", a+":tag", file, "/etc/hello")
	da := checkForeign(t, a, "tag")
	testutil.Run(t, skopeo, "copy", "oci:"+a+":tag", "oci:"+b+":tag")
	db := checkForeign(t, b, "tag")
	if da.Digest != db.Digest {
		t.Logf("skopeo rewrote the manifest: %s -> %s", da.Digest, db.Digest)
	}
	// Tagging and collecting garbage in a foreign layout keeps it usable.
	s, _ := ocilayout.Open(context.Background(), b)
	tag(t, s, db, "again")
	if _, err := s.GC(context.Background(), ocilayout.GCOptions{}); err != nil {
		t.Fatal(err)
	}
	checkForeign(t, b, "again")
	testutil.Run(t, skopeo, "inspect", "oci:"+b+":again")
}

func TestInteropOurLayoutReadByOthers(t *testing.T) {
	umoci := testutil.Tool(t, "umoci")
	skopeo := testutil.Tool(t, "skopeo")
	s := newLayout(t)
	img := pushImage(t, s, nil) // one empty gzip tar layer
	tag(t, s, img.manifest, "tag")

	out := testutil.Run(t, skopeo, "inspect", "oci:"+s.Dir()+":tag")
	var info struct {
		Digest string
		Layers []string
		Os     string
	}
	if err := json.Unmarshal(out, &info); err != nil {
		t.Fatalf("skopeo inspect output: %v\n%s", err, out)
	}
	if info.Digest != img.manifest.Digest.String() || len(info.Layers) != 1 || info.Os != "linux" {
		t.Fatalf("skopeo inspect = %+v, want digest %s with 1 layer", info, img.manifest.Digest)
	}
	bundle := filepath.Join(t.TempDir(), "bundle")
	testutil.Run(t, umoci, "unpack", "--rootless", "--image", s.Dir()+":tag", bundle)
	if _, err := os.Stat(filepath.Join(bundle, "config.json")); err != nil {
		t.Fatalf("umoci unpack made no runtime config: %v", err)
	}
	if _, err := os.Stat(filepath.Join(bundle, "rootfs")); err != nil {
		t.Fatalf("umoci unpack made no rootfs: %v", err)
	}
	// A copy by skopeo of our layout opens and verifies too.
	c := filepath.Join(t.TempDir(), "c")
	testutil.Run(t, skopeo, "copy", "oci:"+s.Dir()+":tag", "oci:"+c+":tag")
	checkForeign(t, c, "tag")
}
