//go:build linux

package unpack_test

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/lading-oci/lading/layer/unpack"
)

// layerOf makes an uncompressed layer of regular files and whiteouts.
func layerOf(files map[string]string, whiteouts ...string) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, w := range whiteouts {
		tw.WriteHeader(&tar.Header{Name: w, Typeflag: tar.TypeReg, Mode: 0o644})
	}
	for name, body := range files {
		tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(body))})
		tw.Write([]byte(body))
	}
	tw.Close()
	return buf.Bytes()
}

// ExampleApplyLayers unpacks a two-layer image: the second layer replaces a
// file and deletes another with a whiteout.
func ExampleApplyLayers() {
	root, err := os.MkdirTemp("", "rootfs")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(root)

	blobs := [][]byte{
		layerOf(map[string]string{"etc/hostname": "base\n", "tmp/cache": "junk\n"}),
		layerOf(map[string]string{"etc/hostname": "app\n"}, "tmp/.wh.cache"),
	}
	var layers []unpack.Layer
	for i, blob := range blobs {
		layers = append(layers, unpack.Layer{
			Open: func(context.Context) (io.ReadCloser, error) {
				return io.NopCloser(bytes.NewReader(blob)), nil
			},
			Name: fmt.Sprintf("layer-%d", i),
		})
	}
	if _, err := unpack.ApplyLayers(context.Background(), root, layers, unpack.Options{Rootless: true}); err != nil {
		panic(err)
	}
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			b, _ := os.ReadFile(p)
			rel, _ := filepath.Rel(root, p)
			fmt.Printf("%s: %s", rel, b)
		}
		return err
	})
	// Output:
	// etc/hostname: app
}
