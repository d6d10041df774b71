package dockerarchive_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/lading-oci/lading/content"
	"github.com/lading-oci/lading/content/contenttest"
	"github.com/lading-oci/lading/content/dockerarchive"
	"github.com/lading-oci/lading/content/ociarchive"
	"github.com/lading-oci/lading/transfer"
)

// TestBetweenArchives moves an image from an oci-archive to a
// docker-archive and back with transfer.CopyGraph (concurrently, so pushes
// meet a busy archive), checking it at each step.
func TestBetweenArchives(t *testing.T) {
	ctx := context.Background()
	img := contenttest.MakeImage(t, map[string]string{"a": "alpha"}, map[string]string{"b": "beta"}, map[string]string{"c": "gamma"})
	dir := t.TempDir()

	ociPath := filepath.Join(dir, "oci.tar")
	ow, err := ociarchive.Create(ctx, ociPath)
	if err != nil {
		t.Fatal(err)
	}
	img.Push(t, ow)
	ow.Tag(ctx, img.Manifest, "v1")
	if err := ow.Close(); err != nil {
		t.Fatal(err)
	}
	or, err := ociarchive.Open(ctx, ociPath)
	if err != nil {
		t.Fatal(err)
	}
	defer or.Close()

	dockerPath := filepath.Join(dir, "docker.tar")
	dw, err := dockerarchive.Create(ctx, dockerPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := transfer.CopyGraph(ctx, or, dw, img.Manifest, transfer.CopyOptions{Concurrency: 4}); err != nil {
		t.Fatal(err)
	}
	if err := dw.Tag(ctx, img.Manifest, "example.com/app:v1"); err != nil {
		t.Fatal(err)
	}
	if err := dw.Close(); err != nil {
		t.Fatal(err)
	}
	dr := open(t, dockerPath)
	d, err := dr.Resolve(ctx, "example.com/app:v1")
	if err != nil {
		t.Fatal(err)
	}
	loadAndCheck(t, dr, d, img)

	backPath := filepath.Join(dir, "back.tar")
	bw, err := ociarchive.Create(ctx, backPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := transfer.CopyGraph(ctx, dr, bw, d, transfer.CopyOptions{Concurrency: 4}); err != nil {
		t.Fatal(err)
	}
	bw.Tag(ctx, d, "v1")
	if err := bw.Close(); err != nil {
		t.Fatal(err)
	}
	br, err := ociarchive.Open(ctx, backPath)
	if err != nil {
		t.Fatal(err)
	}
	defer br.Close()
	li, err := content.LoadImage(ctx, br, d, nil)
	if err != nil {
		t.Fatal(err)
	}
	if li.Manifest.Config.Digest != img.Config.Digest || len(li.Manifest.Layers) != 3 {
		t.Fatalf("back: %+v", li.Manifest)
	}
}
