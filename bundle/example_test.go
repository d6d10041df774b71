package bundle_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/lading-oci/lading/bundle"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Generate turns an image configuration into config.json for a runtime.
func ExampleGenerate() {
	dir, _ := os.MkdirTemp("", "bundle-example-")
	defer os.RemoveAll(dir)
	rootfs := filepath.Join(dir, "rootfs")
	_ = os.MkdirAll(filepath.Join(rootfs, "etc"), 0o755)
	_ = os.WriteFile(filepath.Join(rootfs, "etc/passwd"), []byte("app:x:100:101::/home/app:/bin/sh\n"), 0o644)

	img := &ocispec.Image{Config: ocispec.ImageConfig{
		User:       "app",
		Entrypoint: []string{"/bin/server"},
		Cmd:        []string{"--port", "8080"},
		WorkingDir: "/srv",
	}}
	spec, err := bundle.Generate(context.Background(), img, rootfs, bundle.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := bundle.WriteConfig(context.Background(), dir, spec); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(spec.Process.Args, spec.Process.Cwd, spec.Process.User.UID, spec.Process.User.GID)
	// Output: [/bin/server --port 8080] /srv 100 101
}

// ResolveUser reads the image's own /etc/passwd and /etc/group.
func ExampleResolveUser() {
	rootfs, _ := os.MkdirTemp("", "rootfs-example-")
	defer os.RemoveAll(rootfs)
	_ = os.MkdirAll(filepath.Join(rootfs, "etc"), 0o755)
	_ = os.WriteFile(filepath.Join(rootfs, "etc/passwd"), []byte("app:x:100:101::/home/app:/bin/sh\n"), 0o644)
	_ = os.WriteFile(filepath.Join(rootfs, "etc/group"), []byte("app:x:101:\nwheel:x:10:app\n"), 0o644)
	for _, spec := range []string{"app", "app:wheel", "1000:1000"} {
		u, home, err := bundle.ResolveUser(context.Background(), rootfs, spec)
		fmt.Println(spec, u.UID, u.GID, u.AdditionalGids, home, err)
	}
	// Output:
	// app 100 101 [10] /home/app <nil>
	// app:wheel 100 10 [] /home/app <nil>
	// 1000:1000 1000 1000 []  <nil>
}
