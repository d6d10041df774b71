package ocilayout_test

import (
	"bytes"
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/lading-oci/lading/content/ocilayout"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Create a layout, store an artifact manifest in it, tag it, and resolve
// the tag.
func Example() {
	tmp, err := os.MkdirTemp("", "example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	ctx := context.Background()

	store, err := ocilayout.Init(context.Background(), filepath.Join(tmp, "layout"))
	if err != nil {
		log.Fatal(err)
	}

	// The empty config, then a manifest that uses it.
	empty := ocispec.DescriptorEmptyJSON
	if err := store.Push(ctx, empty, bytes.NewReader(empty.Data)); err != nil {
		log.Fatal(err)
	}
	manifest := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",` +
		`"artifactType":"application/vnd.example.note","config":{"mediaType":"application/vnd.oci.empty.v1+json",` +
		`"digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},` +
		`"layers":[{"mediaType":"application/vnd.oci.empty.v1+json",` +
		`"digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2}]}`)
	desc := ocispec.Descriptor{
		MediaType: ocispec.MediaTypeImageManifest,
		Digest:    digest.FromBytes(manifest),
		Size:      int64(len(manifest)),
	}
	if err := store.Push(ctx, desc, bytes.NewReader(manifest)); err != nil {
		log.Fatal(err)
	}
	if err := store.Tag(ctx, desc, "v1"); err != nil {
		log.Fatal(err)
	}

	got, err := store.Resolve(ctx, "v1")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(got.Digest == desc.Digest, got.MediaType, got.Annotations[ocispec.AnnotationRefName])

	report, err := store.Verify(ctx, ocilayout.VerifyOptions{})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("blobs:", report.Blobs, "problems:", len(report.Problems))
	// Output:
	// true application/vnd.oci.image.manifest.v1+json v1
	// blobs: 2 problems: 0
}
