package layer_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/lading-oci/lading/layer"
)

// ExampleCreate makes a reproducible gzip layer from a directory: with a
// fixed timestamp and owner, the same tree gives the same bytes anywhere.
func ExampleCreate() {
	dir, err := os.MkdirTemp("", "tree")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	os.MkdirAll(filepath.Join(dir, "etc"), 0o755)
	os.WriteFile(filepath.Join(dir, "etc/hostname"), []byte("app\n"), 0o644)

	build := func() layer.Result {
		ts := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
		root := 0
		var blob bytes.Buffer
		res, err := layer.Create(context.Background(), dir, &blob, layer.Options{
			Compression: layer.Gzip,
			Timestamp:   &ts,
			UID:         &root,
			GID:         &root,
		})
		if err != nil {
			panic(err)
		}
		return res
	}
	a, b := build(), build()
	fmt.Println(a.Descriptor.MediaType)
	fmt.Println("same digest twice:", a.Descriptor.Digest == b.Descriptor.Digest)
	fmt.Println("diff_id differs from digest:", a.DiffID != a.Descriptor.Digest)
	// Output:
	// application/vnd.oci.image.layer.v1.tar+gzip
	// same digest twice: true
	// diff_id differs from digest: true
}
