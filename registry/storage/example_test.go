package storage_test

import (
	"bytes"
	"context"
	"fmt"
	"log"
	"os"

	"github.com/lading-oci/lading/registry/storage"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Open a registry root, push a blob into a repository and read it back;
// the repository is an OCI image layout under the root.
func ExampleOpen() {
	root, _ := os.MkdirTemp("", "registry")
	defer os.RemoveAll(root)
	ctx := context.Background()
	st, err := storage.Open(ctx, root, storage.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer st.Close()
	repo, err := st.Repository(ctx, "library/hello", true)
	if err != nil {
		log.Fatal(err)
	}
	data := []byte("hello")
	desc := ocispec.Descriptor{Digest: digest.FromBytes(data), Size: int64(len(data))}
	if _, err := repo.PushBlob(ctx, desc, bytes.NewReader(data)); err != nil {
		log.Fatal(err)
	}
	b, err := repo.OpenBlob(ctx, desc.Digest)
	if err != nil {
		log.Fatal(err)
	}
	defer b.Close()
	_, err = os.Stat(root + "/library/hello/oci-layout")
	fmt.Println(b.Desc.Size, err == nil)
	// Output: 5 true
}

// Upload a blob in two chunks, as a registry client would.
func ExampleRegistry_NewUpload() {
	root, _ := os.MkdirTemp("", "registry")
	defer os.RemoveAll(root)
	ctx := context.Background()
	st, _ := storage.Open(ctx, root, storage.Options{})
	defer st.Close()
	u, err := st.NewUpload(ctx, "app", "")
	if err != nil {
		log.Fatal(err)
	}
	defer u.Close()
	u.Append(ctx, bytes.NewReader([]byte("hello, ")), 0, 7)
	u.Append(ctx, bytes.NewReader([]byte("world")), 7, 5)
	desc, err := u.Commit(ctx, digest.FromString("hello, world"), 12)
	fmt.Println(desc.Size, err)
	// Output: 12 <nil>
}
