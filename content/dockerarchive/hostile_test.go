package dockerarchive_test

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lading-oci/lading/content"
	"github.com/lading-oci/lading/content/contenttest"
	"github.com/lading-oci/lading/content/dockerarchive"
	"github.com/lading-oci/lading/errdef"
	"github.com/lading-oci/lading/image"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// member is one entry of a hand-made archive.
type member = contenttest.Member

func writeTar(t *testing.T, members ...member) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "archive.tar")
	os.WriteFile(path, contenttest.TarMembers(t, members...), 0o644)
	return path
}

func manifestJSON(items ...dockerarchive.ManifestItem) string {
	b, _ := json.Marshal(items)
	return string(b)
}

// classic returns the members of a docker save archive in the classic form
// for img: <id>/layer.tar files and a <hex>.json config, the second layer
// as a symbolic link to a top-level file (as docker does for repeated
// layers and skopeo for all).
func classic(t *testing.T, img contenttest.Image, tag string) []member {
	cfg := img.Blobs[img.Config.Digest]
	ms := []member{{Name: img.Config.Digest.Encoded() + ".json", Body: string(cfg)}}
	item := dockerarchive.ManifestItem{Config: img.Config.Digest.Encoded() + ".json", RepoTags: []string{tag}}
	for i := range img.Layers {
		raw := string(img.Raw[i])
		id := strings.Repeat(string(rune('a'+i)), 64)
		if i == 0 {
			ms = append(ms, member{Name: id + "/", Typ: tar.TypeDir}, member{Name: id + "/layer.tar", Body: raw})
		} else {
			hex := digest.FromString(raw).Encoded()
			ms = append(ms, member{Name: hex + ".tar", Body: raw}, member{Name: id + "/", Typ: tar.TypeDir},
				member{Name: id + "/layer.tar", Typ: tar.TypeSymlink, Link: "../" + hex + ".tar"})
		}
		item.Layers = append(item.Layers, id+"/layer.tar")
	}
	return append(ms, member{Name: "manifest.json", Body: manifestJSON(item)})
}

func TestReadClassicForm(t *testing.T) {
	ctx := context.Background()
	img := contenttest.MakeImage(t, map[string]string{"a": "a"}, map[string]string{"b": "b"})
	r := open(t, writeTar(t, classic(t, img, "busybox:latest")...))
	d, err := r.Resolve(ctx, "docker.io/library/busybox:latest")
	if err != nil {
		t.Fatal(err)
	}
	loadAndCheck(t, r, d, img)
}

