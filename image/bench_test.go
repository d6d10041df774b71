package image

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// bigManifest builds a manifest with n layers.
func bigManifest(n int) []byte {
	var b strings.Builder
	b.WriteString(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"` + dgC + `","size":7023},"layers":[`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"%s","size":%d,"annotations":{"k":"v"}}`, dgA, i)
	}
	b.WriteString(`]}`)
	return []byte(b.String())
}

func BenchmarkDecodeManifest(b *testing.B) {
	for _, n := range []int{3, 100, 10000} {
		data := bigManifest(n)
		b.Run(fmt.Sprintf("layers=%d", n), func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := DecodeManifest(data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkStdlibUnmarshal is the floor: encoding/json into the struct, with
// no validation.
func BenchmarkStdlibUnmarshal(b *testing.B) {
	data := bigManifest(100)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		var m struct {
			Layers []json.RawMessage
		}
		if err := json.Unmarshal(data, &m); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeConfig(b *testing.B) {
	data := []byte(baseConfig)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeConfig(data); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWorstCase parses a maximal document made of the smallest tokens.
func BenchmarkWorstCase(b *testing.B) {
	n := (MaxDocumentBytes - 100) / 2
	data := []byte(`{"x":[` + strings.Repeat("0,", n-1) + `0]}`)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if err := Validate("", data); err == nil {
			b.Fatal("accepted a document of unknown shape")
		}
	}
}
