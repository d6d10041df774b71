package image

import (
	"os"
	"path/filepath"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// specExamples are the JSON examples of the image specification, copied into
// testdata/spec, with the media type the specification gives each.
var specExamples = map[string]string{
	"descriptor-0.json":   ocispec.MediaTypeDescriptor,
	"descriptor-1.json":   ocispec.MediaTypeDescriptor,
	"descriptor-2.json":   ocispec.MediaTypeDescriptor,
	"manifest-0.json":     ocispec.MediaTypeImageManifest,
	"manifest-1.json":     ocispec.MediaTypeDescriptor,
	"manifest-2.json":     ocispec.MediaTypeImageManifest,
	"manifest-3.json":     ocispec.MediaTypeImageManifest,
	"manifest-4.json":     ocispec.MediaTypeImageManifest,
	"image-index-0.json":  ocispec.MediaTypeImageIndex,
	"image-index-1.json":  ocispec.MediaTypeImageIndex,
	"config-0.json":       ocispec.MediaTypeImageConfig,
	"image-layout-0.json": ocispec.MediaTypeLayoutHeader,
	"image-layout-1.json": ocispec.MediaTypeImageIndex,
}

func TestSpecExamples(t *testing.T) {
	files, err := filepath.Glob("testdata/spec/*.json")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != len(specExamples) {
		t.Fatalf("testdata/spec holds %d files, the table %d", len(files), len(specExamples))
	}
	for _, f := range files {
		name := filepath.Base(f)
		mt, ok := specExamples[name]
		if !ok {
			t.Fatalf("%s: no media type in the table", name)
		}
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if err := Validate(mt, data); err != nil {
				t.Errorf("Validate(%s): %v", mt, err)
			}
			if err := Validate("", data); err != nil {
				t.Errorf("Validate(\"\"): %v", err)
			}
			if got := MediaTypeOf(data); got != mt {
				t.Errorf("MediaTypeOf = %q, want %q", got, mt)
			}
		})
	}
}
