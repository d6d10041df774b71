package container_test

import (
	"context"
	"fmt"
	"os"

	"github.com/lading-oci/lading/bundle"
	"github.com/lading-oci/lading/container"
	"github.com/lading-oci/lading/content"
	"github.com/lading-oci/lading/content/ocilayout"
)

// Run an image from an OCI layout with whichever runtime works here.
func ExampleRun() {
	ctx := context.Background()
	st, err := ocilayout.Open(ctx, "./images")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer st.Close()
	desc, err := st.Resolve(ctx, "app")
	if err != nil {
		fmt.Println(err)
		return
	}
	img, err := content.LoadImage(ctx, st, desc, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	cache, err := container.OpenCache("") // $XDG_CACHE_HOME/lading
	if err != nil {
		fmt.Println(err)
		return
	}
	rt, err := container.FindRuntime(ctx, "", container.FindOptions{CacheDir: cache.Dir})
	if err != nil {
		fmt.Println(err)
		return
	}
	code, err := container.Run(ctx, st, img, container.Options{
		Options:     bundle.Options{Args: []string{"/bin/sh", "-c", "echo hello"}},
		Runtime:     rt,
		Cache:       cache,
		Remove:      true,
		ExecOptions: container.ExecOptions{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, ForwardSignals: true},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	os.Exit(code)
}

// Write a bundle any OCI runtime can run: runc run --bundle ./bundle app.
func ExampleWriteBundle() {
	ctx := context.Background()
	st, err := ocilayout.Open(ctx, "./images")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer st.Close()
	desc, err := st.Resolve(ctx, "app")
	if err != nil {
		fmt.Println(err)
		return
	}
	img, err := content.LoadImage(ctx, st, desc, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := container.WriteBundle(ctx, st, img, "./bundle", bundle.Options{}); err != nil {
		fmt.Println(err)
	}
}

// FindRuntime picks the OCI runtime: the one named, $LADING_RUNTIME, or the
// first on PATH that can start a container here.
func ExampleFindRuntime() {
	rt, err := container.FindRuntime(context.Background(), "", container.FindOptions{CacheDir: os.TempDir()})
	if err != nil {
		fmt.Println(err) // no runtime installed, or none works here, with each one's reason
		return
	}
	fmt.Println(rt.Name, rt.Path)
}