func TestReadCompressedMembers(t *testing.T) {
	ctx := context.Background()
	img := contenttest.MakeImage(t, map[string]string{"a": "a"}, map[string]string{"b": "b"})
	cfg := img.Blobs[img.Config.Digest]
	// Layer 0 gzip under an arbitrary name (its digest is computed); layer 1
	// gzip as blobs/sha256/<digest> (Docker 25's form: the name is the digest).
	l0, l1 := img.Blobs[img.Layers[0].Digest], img.Blobs[img.Layers[1].Digest]
	item := dockerarchive.ManifestItem{Config: "blobs/sha256/" + img.Config.Digest.Encoded(), RepoTags: []string{"x:1"},
		Layers: []string{"l0/layer.tar", "blobs/sha256/" + img.Layers[1].Digest.Encoded()}}
	path := writeTar(t,
		member{Name: "blobs/sha256/" + img.Config.Digest.Encoded(), Body: string(cfg)},
		member{Name: "l0/layer.tar", Body: string(l0)},
		member{Name: "blobs/sha256/" + img.Layers[1].Digest.Encoded(), Body: string(l1)},
		member{Name: "oci-layout", Body: `{"imageLayoutVersion":"1.0.0"}`},
		member{Name: "index.json", Body: `{"schemaVersion":2,"manifests":[]}`},
		member{Name: "manifest.json", Body: manifestJSON(item)},
	)
	r := open(t, path)
	d, err := r.Select(ctx, mustRef(t, "docker-archive:"+path))
	if err != nil {
		t.Fatal(err)
	}
	li, err := content.LoadImage(ctx, r, d, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range li.Manifest.Layers {
		if l.MediaType != image.MediaTypeDockerLayer || l.Digest != img.Layers[i].Digest {
			t.Fatalf("layer %d: %+v, want %s", i, l, img.Layers[i].Digest)
		}
		if _, err := content.ReadAll(ctx, r, l, 1<<20); err != nil {
			t.Fatal(err)
		}
	}
}

func TestHostileArchives(t *testing.T) {
	ctx := context.Background()
	img := contenttest.MakeImage(t, map[string]string{"a": "a"})
	cfg := string(img.Blobs[img.Config.Digest])
	raw := string(img.Raw[0])
	good := dockerarchive.ManifestItem{Config: "c.json", Layers: []string{"l.tar"}, RepoTags: []string{"x:1"}}
	with := func(f func(*dockerarchive.ManifestItem)) string {
		it := good
		it.Layers = append([]string(nil), good.Layers...)
		f(&it)
		return manifestJSON(it)
	}
	base := []member{{Name: "c.json", Body: cfg}, {Name: "l.tar", Body: raw}}
	cases := []struct {
		name   string
		extra  []member
		open   error // from Open
		load   error // from resolving the image
		naming string
	}{
		{"no manifest.json", nil, errdef.ErrInvalid, nil, "manifest.json"},
		{"oci-archive", []member{{Name: "oci-layout", Body: "{}"}}, errdef.ErrInvalid, nil, "oci-archive"},
		{"manifest.json null", []member{{Name: "manifest.json", Body: "null"}}, errdef.ErrInvalid, nil, "manifest.json"},
		{"manifest.json object", []member{{Name: "manifest.json", Body: "{}"}}, errdef.ErrInvalid, nil, "manifest.json"},
		{"manifest.json too large", []member{{Name: "manifest.json", Body: "[" + strings.Repeat(" ", 4<<20) + "]"}}, errdef.ErrTooLarge, nil, "manifest.json"},
		{"config outside", []member{{Name: "manifest.json", Body: with(func(it *dockerarchive.ManifestItem) { it.Config = "../../etc/passwd" })}}, errdef.ErrUnsafePath, nil, "../../etc/passwd"},
		{"absolute layer", []member{{Name: "manifest.json", Body: with(func(it *dockerarchive.ManifestItem) { it.Layers[0] = "/etc/shadow" })}}, errdef.ErrUnsafePath, nil, "/etc/shadow"},
		{"bad repo tag", []member{{Name: "manifest.json", Body: with(func(it *dockerarchive.ManifestItem) { it.RepoTags = []string{"UPPER:1"} })}}, errdef.ErrInvalid, nil, "UPPER"},
		{"dotdot member", []member{{Name: "../x", Body: "x"}, {Name: "manifest.json", Body: with(func(*dockerarchive.ManifestItem) {})}}, errdef.ErrUnsafePath, nil, "../x"},
		{"duplicate member", []member{{Name: "./c.json", Body: "{}"}, {Name: "manifest.json", Body: with(func(*dockerarchive.ManifestItem) {})}}, errdef.ErrInvalid, nil, "c.json"},
		{"missing layer", []member{{Name: "manifest.json", Body: with(func(it *dockerarchive.ManifestItem) { it.Layers[0] = "nope.tar" })}}, nil, errdef.ErrNotFound, "nope.tar"},
		{"layer link outside", []member{{Name: "out.tar", Typ: tar.TypeSymlink, Link: "../../../etc/passwd"}, {Name: "manifest.json", Body: with(func(it *dockerarchive.ManifestItem) { it.Layers[0] = "out.tar" })}}, nil, errdef.ErrUnsafePath, "out.tar"},
		{"layer count", []member{{Name: "manifest.json", Body: with(func(it *dockerarchive.ManifestItem) { it.Layers = append(it.Layers, "l.tar") })}}, nil, errdef.ErrInvalid, "diff_ids"},
		{"config not JSON", []member{{Name: "bad.json", Body: "{"}, {Name: "manifest.json", Body: with(func(it *dockerarchive.ManifestItem) { it.Config = "bad.json" })}}, nil, errdef.ErrInvalid, "bad.json"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			members := append(append([]member(nil), base...), c.extra...)
			if c.name == "duplicate member" || c.name == "dotdot member" {
				members = append(members[:0:0], c.extra[0], base[0], base[1], c.extra[1])
			}
			r, err := dockerarchive.Open(ctx, writeTar(t, members...))
			if c.open != nil {
				if !errors.Is(err, c.open) || !strings.Contains(err.Error(), c.naming) {
					t.Fatalf("open: got %v, want %v naming %q", err, c.open, c.naming)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			_, err = r.Image(ctx, 0)
			if !errors.Is(err, c.load) || !strings.Contains(err.Error(), c.naming) {
				t.Fatalf("load: got %v, want %v naming %q", err, c.load, c.naming)
			}
		})
	}
}

func TestTamperedLayer(t *testing.T) {
	ctx := context.Background()
	img := contenttest.MakeImage(t, map[string]string{"a": "a"})
	raw := img.Raw[0]
	tampered := bytes.Replace(raw, []byte("a"), []byte("b"), 1)
	path := writeTar(t,
		member{Name: "c.json", Body: string(img.Blobs[img.Config.Digest])},
		member{Name: "l.tar", Body: string(tampered)},
		member{Name: "manifest.json", Body: manifestJSON(dockerarchive.ManifestItem{Config: "c.json", Layers: []string{"l.tar"}})},
	)
	r := open(t, path)
	d, err := r.Image(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	li, err := content.LoadImage(ctx, r, d, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := content.ReadAll(ctx, r, li.Manifest.Layers[0], 1<<20); !errors.Is(err, errdef.ErrDigestMismatch) {
		t.Fatalf("tampered layer read: %v", err)
	}
	if _, err := r.Fetch(ctx, ocispec.Descriptor{Digest: li.Manifest.Layers[0].Digest, Size: 1}); !errors.Is(err, errdef.ErrSizeMismatch) {
		t.Fatalf("fetch with the wrong size: %v", err)
	}
}

func FuzzParseManifest(f *testing.F) {
	f.Add([]byte(`[{"Config":"a.json","RepoTags":["busybox:latest"],"Layers":["x/layer.tar"]}]`))
	f.Add([]byte(`[{"Config":"blobs/sha256/aa","RepoTags":null,"Layers":[],"LayerSources":{"sha256:aa":{"mediaType":"x","digest":"sha256:aa","size":1}}}]`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, data []byte) {
		items, err := dockerarchive.ParseManifest(data)
		if err != nil {
			return
		}
		for _, it := range items {
			for _, n := range append([]string{it.Config}, it.Layers...) {
				if strings.HasPrefix(n, "/") || strings.Contains("/"+n+"/", "/../") {
					t.Fatalf("unsafe name accepted: %q", n)
				}
			}
			for _, tag := range it.RepoTags {
				if _, err := dockerarchive.ParseRepoTag(tag); err != nil {
					t.Fatalf("accepted repo tag %q fails to parse: %v", tag, err)
				}
			}
		}
	})
}

// FuzzOpen opens arbitrary (uncompressed) archives and reads every image;
// nothing may panic or read outside the file.
func FuzzOpen(f *testing.F) {
	img := contenttest.MakeImage(f, map[string]string{"a": "a"})
	cfg := string(img.Blobs[img.Config.Digest])
	f.Add(contenttest.TarMembers(f,
		member{Name: "c.json", Body: cfg},
		member{Name: "l.tar", Body: string(img.Blobs[img.Layers[0].Digest])},
		member{Name: "x/layer.tar", Typ: tar.TypeSymlink, Link: "../l.tar"},
		member{Name: "manifest.json", Body: manifestJSON(dockerarchive.ManifestItem{Config: "c.json", Layers: []string{"x/layer.tar"}, RepoTags: []string{"a:1"}})},
	))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 0 && (data[0] == 0x1f || data[0] == 0x28) {
			return // whole-archive compression: third-party decoders
		}
		p := filepath.Join(dir, "fuzz.tar")
		os.WriteFile(p, data, 0o644)
		ctx := context.Background()
		r, err := dockerarchive.Open(ctx, p)
		if err != nil {
			return
		}
		defer r.Close()
		for i := range r.Items() {
			d, err := r.Image(ctx, i)
			if err != nil {
				continue
			}
			li, err := content.LoadImage(ctx, r, d, nil)
			if err != nil {
				continue
			}
			for _, l := range li.Manifest.Layers {
				content.ReadAll(ctx, r, l, 1<<20)
			}
		}
	})
}
