//go:build linux

package unpack

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// writeLayout writes a minimal OCI image layout holding one image tagged
// "tag" whose layers are the given gzip'd blobs.
func writeLayout(t *testing.T, dir string, raws [][]byte) {
	t.Helper()
	blob := func(b []byte) digest.Digest {
		d := digest.FromBytes(b)
		p := filepath.Join(dir, "blobs", "sha256", d.Encoded())
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return d
	}
	mustJSON := func(v any) []byte {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	cfg := ocispec.Image{Platform: ocispec.Platform{Architecture: "amd64", OS: "linux"}, RootFS: ocispec.RootFS{Type: "layers"}}
	var layers []ocispec.Descriptor
	for _, raw := range raws {
		g := gz(t, raw)
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, digest.FromBytes(raw))
		layers = append(layers, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: blob(g), Size: int64(len(g))})
	}
	cb := mustJSON(cfg)
	m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest, Layers: layers,
		Config: ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: blob(cb), Size: int64(len(cb))}}
	m.SchemaVersion = 2
	mb := mustJSON(m)
	idx := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{{
		MediaType: ocispec.MediaTypeImageManifest, Digest: blob(mb), Size: int64(len(mb)),
		Annotations: map[string]string{ocispec.AnnotationRefName: "tag"},
	}}}
	idx.SchemaVersion = 2
	if err := os.WriteFile(filepath.Join(dir, "index.json"), mustJSON(idx), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ocispec.ImageLayoutFile), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestApplyMatchesUmoci unpacks the same layers with umoci and with Apply
// and compares the trees.
func TestApplyMatchesUmoci(t *testing.T) {
	umoci, err := exec.LookPath("umoci")
	if err != nil {
		t.Skip("umoci not on PATH: interop comparison skipped (apt-get install umoci)")
	}
	cases := map[string][][]ent{
		"one layer": {{
			dir("etc"), withMode(file("etc/passwd", "root:x:0:0::/root:/bin/sh\n"), 0o644),
			withMode(dir("bin"), 0o755), withMode(file("bin/busybox", "ELF..."), 0o4755),
			symlink("bin/sh", "busybox"), symlink("bin/abs", "/bin/busybox"), hardlink("bin/ls", "bin/busybox"),
			withMode(dir("tmp"), 0o1777), withMode(file("etc/shadow", "secret"), 0o640), fifo("run/fifo"),
			withMode(dir("var/empty"), 0o711), file("usr/lib/implicit-parents", "x"),
		}},
		"whiteouts and opaque whiteouts": {
			{
				file("file1", "1"), dir("a"), file("a/file2", "2"), dir("b"), file("b/inner", "i"),
				dir("c"), file("c/file3", "3"), dir("o"), dir("o/b"), dir("o/b/c"), file("o/b/c/bar", "bar"),
				dir("p"), file("p/old", "old"), dir("r"), file("r/lower", "l"), file("target", "t"), symlink("link", "target"),
			},
			{
				whiteoutEnt(".wh.file1"), whiteoutEnt("a/.wh.file2"), whiteoutEnt(".wh.b"), file("file4", "4"),
				dir("o"), whiteoutEnt("o/.wh..wh..opq"), dir("o/b"), dir("o/b/c"), file("o/b/c/foo", "foo"),
				dir("p"), file("p/new", "new"), whiteoutEnt("p/.wh..wh..opq"),
				file("r", "now a file"), file("link", "replaces symlink"), withMode(dir("c"), 0o700),
			},
		},
	}
	for name, layers := range cases {
		t.Run(name, func(t *testing.T) {
			work := t.TempDir()
			var raws [][]byte
			entries := map[string]bool{}
			for _, l := range layers {
				raws = append(raws, tarOf(t, l...))
				for _, e := range l {
					entries[strings.Trim(e.name, "/")] = true
				}
			}
			writeLayout(t, filepath.Join(work, "image"), raws)
			bundle := filepath.Join(work, "bundle")
			out, err := exec.Command(umoci, "unpack", "--rootless", "--image", filepath.Join(work, "image")+":tag", bundle).CombinedOutput()
			if err != nil {
				t.Fatalf("umoci unpack: %v\n%s", err, out)
			}
			ours := filepath.Join(work, "ours")
			if _, err := ApplyLayers(context.Background(), ours, layersOf(t, raws), Options{Rootless: true}); err != nil {
				t.Fatal(err)
			}
			theirs := snapshot(t, filepath.Join(bundle, "rootfs"))
			mine := snapshot(t, ours)
			// Hardlink groups: paths sharing an inode, named by their first path.
			group := func(s map[string]node) map[string]string {
				first := map[uint64]string{}
				out := map[string]string{}
				for _, p := range sortedKeys(s) {
					if s[p].Type == "file" && s[p].Nlink > 1 {
						if _, ok := first[s[p].Ino]; !ok {
							first[s[p].Ino] = p
						}
						out[p] = first[s[p].Ino]
					}
				}
				return out
			}
			gt, gm := group(theirs), group(mine)
			d := diffSnapshots(theirs, mine, func(p string, x, y node) string {
				if p == "." {
					return ""
				}
				// umoci --rootless keeps modes exactly; Apply adds owner
				// access (see the package documentation).
				wantMode := x.Mode
				switch x.Type {
				case "dir":
					wantMode |= 0o700
				case "file", "special":
					wantMode |= 0o600
				}
				var diffs []string
				if x.Type != y.Type {
					diffs = append(diffs, fmt.Sprintf("type %s vs %s", x.Type, y.Type))
				}
				if x.Type != "symlink" && wantMode != y.Mode {
					diffs = append(diffs, fmt.Sprintf("mode %v (umoci %v) vs %v", wantMode, x.Mode, y.Mode))
				}
				if x.Sum != y.Sum || x.Link != y.Link {
					diffs = append(diffs, fmt.Sprintf("content/link %q %q vs %q %q", x.content, x.Link, y.content, y.Link))
				}
				// Directories made implicitly for a deeper entry get the
				// current time in both.
				if x.Mtime != y.Mtime && (x.Type != "dir" || entries[p]) {
					diffs = append(diffs, fmt.Sprintf("mtime %d vs %d", x.Mtime, y.Mtime))
				}
				if gt[p] != gm[p] {
					diffs = append(diffs, fmt.Sprintf("hardlink group %q vs %q", gt[p], gm[p]))
				}
				return strings.Join(diffs, "; ")
			})
			if len(d) > 0 {
				t.Errorf("Apply differs from umoci:\n%s", strings.Join(d, "\n"))
			}
			if len(theirs) < 5 {
				t.Fatalf("umoci produced almost nothing: %s", names(theirs))
			}
		})
	}
}

func sortedKeys(m map[string]node) []string {
	var s []string
	for k := range m {
		s = append(s, k)
	}
	sort.Strings(s)
	return s
}
