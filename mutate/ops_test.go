package mutate

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/lading-oci/lading/content"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func TestMutateSetsAndRemoves(t *testing.T) {
	ctx := context.Background()
	s, img := twoLayers(t)
	wd := "/srv"
	d, err := Mutate(ctx, s, img, MutateOptions{Changes: ConfigChanges{
		Env: []string{"A=1", "B=2"}, Labels: map[string]string{"x": "1", "y": "2"}, ExposedPorts: []string{"80", "443"},
		Volumes: []string{"/data"}, WorkingDir: &wd, Annotations: map[string]string{"note": "n"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	m1, err := content.LoadImage(ctx, s, d, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(m1.Manifest.Layers) != len(img.Manifest.Layers) || m1.Manifest.Layers[1].Digest != img.Manifest.Layers[1].Digest {
		t.Error("mutate changed the layers")
	}
	d2, err := Mutate(ctx, s, m1, MutateOptions{Changes: ConfigChanges{
		RemoveEnv: []string{"A"}, RemoveLabels: []string{"x"}, RemoveExposedPorts: []string{"80"}, RemoveVolumes: []string{"/data"},
		RemoveAnnotations: []string{"note"}, Env: []string{"C=3"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	m2, err := content.LoadImage(ctx, s, d2, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := m2.ConfigFile.Config
	if len(c.Env) != 2 || c.Env[0] != "B=2" || c.Env[1] != "C=3" {
		t.Errorf("Env %v", c.Env)
	}
	if _, ok := c.Labels["x"]; ok || c.Labels["y"] != "2" {
		t.Errorf("Labels %v", c.Labels)
	}
	if _, ok := c.ExposedPorts["80/tcp"]; ok || len(c.ExposedPorts) != 1 || len(c.Volumes) != 0 || c.WorkingDir != "/srv" {
		t.Errorf("config %+v", c)
	}
	if _, ok := m2.Manifest.Annotations["note"]; ok {
		t.Error("annotation not removed")
	}
	// The first image is untouched.
	if len(m1.ConfigFile.Config.Env) != 2 || m1.ConfigFile.Config.Env[0] != "A=1" {
		t.Errorf("mutate changed its base: %v", m1.ConfigFile.Config.Env)
	}
}

func TestFlattenImage(t *testing.T) {
	ctx := context.Background()
	s, img := twoLayers(t)
	d, err := Flatten(ctx, s, img, FlattenOptions{Changes: ConfigChanges{Env: []string{"FLAT=1"}}})
	if err != nil {
		t.Fatal(err)
	}
	flat, err := content.LoadImage(ctx, s, d, &ocispec.Platform{OS: "linux", Architecture: "amd64"})
	if err != nil {
		t.Fatal(err)
	}
	if len(flat.Manifest.Layers) != 1 || len(flat.ConfigFile.History) != 1 || flat.ConfigFile.Config.Env[len(flat.ConfigFile.Config.Env)-1] != "FLAT=1" {
		t.Fatalf("flattened image %+v", flat.Manifest)
	}
	a, b := filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b")
	if err := Unpack(ctx, s, img, a, UnpackOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := Unpack(ctx, s, flat, b, UnpackOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"cu1/numbers", "cu2/numbers"} {
		x, err1 := os.ReadFile(filepath.Join(a, f))
		y, err2 := os.ReadFile(filepath.Join(b, f))
		if err1 != nil || err2 != nil || string(x) != string(y) {
			t.Errorf("%s differs after flatten: %v %v", f, err1, err2)
		}
	}
	if _, err := Flatten(ctx, s, img, FlattenOptions{MaxBytes: 100}); err == nil {
		t.Error("flatten ignored the layer size cap")
	}
}
