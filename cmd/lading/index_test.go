package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lading-oci/lading/content/ocilayout"
	"github.com/lading-oci/lading/errdef"
	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// TestMultiPlatformIndex builds one image per platform, ties them into an
// index, and checks that ls, inspect, digest, manifest and unpack pick the
// right one.
// multiLayout builds an amd64 and an arm64/v8 image and an index of the two
// tagged multi; it returns the layout and the two manifests' descriptors.
func multiLayout(t *testing.T) (string, map[string]ocispec.Descriptor) {
	t.Helper()
	tmp := t.TempDir()
	layout := filepath.Join(tmp, "images")
	descs := map[string]ocispec.Descriptor{}
	for _, p := range []string{"linux/amd64", "linux/arm64/v8"} {
		src := filepath.Join(tmp, strings.ReplaceAll(p, "/", "-"))
		must(t, os.MkdirAll(src, 0o755))
		must(t, os.WriteFile(filepath.Join(src, "arch"), []byte(p), 0o644))
		lading(t, "build", src, "-t", "oci:"+layout+":"+strings.ReplaceAll(p, "/", "-"), "--platform", p)
		var d ocispec.Descriptor
		d.Digest = digest.Digest(strings.TrimSpace(lading(t, "digest", "oci:"+layout+":"+strings.ReplaceAll(p, "/", "-"))))
		d.MediaType = ocispec.MediaTypeImageManifest
		d.Size = int64(len(lading(t, "manifest", "oci:"+layout+":"+strings.ReplaceAll(p, "/", "-"))))
		parts := strings.Split(p, "/")
		d.Platform = &ocispec.Platform{OS: parts[0], Architecture: parts[1]}
		if len(parts) == 3 {
			d.Platform.Variant = parts[2]
		}
		descs[p] = d
	}
	idx := ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex,
		Manifests: []ocispec.Descriptor{descs["linux/amd64"], descs["linux/arm64/v8"]}}
	data, err := json.Marshal(idx)
	must(t, err)
	st, err := ocilayout.Open(context.Background(), layout)
	must(t, err)
	ctx := context.Background()
	idesc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageIndex, Digest: digest.FromBytes(data), Size: int64(len(data))}
	must(t, st.Push(ctx, idesc, bytes.NewReader(data)))
	must(t, st.Tag(ctx, idesc, "multi"))
	must(t, st.Close()) // done writing: gc below may run
	return layout, descs
}

func TestMultiPlatformIndex(t *testing.T) {
	layout, descs := multiLayout(t)
	tmp := filepath.Dir(layout)

	ref := "oci:" + layout + ":multi"
	if got := strings.TrimSpace(lading(t, "digest", ref)); !strings.HasPrefix(got, "sha256:") || got == descs["linux/amd64"].Digest.String() {
		t.Errorf("digest of the index = %s", got)
	}
	if got := strings.TrimSpace(lading(t, "digest", ref, "--platform", "linux/arm64")); got != descs["linux/arm64/v8"].Digest.String() {
		t.Errorf("digest --platform linux/arm64 = %s", got)
	}
	text := lading(t, "inspect", ref)
	for _, want := range []string{"linux/amd64", "linux/arm64/v8", descs["linux/amd64"].Digest.String()} {
		if !strings.Contains(text, want) {
			t.Errorf("inspect of the index lacks %s:\n%s", want, text)
		}
	}
	if got := strings.TrimSpace(lading(t, "inspect", ref, "--platform", "linux/arm64/v8", "--format", "{{.Architecture}}")); got != "arm64" {
		t.Errorf("inspect --platform arm64: %s", got)
	}
	if ls := lading(t, "ls", layout); !strings.Contains(ls, "linux/amd64,linux/arm64/v8") {
		t.Errorf("ls does not list the index's platforms:\n%s", ls)
	}
	root := filepath.Join(tmp, "root")
	lading(t, "unpack", ref, root, "--platform", "linux/arm64/v8")
	if got, err := os.ReadFile(filepath.Join(root, "arch")); err != nil || string(got) != "linux/arm64/v8" {
		t.Errorf("unpack --platform linux/arm64/v8 gave %q, %v", got, err)
	}
	_, _, err := ladingErr(t, nil, "unpack", ref, filepath.Join(tmp, "none"), "--platform", "windows/amd64")
	if err == nil || !strings.Contains(err.Error(), "linux/arm64/v8") {
		t.Errorf("unpack for a missing platform: %v (want the offered platforms listed)", err)
	}
	// The index's children are reachable, so gc keeps everything.
	lading(t, "rm", "oci:"+layout+":linux-amd64", "oci:"+layout+":linux-arm64-v8")
	if out := lading(t, "gc", layout); !strings.Contains(out, "removed 0 blobs") {
		t.Errorf("gc removed what the index reaches: %s", out)
	}
	if out := lading(t, "verify", layout); !strings.Contains(out, " 0 problems") {
		t.Errorf("verify: %s", out)
	}
}

// TestGCWithAWriterActive checks that gc leaves alone a layout another
// writer is in the middle of (blobs written, not yet tagged), unless told
// a minimum age to keep, and collects once the writer is done.
func TestGCWithAWriterActive(t *testing.T) {
	layout := filepath.Join(t.TempDir(), "images")
	lading(t, "init", layout)
	writer, err := ocilayout.Open(context.Background(), layout)
	must(t, err)
	defer writer.Close()
	data := []byte(`{"pending":true}`)
	desc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: digest.FromBytes(data), Size: int64(len(data))}
	must(t, writer.Push(context.Background(), desc, bytes.NewReader(data)))

	_, _, err = ladingErr(t, nil, "gc", layout)
	if !errors.Is(err, errdef.ErrUnavailable) || !strings.Contains(err.Error(), "another process is writing") {
		t.Fatalf("gc with a writer active: err = %v", err)
	}
	if out := lading(t, "gc", layout, "--min-age", "1h"); !strings.Contains(out, "removed 0 blobs") {
		t.Errorf("gc --min-age 1h: %s", out)
	}
	must(t, writer.Close())
	if out := lading(t, "gc", layout); !strings.Contains(out, "removed 1 blobs") {
		t.Errorf("gc after the writer closed: %s", out)
	}
}
