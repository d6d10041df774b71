package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lading-oci/lading/content/ocilayout"
	"github.com/lading-oci/lading/image"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// TestDockerSchema2Images: Docker schema 2 manifests are read everywhere,
// and an edit of one is written as OCI with the same blobs.
func TestDockerSchema2Images(t *testing.T) {
	tmp := t.TempDir()
	src := filepath.Join(tmp, "src")
	writeTree(t, src)
	layout := filepath.Join(tmp, "images")
	lading(t, "build", src, "-t", "oci:"+layout+":oci")

	// Rewrite the manifest with Docker media types (same config and layer blobs).
	var m map[string]any
	must(t, json.Unmarshal([]byte(lading(t, "manifest", "oci:"+layout+":oci")), &m))
	m["mediaType"] = image.MediaTypeDockerManifest
	m["config"].(map[string]any)["mediaType"] = image.MediaTypeDockerConfig
	for _, l := range m["layers"].([]any) {
		l.(map[string]any)["mediaType"] = image.MediaTypeDockerLayer
	}
	data, err := json.Marshal(m)
	must(t, err)
	st, err := ocilayout.Open(context.Background(), layout)
	must(t, err)
	d := ocispec.Descriptor{MediaType: image.MediaTypeDockerManifest, Digest: digest.FromBytes(data), Size: int64(len(data))}
	ctx := context.Background()
	must(t, st.Push(ctx, d, bytes.NewReader(data)))
	must(t, st.Tag(ctx, d, "docker"))

	ref := "oci:" + layout + ":docker"
	if got := strings.TrimSpace(lading(t, "inspect", ref, "--format", "{{.MediaType}}")); got != image.MediaTypeDockerManifest {
		t.Errorf("inspect MediaType = %s", got)
	}
	root := filepath.Join(tmp, "root")
	lading(t, "unpack", ref, root)
	compareTrees(t, snapshot(t, src), snapshot(t, root), "unpack of a Docker manifest")
	if out := lading(t, "verify", layout); !strings.Contains(out, " 0 problems") {
		t.Errorf("verify: %s", out)
	}
	out, _, err := ladingErr(t, strings.NewReader(string(data)), "validate", "-")
	if err != nil || strings.TrimSpace(out) != "valid" {
		t.Errorf("validate of the Docker manifest: %q %v", out, err)
	}

	lading(t, "mutate", ref, "-t", "oci:"+layout+":edited", "--env", "X=1")
	var edited struct {
		MediaType string
		Config    ocispec.Descriptor
		Layers    []ocispec.Descriptor
	}
	must(t, json.Unmarshal([]byte(lading(t, "manifest", "oci:"+layout+":edited")), &edited))
	if edited.MediaType != ocispec.MediaTypeImageManifest || edited.Config.MediaType != ocispec.MediaTypeImageConfig ||
		edited.Layers[0].MediaType != ocispec.MediaTypeImageLayerGzip {
		t.Errorf("edit of a Docker image is not OCI: %+v", edited)
	}
	if edited.Layers[0].Digest.String() != m["layers"].([]any)[0].(map[string]any)["digest"] {
		t.Errorf("edit changed the layer blob")
	}

	// Schema 1 is refused with a clear error wherever it is met.
	s1 := []byte(`{"schemaVersion":1,"name":"x","tag":"y","architecture":"amd64","fsLayers":[],"history":[]}`)
	d1 := ocispec.Descriptor{MediaType: image.MediaTypeDockerSchema1Signed, Digest: digest.FromBytes(s1), Size: int64(len(s1))}
	must(t, st.Push(ctx, d1, bytes.NewReader(s1)))
	must(t, st.Tag(ctx, d1, "schema1"))
	_, _, err = ladingErr(t, nil, "unpack", "oci:"+layout+":schema1", filepath.Join(tmp, "s1"))
	if err == nil || !strings.Contains(err.Error(), "schema 1") {
		t.Errorf("unpack of schema 1: %v", err)
	}
	if _, err := os.Stat(filepath.Join(tmp, "s1")); err == nil {
		t.Errorf("a refused unpack created its target")
	}
}
