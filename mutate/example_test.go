package mutate_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/lading-oci/lading/content/ocilayout"
	"github.com/lading-oci/lading/layer"
	"github.com/lading-oci/lading/mutate"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Build an image from a directory into an OCI layout, reproducibly, and tag it.
func ExampleBuild() {
	ctx := context.Background()
	tmp, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(tmp)
	src := filepath.Join(tmp, "src")
	_ = os.MkdirAll(filepath.Join(src, "etc"), 0o755)
	_ = os.WriteFile(filepath.Join(src, "etc", "motd"), []byte("hello\n"), 0o644)

	store, err := ocilayout.Init(context.Background(), filepath.Join(tmp, "images"))
	if err != nil {
		fmt.Println(err)
		return
	}
	epoch := time.Unix(0, 0)
	desc, err := mutate.Build(ctx, store, src, mutate.BuildOptions{
		LayerOptions: mutate.LayerOptions{Compression: layer.Gzip, Timestamp: &epoch},
		Platform:     &ocispec.Platform{OS: "linux", Architecture: "amd64"},
		Changes:      mutate.ConfigChanges{Entrypoint: []string{"/bin/cat", "/etc/motd"}},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := store.Tag(ctx, desc, "hello"); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(desc.MediaType, desc.Platform.Architecture)
	// Output: application/vnd.oci.image.manifest.v1+json amd64
}
