package ref_test

import (
	"fmt"

	"github.com/lading-oci/lading/ref"
)

func ExampleParse() {
	for _, s := range []string{"busybox", "ghcr.io/org/app:v1", "oci:/srv/images/app:stable", "docker-archive:app.tar:app:v1"} {
		r, err := ref.Parse(s)
		if err != nil {
			fmt.Println(err)
			continue
		}
		fmt.Printf("%-14s path=%q name=%q tag=%q -> %s\n", r.Scheme(), r.Path(), r.Name(), r.Tag(), r)
	}
	_, err := ref.Parse("Busybox")
	fmt.Println(err)
	// Output:
	// docker         path="" name="docker.io/library/busybox" tag="latest" -> docker.io/library/busybox:latest
	// docker         path="" name="ghcr.io/org/app" tag="v1" -> ghcr.io/org/app:v1
	// oci            path="/srv/images/app" name="" tag="stable" -> oci:/srv/images/app:stable
	// docker-archive path="app.tar" name="docker.io/library/app" tag="v1" -> docker-archive:app.tar:docker.io/library/app:v1
	// reference "Busybox": invalid: repository name "Busybox" must be lowercase
}
