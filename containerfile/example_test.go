package containerfile_test

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/lading-oci/lading/container"
	"github.com/lading-oci/lading/containerfile"
	"github.com/lading-oci/lading/content/ocilayout"
)

// Parse checks a Containerfile and reports problems with their line.
func ExampleParse() {
	_, err := containerfile.Parse("Containerfile", []byte("FROM scratch\nCOPY app /app\nHEALTHCHECK CMD true\n"))
	var fe *containerfile.Error
	if errors.As(err, &fe) {
		fmt.Println(fe.Line)
		fmt.Println(err)
	}
	// Output:
	// 3
	// Containerfile:3: unsupported: HEALTHCHECK: OCI image configurations have no health check
}

// Build a Containerfile into an OCI layout and tag the result.
func ExampleBuild() {
	ctx := context.Background()
	data, err := os.ReadFile("Containerfile")
	if err != nil {
		fmt.Println(err)
		return
	}
	file, err := containerfile.Parse("Containerfile", data)
	if err != nil {
		fmt.Println(err)
		return
	}
	st, err := ocilayout.Init(ctx, "./images")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer st.Close()
	cache, err := container.OpenCache("")
	if err != nil {
		fmt.Println(err)
		return
	}
	res, err := containerfile.Build(ctx, containerfile.Options{
		Store: st, File: file, ContextDir: ".", Cache: cache, Stdout: os.Stdout, Stderr: os.Stderr,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := st.Tag(ctx, res.Image.Desc, "app"); err != nil {
		fmt.Println(err)
	}
}
