package client_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"os"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/lading-oci/lading/content"
	"github.com/lading-oci/lading/ref"
	"github.com/lading-oci/lading/registry/client"
	"github.com/lading-oci/lading/registry/credentials"
)

// A client with the docker CLI's credentials, pulling an image's manifest
// and config.
func Example() {
	ctx := context.Background()
	store, err := credentials.NewStore(credentials.Options{})
	if err != nil {
		log.Fatal(err)
	}
	c, err := client.New(client.WithCredentialLookup(func(ctx context.Context, registry, repository string) (credentials.Credential, string, error) {
		cred, src, err := store.Lookup(ctx, registry, repository)
		return cred, src.String(), err
	}))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	r, err := ref.Parse("registry.example.com/team/app:v1")
	if err != nil {
		log.Fatal(err)
	}
	repo, err := c.RepositoryOf(r)
	if err != nil {
		log.Fatal(err)
	}
	desc, err := repo.Resolve(ctx, r.Tag())
	if err != nil {
		log.Fatal(err)
	}
	img, err := content.LoadImage(ctx, repo, desc, nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(desc.Digest, len(img.Manifest.Layers), "layers")
}

// Pushing a blob and a manifest that names it, with two tags at once.
func ExampleRepository_PushManifest() {
	ctx := context.Background()
	c, _ := client.New(client.WithPlainHTTP("localhost:5000"))
	repo, _ := c.Repository("localhost:5000", "demo/artifact")

	data := []byte("any artifact: a Helm chart, a WASM module, model weights")
	layer := ocispec.Descriptor{MediaType: "application/vnd.example.data", Digest: digest.FromBytes(data), Size: int64(len(data))}
	if err := repo.Push(ctx, layer, strings.NewReader(string(data))); err != nil {
		log.Fatal(err)
	}
	empty := ocispec.DescriptorEmptyJSON
	if err := repo.Push(ctx, empty, strings.NewReader("{}")); err != nil {
		log.Fatal(err)
	}
	manifest := fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"artifactType":"application/vnd.example","config":{"mediaType":%q,"digest":%q,"size":2},"layers":[{"mediaType":%q,"digest":%q,"size":%d}]}`,
		ocispec.MediaTypeImageManifest, empty.MediaType, empty.Digest, layer.MediaType, layer.Digest, layer.Size)
	desc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromString(manifest), Size: int64(len(manifest))}
	if err := repo.PushManifest(ctx, desc, []byte(manifest), "v1", "latest"); err != nil {
		log.Fatal(err)
	}
}

// Streaming a blob; the reader fails at the end if the content does not
// match the descriptor.
func ExampleRepository_Fetch() {
	ctx := context.Background()
	c, _ := client.New()
	repo, _ := c.Repository("ghcr.io", "org/app")
	layer := ocispec.Descriptor{
		MediaType: ocispec.MediaTypeImageLayerGzip,
		Digest:    "sha256:0000000000000000000000000000000000000000000000000000000000000000",
		Size:      1234,
	}
	rc, err := repo.Fetch(ctx, layer)
	if err != nil {
		log.Fatal(err)
	}
	defer rc.Close()
	if _, err := io.Copy(io.Discard, rc); err != nil {
		log.Fatal(err) // a digest or size mismatch shows here
	}
}

// A chunked upload that another process can finish from its location.
func ExampleRepository_Ingest() {
	ctx := context.Background()
	c, _ := client.New(client.WithChunkSize(16 << 20))
	repo, _ := c.Repository("registry.example.com", "team/big")
	w, err := repo.Ingest(ctx, "")
	if err != nil {
		log.Fatal(err)
	}
	f, _ := os.Open("layer.tar.gz")
	defer f.Close()
	if _, err := io.Copy(w, f); err != nil {
		w.Close() // keeps the upload
		fmt.Println("resume with", w.(*client.UploadWriter).Location())
		log.Fatal(err)
	}
	if _, err := w.Commit(ctx, -1, "sha256:0000000000000000000000000000000000000000000000000000000000000000"); err != nil {
		log.Fatal(err)
	}
}

// The artifacts that refer to an image: signatures, SBOMs.
func ExampleRepository_Referrers() {
	ctx := context.Background()
	c, _ := client.New()
	repo, _ := c.Repository("ghcr.io", "org/app")
	subject, err := repo.Resolve(ctx, "v1")
	if err != nil {
		log.Fatal(err)
	}
	sboms, err := repo.Referrers(ctx, subject, "application/spdx+json")
	if err != nil {
		log.Fatal(err)
	}
	for _, d := range sboms {
		fmt.Println(d.Digest, d.Annotations)
	}
}

// Copying a blob between repositories of one registry without sending it.
func ExampleRepository_Mount() {
	ctx := context.Background()
	c, _ := client.New()
	dst, _ := c.Repository("registry.example.com", "team/app")
	layer := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: "sha256:0000000000000000000000000000000000000000000000000000000000000000", Size: 1234}
	if err := dst.Mount(ctx, layer, "team/base", nil); err != nil {
		log.Fatal(err)
	}
}

// Listing tags and repositories page by page.
func ExampleClient_Catalog() {
	ctx := context.Background()
	c, _ := client.New(client.WithPlainHTTP("localhost:5000"))
	if err := c.Ping(ctx, "localhost:5000"); err != nil {
		log.Fatal(err)
	}
	err := c.Catalog(ctx, "localhost:5000", func(repos []string) error {
		for _, name := range repos {
			repo, err := c.Repository("localhost:5000", name)
			if err != nil {
				return err
			}
			if err := repo.Tags(ctx, func(tags []string) error {
				fmt.Println(name, tags)
				return nil
			}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		log.Fatal(err)
	}
}
