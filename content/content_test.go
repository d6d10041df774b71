package content_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/lading-oci/lading/content"
	"github.com/lading-oci/lading/content/memory"
	"github.com/lading-oci/lading/errdef"
	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func desc(mt string, data []byte) ocispec.Descriptor {
	return ocispec.Descriptor{MediaType: mt, Digest: digest.FromBytes(data), Size: int64(len(data))}
}

func TestVerifyReader(t *testing.T) {
	data := []byte("hello, layer")
	good := desc("application/octet-stream", data)
	cases := []struct {
		name string
		d    ocispec.Descriptor
		in   []byte
		want error
	}{
		{"ok", good, data, nil},
		{"short", good, data[:5], errdef.ErrSizeMismatch},
		{"long", good, append(append([]byte{}, data...), '!'), errdef.ErrSizeMismatch},
		{"corrupt", good, bytes.ToUpper(data), errdef.ErrDigestMismatch},
		{"sha512", ocispec.Descriptor{Digest: digest.SHA512.FromBytes(data), Size: int64(len(data))}, data, nil},
		{"unknown algorithm", ocispec.Descriptor{Digest: "md5:d41d8cd98f00b204e9800998ecf8427e", Size: 0}, nil, errdef.ErrUnsupported},
		{"grammatical unknown algorithm", ocispec.Descriptor{Digest: "sha256+b64u:LCa0a2j_xo_5m0U8HTBBNBNCLXBkg7-g-YpeiGJm564", Size: 12}, data, errdef.ErrUnsupported},
		{"negative size", ocispec.Descriptor{Digest: good.Digest, Size: -1}, data, errdef.ErrInvalid},
		{"malformed digest", ocispec.Descriptor{Digest: "sha256:abc", Size: 12}, data, errdef.ErrInvalid},
	}
	for _, c := range cases {
		vr := content.NewVerifyReader(bytes.NewReader(c.in), c.d)
		got, err := io.ReadAll(vr)
		if c.want == nil {
			if err != nil || !bytes.Equal(got, c.in) || vr.Verify() != nil {
				t.Errorf("%s: got %q, %v", c.name, got, err)
			}
			continue
		}
		if !errors.Is(err, c.want) {
			t.Errorf("%s: err = %v, want %v", c.name, err, c.want)
		}
		if int64(len(got)) > max(c.d.Size, 0) {
			t.Errorf("%s: passed %d bytes through, more than the declared %d", c.name, len(got), c.d.Size)
		}
	}
}

func TestReadAllCapsMetadata(t *testing.T) {
	ctx := context.Background()
	s := memory.New()
	data := []byte(`{"a":1}`)
	d := desc("application/json", data)
	if err := s.Push(ctx, d, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	if got, err := content.ReadAll(ctx, s, d, 0); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("ReadAll = %q, %v", got, err)
	}
	if _, err := content.ReadAll(ctx, s, d, 3); !errors.Is(err, errdef.ErrTooLarge) {
		t.Errorf("ReadAll over the cap: %v", err)
	}
	missing := desc("application/json", []byte("nope"))
	if _, err := content.ReadAll(ctx, s, missing, 0); !errors.Is(err, errdef.ErrNotFound) {
		t.Errorf("ReadAll of a missing blob: %v", err)
	}
}

// push marshals v, stores it and returns its descriptor.
func push(t *testing.T, s content.Pusher, mt string, v any) ocispec.Descriptor {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	d := desc(mt, data)
	if err := s.Push(context.Background(), d, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	return d
}

func TestWalkAndSelect(t *testing.T) {
	ctx := context.Background()
	s := memory.New()
	layerData := []byte("not really a layer")
	l := desc(ocispec.MediaTypeImageLayerGzip, layerData)
	if err := s.Push(ctx, l, bytes.NewReader(layerData)); err != nil {
		t.Fatal(err)
	}
	images := map[string]ocispec.Descriptor{}
	for _, arch := range []string{"amd64", "arm64"} {
		cfg := push(t, s, ocispec.MediaTypeImageConfig, ocispec.Image{
			Platform: ocispec.Platform{OS: "linux", Architecture: arch},
			RootFS:   ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{digest.FromString(arch)}},
		})
		m := push(t, s, ocispec.MediaTypeImageManifest, ocispec.Manifest{
			Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest,
			Config: cfg, Layers: []ocispec.Descriptor{l},
		})
		m.Platform = &ocispec.Platform{OS: "linux", Architecture: arch}
		images[arch] = m
	}
	idx := push(t, s, ocispec.MediaTypeImageIndex, ocispec.Index{
		Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex,
		Manifests: []ocispec.Descriptor{images["amd64"], images["arm64"]},
	})

	var seen []string
	err := content.WalkGraph(ctx, s, []ocispec.Descriptor{idx}, func(_ context.Context, d ocispec.Descriptor) error {
		seen = append(seen, d.MediaType)
		if d.Digest == images["arm64"].Digest {
			return content.ErrSkip
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// index, amd64 manifest, its config, the shared layer (once), arm64 manifest (skipped below).
	if want := 5; len(seen) != want {
		t.Errorf("walk visited %d descriptors (%v), want %d", len(seen), seen, want)
	}

	arm := ocispec.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}
	got, err := content.SelectManifest(ctx, s, idx, &arm)
	if err != nil || got.Digest != images["arm64"].Digest {
		t.Errorf("SelectManifest arm64: %v %v", got.Digest, err)
	}
	img, err := content.LoadImage(ctx, s, idx, &ocispec.Platform{OS: "linux", Architecture: "amd64"})
	if err != nil || img.ConfigFile.Architecture != "amd64" {
		t.Fatalf("LoadImage amd64: %v", err)
	}
	_, err = content.SelectManifest(ctx, s, idx, &ocispec.Platform{OS: "linux", Architecture: "s390x"})
	if !errors.Is(err, errdef.ErrNotFound) || !strings.Contains(err.Error(), "linux/arm64") {
		t.Errorf("SelectManifest s390x: %v", err)
	}
}

func TestNames(t *testing.T) {
	for _, ok := range []string{"latest", "v1.2.3", "registry.example.com/app:1", "a_b-c+d@e"} {
		if err := content.CheckTag(ok); err != nil {
			t.Errorf("CheckTag(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", "a b", "tag\n", strings.Repeat("a", 1025)} {
		if err := content.CheckTag(bad); !errors.Is(err, errdef.ErrInvalid) {
			t.Errorf("CheckTag(%q) = %v", bad, err)
		}
	}
	for _, bad := range []string{"", ".hidden", "../x", "a/b", strings.Repeat("r", 129)} {
		if err := content.CheckIngestRef(bad); !errors.Is(err, errdef.ErrInvalid) {
			t.Errorf("CheckIngestRef(%q) = %v", bad, err)
		}
	}
	if r := content.NewIngestRef(); content.CheckIngestRef(r) != nil || r == content.NewIngestRef() {
		t.Errorf("NewIngestRef gave %q", r)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := content.ContextReader(ctx, strings.NewReader("x")).Read(make([]byte, 1)); !errors.Is(err, context.Canceled) {
		t.Errorf("ContextReader after cancel: %v", err)
	}
}
