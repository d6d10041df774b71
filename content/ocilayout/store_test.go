package ocilayout_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lading-oci/lading/content"
	"github.com/lading-oci/lading/content/contenttest"
	"github.com/lading-oci/lading/content/ocilayout"
	"github.com/lading-oci/lading/errdef"
	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func TestSuite(t *testing.T) {
	contenttest.Suite(t, func(t *testing.T) content.Store { return newLayout(t) })
}

func TestSuiteVerifyOnRead(t *testing.T) {
	contenttest.Suite(t, func(t *testing.T) content.Store { return newLayout(t, ocilayout.WithVerifyOnRead(true)) })
}

func TestInitCreatesLayout(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b")
	if _, err := ocilayout.Init(context.Background(), dir); err != nil {
		t.Fatal(err)
	}
	layout, err := os.ReadFile(filepath.Join(dir, "oci-layout"))
	if err != nil {
		t.Fatal(err)
	}
	var hdr ocispec.ImageLayout
	if err := json.Unmarshal(layout, &hdr); err != nil || hdr.Version != "1.0.0" {
		t.Fatalf("oci-layout = %s (%v)", layout, err)
	}
	var idx ocispec.Index
	data, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &idx); err != nil || idx.SchemaVersion != 2 || idx.Manifests == nil {
		t.Fatalf("index.json = %s (%v)", data, err)
	}
	if fi, err := os.Stat(filepath.Join(dir, "blobs")); err != nil || !fi.IsDir() {
		t.Fatalf("blobs directory: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "ingest")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("ingest/ exists before anything was written: %v", err)
	}
	// Init of an existing layout opens it and keeps its content.
	s, _ := ocilayout.Open(context.Background(), dir)
	img := pushImage(t, s)
	tag(t, s, img.manifest, "kept")
	s2, err := ocilayout.Init(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	if d, err := s2.Resolve(context.Background(), "kept"); err != nil || d.Digest != img.manifest.Digest {
		t.Fatalf("resolve after re-init: %v %v", d, err)
	}
}

func TestOpenErrors(t *testing.T) {
	write := func(t *testing.T, dir, name, body string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		name   string
		layout string // "" = no file
		index  string // "" = no file
		target error
	}{
		{"no layout", "", "", errdef.ErrNotFound},
		{"layout not json", "nope", `{"schemaVersion":2,"manifests":[]}`, errdef.ErrInvalid},
		{"layout without version", `{}`, `{"schemaVersion":2,"manifests":[]}`, errdef.ErrInvalid},
		{"layout version 2", `{"imageLayoutVersion":"2.0.0"}`, `{"schemaVersion":2,"manifests":[]}`, errdef.ErrUnsupported},
		{"no index", `{"imageLayoutVersion":"1.0.0"}`, "", errdef.ErrInvalid},
		{"index not json", `{"imageLayoutVersion":"1.0.0"}`, `[`, errdef.ErrInvalid},
		{"index schema 1", `{"imageLayoutVersion":"1.0.0"}`, `{"schemaVersion":1,"manifests":[]}`, errdef.ErrInvalid},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			if c.layout != "" {
				write(t, dir, "oci-layout", c.layout)
			}
			if c.index != "" {
				write(t, dir, "index.json", c.index)
			}
			_, err := ocilayout.Open(context.Background(), dir)
			if !errors.Is(err, c.target) {
				t.Fatalf("open: %v, want %v", err, c.target)
			}
			if !strings.Contains(err.Error(), dir) {
				t.Fatalf("error %q does not name the directory", err)
			}
			if c.layout != "" {
				if _, err := ocilayout.Init(context.Background(), dir); !errors.Is(err, c.target) {
					t.Fatalf("init: %v, want %v", err, c.target)
				}
			}
		})
	}
	if _, err := ocilayout.Open(context.Background(), filepath.Join(t.TempDir(), "missing")); !errors.Is(err, errdef.ErrNotFound) {
		t.Fatalf("open of a missing directory: %v", err)
	}
}

func TestPushMismatchLeavesNothing(t *testing.T) {
	s := newLayout(t)
	ctx := context.Background()
	data, desc := contenttest.Blob(t, 3<<20)
	bad := []ocispec.Descriptor{
		{Digest: digest.FromString("x"), Size: desc.Size},
		{Digest: desc.Digest, Size: desc.Size - 1},
		{Digest: desc.Digest, Size: desc.Size + 1},
		{Digest: digest.SHA512.FromString("x"), Size: desc.Size},
	}
	for _, d := range bad {
		if err := s.Push(ctx, d, bytes.NewReader(data)); err == nil {
			t.Fatalf("push under %s/%d succeeded", d.Digest, d.Size)
		}
	}
	if files := blobFiles(t, s.Dir()); len(files) != 0 {
		t.Fatalf("files under blobs/ after failed pushes: %v", files)
	}
	ents, _ := os.ReadDir(filepath.Join(s.Dir(), "ingest"))
	if len(ents) != 0 {
		t.Fatalf("temporary files left under ingest/: %v", ents)
	}
}

func TestPushDoesNotRewrite(t *testing.T) {
	s := newLayout(t)
	data, desc := contenttest.Blob(t, 100)
	contenttest.Push(t, s, desc, data)
	path, err := s.BlobPath(desc.Digest)
	if err != nil {
		t.Fatal(err)
	}
	before, _ := os.Stat(path)
	// A second push does not read the reader and does not replace the file.
	if err := s.Push(context.Background(), desc, contenttest.FailReader(t)); err != nil {
		t.Fatal(err)
	}
	after, _ := os.Stat(path)
	if !os.SameFile(before, after) {
		t.Fatal("pushing an existing blob replaced its file")
	}
	if err := s.Push(context.Background(), ocispec.Descriptor{Digest: desc.Digest, Size: desc.Size + 1}, bytes.NewReader(data)); !errors.Is(err, errdef.ErrSizeMismatch) {
		t.Fatalf("push of an existing blob with the wrong size: %v", err)
	}
}

