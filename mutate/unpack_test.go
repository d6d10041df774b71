package mutate

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lading-oci/lading/content"
	"github.com/lading-oci/lading/content/memory"
	"github.com/lading-oci/lading/errdef"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// tamperFetcher serves the blob named bad with its last byte changed.
type tamperFetcher struct {
	content.Fetcher
	bad digest.Digest
}

func (f tamperFetcher) Fetch(ctx context.Context, desc ocispec.Descriptor) (io.ReadCloser, error) {
	rc, err := f.Fetcher.Fetch(ctx, desc)
	if err != nil || desc.Digest != f.bad {
		return rc, err
	}
	data, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		return nil, err
	}
	data[len(data)-1] ^= 1
	return io.NopCloser(bytes.NewReader(data)), nil
}

// twoLayers builds an image of two layers in a memory store.
func twoLayers(t *testing.T) (*memory.Store, *content.LoadedImage) {
	t.Helper()
	ctx := context.Background()
	s := memory.New()
	plat := &ocispec.Platform{OS: "linux", Architecture: "amd64"}
	d1 := t.TempDir()
	writeFiles(t, d1, map[string]string{"cu1/numbers": "1 2 3"})
	base, err := Build(ctx, s, d1, BuildOptions{Platform: plat})
	if err != nil {
		t.Fatal(err)
	}
	bimg, err := content.LoadImage(ctx, s, base, plat)
	if err != nil {
		t.Fatal(err)
	}
	d2 := t.TempDir()
	writeFiles(t, d2, map[string]string{"cu2/numbers": strings.Repeat("4 5 6 ", 1000)})
	top, err := Build(ctx, s, d2, BuildOptions{Base: bimg, LayerOptions: LayerOptions{Compression: 0}})
	if err != nil {
		t.Fatal(err)
	}
	img, err := content.LoadImage(ctx, s, top, plat)
	if err != nil {
		t.Fatal(err)
	}
	return s, img
}

func TestUnpackAllOrNothing(t *testing.T) {
	ctx := context.Background()
	s, img := twoLayers(t)
	bad := tamperFetcher{s, img.Manifest.Layers[1].Digest}

	for _, existing := range []bool{false, true} {
		parent := t.TempDir()
		dir := filepath.Join(parent, "root")
		if existing {
			if err := os.Mkdir(dir, 0o750); err != nil {
				t.Fatal(err)
			}
		}
		err := Unpack(ctx, bad, img, dir, UnpackOptions{Rootless: true})
		if !errors.Is(err, errdef.ErrDigestMismatch) && !errors.Is(err, errdef.ErrInvalid) {
			t.Fatalf("tampered layer: err = %v", err)
		}
		if !strings.Contains(err.Error(), "nothing was written") {
			t.Errorf("error does not say the directory is untouched: %v", err)
		}
		ents, _ := os.ReadDir(parent)
		if existing {
			if len(ents) != 1 || ents[0].Name() != "root" {
				t.Errorf("parent holds %v after a failed unpack, want the empty root only", ents)
			}
			if inner, _ := os.ReadDir(dir); len(inner) != 0 {
				t.Errorf("root holds %v after a failed unpack", inner)
			}
		} else if len(ents) != 0 {
			t.Errorf("parent holds %v after a failed unpack, want nothing", ents)
		}

		if err := Unpack(ctx, s, img, dir, UnpackOptions{Rootless: true}); err != nil {
			t.Fatal(err)
		}
		for _, f := range []string{"cu1/numbers", "cu2/numbers"} {
			if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
				t.Error(err)
			}
		}
		if existing {
			if fi, _ := os.Stat(dir); fi.Mode().Perm() != 0o750 {
				t.Errorf("unpacking into an empty directory changed its mode to %v", fi.Mode().Perm())
			}
		}
		if ents, _ := os.ReadDir(parent); len(ents) != 1 {
			t.Errorf("parent holds %v after an unpack, want root only", ents)
		}
	}
}

