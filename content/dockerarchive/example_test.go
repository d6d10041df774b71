package dockerarchive_test

import (
	"context"
	"fmt"

	"github.com/lading-oci/lading/content"
	"github.com/lading-oci/lading/content/dockerarchive"
	"github.com/lading-oci/lading/ref"
)

// Reading `docker save` output: select the image a reference names and
// load it; layers are verified as they are read.
func ExampleOpen() {
	ctx := context.Background()
	sel, _ := ref.Parse("docker-archive:saved.tar:busybox:latest")
	r, err := dockerarchive.Open(ctx, sel.Path())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer r.Close()
	desc, err := r.Select(ctx, sel)
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
	// Output: open archive saved.tar: not found
}

// Writing an archive that docker load reads: push an image's blobs (from
// any store), tag it, and Close; Abort on failure.
func ExampleCreate() {
	ctx := context.Background()
	w, err := dockerarchive.Create(ctx, "/nonexistent/out.tar")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer w.Close()
	// Push the layers, config and manifest with content.Copy, then:
	// w.Tag(ctx, manifestDesc, "example.com/app:v1")
	// Output: create archive /nonexistent/out.tar: directory /nonexistent: not found
}
