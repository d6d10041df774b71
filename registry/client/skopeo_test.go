package client

import (
	"bytes"
	"context"
	"encoding/json"
	"github.com/lading-oci/lading/internal/registrytest"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func skopeo(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("skopeo")
	if err != nil {
		t.Skip("skopeo is not installed")
	}
	return p
}

func runSkopeo(t *testing.T, bin string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(bin, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	// skopeo reads registries.conf and policy.json; give it a permissive
	// policy of its own.
	policy := filepath.Join(t.TempDir(), "policy.json")
	os.WriteFile(policy, []byte(`{"default":[{"type":"insecureAcceptAnything"}]}`), 0o644)
	cmd.Args = append([]string{bin, "--policy", policy}, args...)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("skopeo %v: %v\n%s", args, err, stderr.String())
	}
	return out
}

// TestSkopeoPullsWhatWePush: skopeo inspects and copies out what the
// client pushed, with the same digests.
func TestSkopeoPullsWhatWePush(t *testing.T) {
	bin := skopeo(t)
	reg := registrytest.Start(t, registrytest.Distribution28(t), "")
	repo, _ := newTestClient(t).Repository(reg.Host, "lading/pushed")
	img := newTestImage(t, 3, 50_000)
	img.push(t, repo, "v1")

	out := runSkopeo(t, bin, "inspect", "--tls-verify=false", "--raw", "docker://"+reg.Host+"/lading/pushed:v1")
	if !bytes.Equal(out, img.ManifestData) {
		t.Fatalf("skopeo inspect --raw: manifest differs:\n%s", out)
	}
	out = runSkopeo(t, bin, "inspect", "--tls-verify=false", "docker://"+reg.Host+"/lading/pushed:v1")
	var info struct {
		Digest digest.Digest
		Layers []digest.Digest
	}
	if err := json.Unmarshal(out, &info); err != nil {
		t.Fatal(err)
	}
	if info.Digest != img.Manifest.Digest || len(info.Layers) != 3 || info.Layers[2] != img.Layers[2].Digest {
		t.Fatalf("skopeo inspect: %+v, want digest %s", info, img.Manifest.Digest)
	}
	dir := filepath.Join(t.TempDir(), "layout")
	runSkopeo(t, bin, "copy", "--src-tls-verify=false", "docker://"+reg.Host+"/lading/pushed:v1", "oci:"+dir+":copied")
	for d, data := range img.Blobs {
		got, err := os.ReadFile(filepath.Join(dir, "blobs", "sha256", d.Encoded()))
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("skopeo's copy of %s: %v", d, err)
		}
	}
	got, err := os.ReadFile(filepath.Join(dir, "blobs", "sha256", img.Manifest.Digest.Encoded()))
	if err != nil || !bytes.Equal(got, img.ManifestData) {
		t.Fatalf("skopeo's copy of the manifest: %v", err)
	}
}

// TestWePullWhatSkopeoPushes: skopeo pushes a layout; the client reads
// the image back, verified, byte for byte.
func TestWePullWhatSkopeoPushes(t *testing.T) {
	bin := skopeo(t)
	reg := registrytest.Start(t, registrytest.Distribution28(t), "")
	img := newTestImage(t, 2, 80_000)
	dir := filepath.Join(t.TempDir(), "src")
	img.writeLayout(t, dir, "src")
	runSkopeo(t, bin, "copy", "--dest-tls-verify=false", "oci:"+dir+":src", "docker://"+reg.Host+"/skopeo/pushed:s1")

	repo, _ := newTestClient(t).Repository(reg.Host, "skopeo/pushed")
	ctx := context.Background()
	desc, data, err := repo.FetchReference(ctx, "s1")
	if err != nil {
		t.Fatal(err)
	}
	if desc.Digest != img.Manifest.Digest || !bytes.Equal(data, img.ManifestData) {
		t.Fatalf("manifest pushed by skopeo: %s, want %s", desc.Digest, img.Manifest.Digest)
	}
	var m ocispec.Manifest
	json.Unmarshal(data, &m)
	for _, d := range append([]ocispec.Descriptor{m.Config}, m.Layers...) {
		rc, err := repo.Fetch(ctx, d)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || !bytes.Equal(got, img.Blobs[d.Digest]) {
			t.Fatalf("blob %s: %v", d.Digest, err)
		}
	}
	tags := tagsOf(t, repo)
	if len(tags) != 1 || tags[0] != "s1" {
		t.Fatalf("tags = %v", tags)
	}
}