func TestUnpackNonEmpty(t *testing.T) {
	ctx := context.Background()
	s, img := twoLayers(t)
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"cu1/numbers": "mine", "keep": "k"})
	err := Unpack(ctx, s, img, dir, UnpackOptions{Rootless: true})
	if !errors.Is(err, errdef.ErrAlreadyExists) {
		t.Fatalf("unpack into a non-empty directory: %v", err)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "cu1/numbers")); string(got) != "mine" {
		t.Fatal("a refused unpack changed the directory")
	}
	if err := Unpack(ctx, s, img, dir, UnpackOptions{Rootless: true, Force: true}); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "cu1/numbers")); string(got) != "1 2 3" {
		t.Errorf("forced merge: cu1/numbers = %q", got)
	}
	if _, err := os.Stat(filepath.Join(dir, "keep")); err != nil {
		t.Errorf("forced merge removed a file of the directory: %v", err)
	}
	file := filepath.Join(t.TempDir(), "f")
	writeFiles(t, filepath.Dir(file), map[string]string{"f": "x"})
	if err := Unpack(ctx, s, img, file, UnpackOptions{Rootless: true}); !errors.Is(err, errdef.ErrAlreadyExists) {
		t.Errorf("unpack onto a file: %v", err)
	}
}

// TestBaseMustBeInTheStore checks that an image is never built on a base
// whose layers the destination does not hold: the build is refused before
// anything is written.
func TestBaseMustBeInTheStore(t *testing.T) {
	ctx := context.Background()
	src, img := twoLayers(t)
	dst := memory.New()
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"x": "x"})
	count := func(s *memory.Store) int {
		n := 0
		_ = s.Blobs(ctx, func(ocispec.Descriptor) error { n++; return nil })
		return n
	}
	checks := map[string]func(content.IngestStorage) error{
		"build": func(s content.IngestStorage) error {
			_, err := Build(ctx, s, dir, BuildOptions{Base: img})
			return err
		},
		"append": func(s content.IngestStorage) error {
			_, err := Append(ctx, s, img, strings.NewReader(""), AppendOptions{})
			return err
		},
		"mutate": func(s content.IngestStorage) error {
			_, err := Mutate(ctx, s, img, MutateOptions{})
			return err
		},
		"commit": func(s content.IngestStorage) error {
			_, err := Commit(ctx, s, img, dir, CommitOptions{})
			return err
		},
		"flatten": func(s content.IngestStorage) error {
			_, err := Flatten(ctx, s, img, FlattenOptions{})
			return err
		},
	}
	for name, run := range checks {
		err := run(dst)
		if !errors.Is(err, errdef.ErrNotFound) || !strings.Contains(err.Error(), string(img.Manifest.Layers[0].Digest)) {
			t.Errorf("%s on a base from another store: %v", name, err)
		}
		if n := count(dst); n != 0 {
			t.Errorf("%s wrote %d blobs before refusing", name, n)
		}
	}
	// A base whose layer was deleted from its own store.
	if err := src.Delete(ctx, img.Manifest.Layers[1].Digest); err != nil {
		t.Fatal(err)
	}
	before := count(src)
	if _, err := Build(ctx, src, dir, BuildOptions{Base: img}); !errors.Is(err, errdef.ErrNotFound) {
		t.Errorf("build on a base with a deleted layer: %v", err)
	}
	if count(src) != before {
		t.Error("a refused build wrote blobs")
	}
	for _, f := range []func() error{
		func() error { _, err := Mutate(ctx, src, nil, MutateOptions{}); return err },
		func() error { _, err := Commit(ctx, src, nil, dir, CommitOptions{}); return err },
		func() error { _, err := Flatten(ctx, src, nil, FlattenOptions{}); return err },
		func() error { _, err := Append(ctx, src, nil, strings.NewReader(""), AppendOptions{}); return err },
	} {
		if err := f(); !errors.Is(err, errdef.ErrInvalid) {
			t.Errorf("nil base: %v", err)
		}
	}
}
