package image

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// addSeeds adds the spec examples and the test documents to a fuzz corpus.
func addSeeds(f *testing.F) {
	files, _ := filepath.Glob("testdata/spec/*.json")
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, s := range []string{baseOCIManifest, baseArtifactManifest, baseDockerManifest, baseOCIIndex, baseDockerList, baseConfig,
		`{"imageLayoutVersion":"1.0.0"}`, `{"schemaVersion":1}`, `{}`, `[]`, `{"a":{"a":[{"a":null}]}}`} {
		f.Add([]byte(s))
	}
}

// fixedPoint checks that a decoded value re-marshals to a document that
// decodes again to the same bytes.
func fixedPoint[T any](t *testing.T, v *T, decode func([]byte, ...DecodeOption) (*T, error)) {
	t.Helper()
	out, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("accepted document does not re-marshal: %v", err)
	}
	v2, err := decode(out)
	if err != nil {
		t.Fatalf("re-marshalled document is refused: %v\n%s", err, out)
	}
	out2, err := json.Marshal(v2)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out, out2) {
		t.Fatalf("not a fixed point:\n%s\n%s", out, out2)
	}
}

func FuzzDecodeManifest(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := DecodeManifest(data)
		if err != nil {
			return
		}
		fixedPoint(t, m, DecodeManifest)
	})
}

func FuzzDecodeIndex(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		idx, err := DecodeIndex(data)
		if err != nil {
			return
		}
		fixedPoint(t, idx, DecodeIndex)
	})
}

func FuzzDecodeConfig(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		img, err := DecodeConfig(data)
		if err != nil {
			return
		}
		fixedPoint(t, img, DecodeConfig)
	})
}

// FuzzValidate checks that whatever Validate accepts with the document
// deciding its own type is accepted again, as that type, once decoded and
// re-marshalled.
func FuzzValidate(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := Validate("", data); err != nil {
			return
		}
		mt := MediaTypeOf(data)
		var v any
		var err error
		switch {
		case IsManifest(mt):
			v, err = DecodeManifest(data)
		case IsIndex(mt):
			v, err = DecodeIndex(data)
		case mt == "application/vnd.oci.image.config.v1+json":
			v, err = DecodeConfig(data)
		case mt == "application/vnd.oci.descriptor.v1+json":
			v, err = DecodeDescriptor(data)
		case mt == "application/vnd.oci.layout.header.v1+json":
			return
		default:
			t.Fatalf("Validate accepted a document of type %q", mt)
		}
		if err != nil {
			t.Fatalf("Validate accepted what the decoder refuses: %v", err)
		}
		out, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		if err := Validate("", out); err != nil {
			t.Fatalf("re-marshalled document is refused: %v\n%s", err, out)
		}
	})
}
