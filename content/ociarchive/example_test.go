package ociarchive_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/lading-oci/lading/content"
	"github.com/lading-oci/lading/content/ociarchive"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Writing an archive: push blobs, tag, and Close (Abort on failure).
func ExampleCreate() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "app.tar")

	w, err := ociarchive.Create(ctx, path)
	if err != nil {
		fmt.Println(err)
		return
	}
	blob := []byte(`{"hello":"world"}`)
	desc := ocispec.Descriptor{MediaType: "application/json", Digest: digest.FromBytes(blob), Size: int64(len(blob))}
	if err := w.Push(ctx, desc, bytes.NewReader(blob)); err != nil {
		w.Abort()
		fmt.Println(err)
		return
	}
	if err := w.Tag(ctx, desc, "v1"); err != nil {
		w.Abort()
		fmt.Println(err)
		return
	}
	if err := w.Close(); err != nil {
		fmt.Println(err)
		return
	}

	r, err := ociarchive.Open(ctx, path)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer r.Close()
	got, _ := r.Resolve(ctx, "v1")
	data, _ := content.ReadAll(ctx, r, got, 0)
	fmt.Printf("%v %s\n", got.Digest == desc.Digest, data)
	// Output: true {"hello":"world"}
}

// Reading an archive skopeo or buildah wrote: resolve a tag and load the
// image (blobs are verified as they are read).
func ExampleOpen() {
	ctx := context.Background()
	r, err := ociarchive.Open(ctx, "image.tar")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer r.Close()
	desc, err := r.Resolve(ctx, "latest")
	if err != nil {
		fmt.Println(err)
		return
	}
	img, err := content.LoadImage(ctx, r, desc, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(len(img.Manifest.Layers), "layers")
	// Output: open archive image.tar: not found
}
