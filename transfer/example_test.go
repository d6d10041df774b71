package transfer_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/lading-oci/lading/mutate"
	"github.com/lading-oci/lading/ref"
	"github.com/lading-oci/lading/transfer"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Example copies an image from one layout to another, as `lading copy`
// does: open both references, then copy, children first.
func Example() {
	ctx := context.Background()
	tmp, _ := os.MkdirTemp("", "transfer-example")
	defer os.RemoveAll(tmp)

	// An image to copy: an empty one, tagged app.
	srcRef, _ := ref.Parse("oci:" + filepath.Join(tmp, "src") + ":app")
	src, err := transfer.Open(ctx, srcRef, transfer.OpenOptions{Create: true})
	if err != nil {
		panic(err)
	}
	defer src.Close()
	st, _ := src.Layout()
	desc, _ := mutate.Write(ctx, st, mutate.New(ocispec.Platform{OS: "linux", Architecture: "amd64"}))
	_ = src.Store.Tag(ctx, desc, "app")

	dstRef, _ := ref.Parse("oci:" + filepath.Join(tmp, "dst") + ":copied")
	dst, err := transfer.Open(ctx, dstRef, transfer.OpenOptions{Create: true})
	if err != nil {
		panic(err)
	}
	defer dst.Close()
	copied, err := transfer.Copy(ctx, src, dst, transfer.CopyOptions{})
	if err != nil {
		panic(err)
	}
	again, _ := dst.Resolve(ctx)
	fmt.Println(copied.Copied.Digest == desc.Digest, again.Digest == desc.Digest)
	// Output: true true
}
