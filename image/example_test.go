package image_test

import (
	"errors"
	"fmt"

	"github.com/lading-oci/lading/errdef"
	"github.com/lading-oci/lading/image"
)

func ExampleValidate() {
	manifest := []byte(`{
	  "schemaVersion": 2,
	  "mediaType": "application/vnd.oci.image.manifest.v1+json",
	  "config": {
	    "mediaType": "application/vnd.oci.image.config.v1+json",
	    "digest": "sha256:b5b2b2c507a0944348e0303114d8d93aaaa081732b86451d9bce1f432a537bc7",
	    "size": "7023"
	  },
	  "layers": [
	    {
	      "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
	      "digest": "sha256:9834876DCFB05CB167A5C24953EBA58C4AC89B1ADF57F28F2F9D09AF107EE8F0",
	      "size": 32654
	    }
	  ]
	}`)
	err := image.Validate("", manifest)
	fmt.Println(err)
	fmt.Println(errors.Is(err, errdef.ErrInvalid))
	// Output:
	// manifest.config.size: must be an integer, got string
	// manifest.layers[0].digest: invalid sha256 digest "sha256:9834876DCFB05CB167A5C24953EBA58C4AC89B1ADF57F28F2F9D09AF107EE8F0": encoded part must be 64 lowercase hexadecimal characters
	// true
}

func ExampleMatchPlatform() {
	want, _ := image.ParsePlatform("linux/arm64/v8")
	have, _ := image.ParsePlatform("linux/aarch64")
	fmt.Println(image.FormatPlatform(have), image.MatchPlatform(want, have))
	// Output: linux/arm64 true
}
