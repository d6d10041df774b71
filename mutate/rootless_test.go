package mutate

import (
	"archive/tar"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/lading-oci/lading/content"
	"github.com/lading-oci/lading/content/memory"
	"github.com/lading-oci/lading/layer"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sys/unix"
)

// layerEntries lists the tar headers of layer desc.
func layerEntries(t *testing.T, s content.Fetcher, desc ocispec.Descriptor) []*tar.Header {
	t.Helper()
	rc, err := s.Fetch(context.Background(), desc)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	dr, _, err := layer.Decompress(rc)
	if err != nil {
		t.Fatal(err)
	}
	defer dr.Close()
	tr := tar.NewReader(dr)
	var out []*tar.Header
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, h)
	}
}

// TestRootlessRoundTrip checks that unpacking rootless and committing
// rootless does not change the image: owners, the modes of read-only files
// and directories, and device nodes (which a rootless unpack skips) are not
// taken for changes, and what is written keeps the image's owners.
func TestRootlessRoundTrip(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("making the source tree (owners, a device node) needs root")
	}
	ctx := context.Background()
	src := t.TempDir()
	for _, d := range []string{"bin", "etc"} {
		if err := os.Mkdir(filepath.Join(src, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	writeFiles(t, src, map[string]string{"bin/tool": "#!/bin/sh\n", "etc/secret": "s"})
	if err := unix.Mknod(filepath.Join(src, "bin/nulldev"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))); err != nil {
		t.Fatal(err)
	}
	for p, m := range map[string]os.FileMode{"etc/secret": 0o400, "etc": 0o555, "bin": 0o755} {
		if err := os.Chmod(filepath.Join(src, p), m); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []string{"bin", "bin/tool", "etc", "etc/secret"} {
		if err := os.Lchown(filepath.Join(src, p), 1234, 1234); err != nil {
			t.Fatal(err)
		}
	}
	s := memory.New()
	desc, err := Build(ctx, s, src, BuildOptions{Platform: &ocispec.Platform{OS: "linux", Architecture: "amd64"}})
	if err != nil {
		t.Fatal(err)
	}
	img, err := content.LoadImage(ctx, s, desc, &ocispec.Platform{OS: "linux", Architecture: "amd64"})
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(t.TempDir(), "root")
	if err := Unpack(ctx, s, img, root, UnpackOptions{Rootless: true}); err != nil {
		t.Fatal(err)
	}
	commit := func(allowEmpty bool) []*tar.Header {
		t.Helper()
		d, err := Commit(ctx, s, img, root, CommitOptions{Rootless: true, AllowEmpty: allowEmpty})
		if err != nil {
			t.Fatal(err)
		}
		got, err := content.LoadImage(ctx, s, d, &ocispec.Platform{OS: "linux", Architecture: "amd64"})
		if err != nil {
			t.Fatal(err)
		}
		if !Committed(img, got) {
			return nil
		}
		return layerEntries(t, s, got.Manifest.Layers[len(got.Manifest.Layers)-1])
	}
	if d, err := Commit(ctx, s, img, root, CommitOptions{Rootless: true}); err != nil {
		t.Fatal(err)
	} else if got, err := content.LoadImage(ctx, s, d, nil); err != nil || Committed(img, got) {
		t.Errorf("a commit of no changes added a layer (%v)", err)
	}
	if hs := commit(true); len(hs) != 0 {
		for _, h := range hs {
			t.Errorf("unchanged tree: layer has %s (mode %o, owner %d:%d)", h.Name, h.Mode, h.Uid, h.Gid)
		}
	}
	writeFiles(t, root, map[string]string{"bin/new": "new"})
	hs := commit(false)
	var names []string
	for _, h := range hs {
		names = append(names, h.Name)
		switch h.Name {
		case "bin/":
			if h.Uid != 1234 || h.Gid != 1234 || h.Mode&0o7777 != 0o755 {
				t.Errorf("bin/ written as %o %d:%d, want the image's 755 1234:1234", h.Mode, h.Uid, h.Gid)
			}
		case "bin/new":
			if h.Uid != 0 || h.Gid != 0 {
				t.Errorf("new file owned by %d:%d, want 0:0", h.Uid, h.Gid)
			}
		default:
			t.Errorf("unexpected entry %s", h.Name)
		}
	}
	if len(names) != 2 {
		t.Errorf("layer entries %v, want bin/ and bin/new", names)
	}
}