func TestVerifyOnRead(t *testing.T) {
	s := newLayout(t, ocilayout.WithVerifyOnRead(true))
	data, desc := contenttest.Blob(t, 10000)
	contenttest.Push(t, s, desc, data)
	path, _ := s.BlobPath(desc.Digest)
	corrupt := append([]byte(nil), data...)
	corrupt[5000] ^= 1
	if err := os.WriteFile(path, corrupt, 0o644); err != nil {
		t.Fatal(err)
	}
	rc, err := s.Fetch(context.Background(), desc)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if _, err := io.ReadAll(rc); !errors.Is(err, errdef.ErrDigestMismatch) {
		t.Fatalf("read of a corrupt blob with verify-on-read: %v", err)
	}
	plain, _ := ocilayout.Open(context.Background(), s.Dir())
	rc2, _ := plain.Fetch(context.Background(), desc)
	defer rc2.Close()
	if got, err := io.ReadAll(rc2); err != nil || !bytes.Equal(got, corrupt) {
		t.Fatalf("plain read: %v", err)
	}
}

func TestBlobsSkipsForeignFiles(t *testing.T) {
	s := newLayout(t)
	data, desc := contenttest.Blob(t, 10)
	contenttest.Push(t, s, desc, data)
	for _, p := range []string{"blobs/sha256/nothex", "blobs/sha256/" + strings.Repeat("a", 63), "blobs/md5/d41d8cd98f00b204e9800998ecf8427e", "blobs/README"} {
		full := filepath.Join(s.Dir(), p)
		os.MkdirAll(filepath.Dir(full), 0o755)
		if err := os.WriteFile(full, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	os.MkdirAll(filepath.Join(s.Dir(), "blobs/sha256/"+strings.Repeat("b", 64)), 0o755)
	var got []digest.Digest
	s.Blobs(context.Background(), func(d ocispec.Descriptor) error { got = append(got, d.Digest); return nil })
	if len(got) != 1 || got[0] != desc.Digest {
		t.Fatalf("walk found %v, want only %s", got, desc.Digest)
	}
}

func TestTagKeepsEntries(t *testing.T) {
	s := newLayout(t)
	ctx := context.Background()
	img := pushImage(t, s)
	other := pushImage(t, s, map[string]string{"f": "1"})
	// An entry without a tag, added by another tool, survives tagging.
	err := s.UpdateIndex(ctx, func(idx *ocispec.Index) error {
		idx.Manifests = append(idx.Manifests, other.manifest)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	d := img.manifest
	d.Platform = &ocispec.Platform{OS: "linux", Architecture: "arm64"}
	d.Annotations = map[string]string{"com.example.note": "n"}
	tag(t, s, d, "v1")
	tag(t, s, other.manifest, "v2")
	tag(t, s, other.manifest, "v1") // moves v1
	tag(t, s, d, "v1")              // and back
	idx, err := s.Index(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(idx.Manifests) != 3 {
		t.Fatalf("index has %d entries, want 3: %+v", len(idx.Manifests), idx.Manifests)
	}
	got, err := s.Resolve(ctx, "v1")
	if err != nil {
		t.Fatal(err)
	}
	if got.Platform == nil || got.Platform.Architecture != "arm64" || got.Annotations["com.example.note"] != "n" || got.Annotations[ocispec.AnnotationRefName] != "v1" {
		t.Fatalf("resolve v1 = %+v", got)
	}
	if d.Annotations[ocispec.AnnotationRefName] != "" {
		t.Fatal("Tag changed the caller's annotations")
	}
}

func TestResolveNested(t *testing.T) {
	s := newLayout(t)
	ctx := context.Background()
	amd := pushImage(t, s)
	arm := pushImage(t, s, map[string]string{"arm": "1"})
	armDesc := arm.manifest
	armDesc.Platform = &ocispec.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}
	inner := pushJSON(t, s, ocispec.MediaTypeImageIndex, ocispec.Index{
		Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex,
		Manifests: []ocispec.Descriptor{armDesc},
	})
	outer := pushJSON(t, s, ocispec.MediaTypeImageIndex, ocispec.Index{
		Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex,
		Manifests: []ocispec.Descriptor{inner},
	})
	tag(t, s, outer, "multi")
	got, err := s.Resolve(ctx, arm.manifest.Digest.String())
	if err != nil {
		t.Fatal(err)
	}
	if got.Platform == nil || got.Platform.Variant != "v8" || got.MediaType != ocispec.MediaTypeImageManifest {
		t.Fatalf("nested resolve = %+v, want the descriptor with its platform", got)
	}
	// Present but unreferenced: the media type comes from the document.
	got, err = s.Resolve(ctx, amd.manifest.Digest.String())
	if err != nil || got.MediaType != ocispec.MediaTypeImageManifest || got.Size != amd.manifest.Size {
		t.Fatalf("resolve unreferenced manifest = %+v, %v", got, err)
	}
	got, err = s.Resolve(ctx, arm.layers[0].Digest.String())
	if err != nil || got.MediaType != "application/octet-stream" || got.Size != arm.layers[0].Size {
		t.Fatalf("resolve a layer blob = %+v, %v", got, err)
	}
}
