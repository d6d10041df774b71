package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// needTool skips the test when a peer tool is absent (.ci/run installs them).
func needTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s is not installed (apt-get install %s); skipping the interop test", name, name)
	}
	return p
}

func sh(t *testing.T, dir string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestUmociUnpacksLadingImages: umoci unpacks what lading builds to exactly
// the source tree, for every compression and for a committed layer with
// whiteouts.
func TestUmociUnpacksLadingImages(t *testing.T) {
	needTool(t, "umoci")
	tmp := t.TempDir()
	src := filepath.Join(tmp, "src")
	writeTree(t, src)
	layout := filepath.Join(tmp, "images")
	for _, comp := range []string{"gzip", "zstd", "none"} {
		lading(t, "build", src, "-t", "oci:"+layout+":"+comp, "--compression", comp)
		bundle := filepath.Join(tmp, "bundle-"+comp)
		if comp == "zstd" {
			// umoci 0.4 does not know zstd layers: it must refuse them by
			// media type, not misread them.
			out, err := exec.Command("umoci", "unpack", "--rootless", "--image", layout+":"+comp, bundle).CombinedOutput()
			if err == nil && !strings.Contains(string(out), "zstd") {
				compareTrees(t, snapshot(t, src), snapshot(t, filepath.Join(bundle, "rootfs")), "umoci unpack of lading zstd")
			}
			continue
		}
		sh(t, tmp, "umoci", "unpack", "--rootless", "--image", layout+":"+comp, bundle)
		compareTrees(t, snapshot(t, src), snapshot(t, filepath.Join(bundle, "rootfs")), "umoci unpack of lading "+comp)
	}

	// A commit with deletions: umoci applies lading's whiteouts.
	root := filepath.Join(tmp, "root")
	lading(t, "unpack", "oci:"+layout+":gzip", root)
	must(t, os.RemoveAll(filepath.Join(root, "var")))
	must(t, os.Remove(filepath.Join(root, "etc/hostname")))
	must(t, os.WriteFile(filepath.Join(root, "etc/app/config.toml"), []byte("port = 9090\n"), 0o644))
	lading(t, "commit", root, "--from", "oci:"+layout+":gzip", "-t", "oci:"+layout+":committed")
	bundle := filepath.Join(tmp, "bundle-committed")
	sh(t, tmp, "umoci", "unpack", "--rootless", "--image", layout+":committed", bundle)
	compareTrees(t, snapshot(t, root), snapshot(t, filepath.Join(bundle, "rootfs")), "umoci unpack of lading commit")
}

// TestLadingUnpacksUmociImages: lading unpacks a multi-layer image that umoci
// built (whiteouts included) to exactly what umoci unpacks.
func TestLadingUnpacksUmociImages(t *testing.T) {
	needTool(t, "umoci")
	tmp := t.TempDir()
	layout := filepath.Join(tmp, "umoci-layout")
	sh(t, tmp, "umoci", "init", "--layout", layout)
	sh(t, tmp, "umoci", "new", "--image", layout+":img")
	// umoci repack stacks a layer on the image the bundle was unpacked from,
	// so each layer gets a fresh bundle.
	layer := func(n int, change func(rootfs string)) {
		work := filepath.Join(tmp, fmt.Sprintf("work%d", n))
		sh(t, tmp, "umoci", "unpack", "--rootless", "--image", layout+":img", work)
		change(filepath.Join(work, "rootfs"))
		sh(t, tmp, "umoci", "repack", "--image", layout+":img", work)
	}
	layer(1, func(rootfs string) { writeTree(t, rootfs) })
	// Second layer: delete a directory and a file, replace a file with a directory.
	layer(2, func(rootfs string) {
		must(t, os.RemoveAll(filepath.Join(rootfs, "var/cache")))
		must(t, os.Remove(filepath.Join(rootfs, "home/hostname-link")))
		must(t, os.Remove(filepath.Join(rootfs, "etc/hostname")))
		must(t, os.MkdirAll(filepath.Join(rootfs, "etc/hostname"), 0o755))
		must(t, os.WriteFile(filepath.Join(rootfs, "etc/hostname/inside"), []byte("dir now"), 0o644))
	})
	// Third layer: recreate part of what was deleted.
	layer(3, func(rootfs string) {
		must(t, os.MkdirAll(filepath.Join(rootfs, "var/cache"), 0o755))
		must(t, os.WriteFile(filepath.Join(rootfs, "var/cache/again"), []byte("again"), 0o644))
	})
	if n := strings.Count(lading(t, "inspect", "oci:"+layout+":img", "--format", "{{json .Layers}}"), "Digest"); n != 3 {
		t.Fatalf("umoci built %d layers, want 3", n)
	}

	theirs := filepath.Join(tmp, "theirs")
	sh(t, tmp, "umoci", "unpack", "--rootless", "--image", layout+":img", theirs)
	ours := filepath.Join(tmp, "ours")
	lading(t, "unpack", "--rootless", "oci:"+layout+":img", ours)
	compareTrees(t, snapshot(t, filepath.Join(theirs, "rootfs")), snapshot(t, ours), "lading unpack of umoci's image")
	if out := lading(t, "verify", layout); !strings.Contains(out, "0 problems") {
		t.Errorf("verify of umoci's layout: %s", out)
	}
	// The layers report sees the deleted directory's bytes as wasted.
	out := lading(t, "layers", "oci:"+layout+":img", "--format", "json")
	if !strings.Contains(out, `"path": "var/cache/big.bin"`) {
		t.Errorf("layers report does not list the deleted var/cache/big.bin as wasted:\n%s", out)
	}
}

// TestSkopeoReadsLadingImages: skopeo inspects and copies what lading builds,
// and lading verifies skopeo's copy.
func TestSkopeoReadsLadingImages(t *testing.T) {
	needTool(t, "skopeo")
	tmp := t.TempDir()
	src := filepath.Join(tmp, "src")
	writeTree(t, src)
	layout := filepath.Join(tmp, "images")
	lading(t, "build", src, "-t", "oci:"+layout+":app", "--label", "from=lading")
	out := sh(t, tmp, "skopeo", "inspect", "oci:"+layout+":app")
	if !strings.Contains(out, `"from": "lading"`) {
		t.Errorf("skopeo inspect:\n%s", out)
	}
	copyDir := filepath.Join(tmp, "copy")
	sh(t, tmp, "skopeo", "copy", "oci:"+layout+":app", "oci:"+copyDir+":app")
	if out := lading(t, "verify", copyDir); !strings.Contains(out, "0 problems") {
		t.Errorf("verify of skopeo's copy: %s", out)
	}
	if a, b := lading(t, "digest", "oci:"+layout+":app"), lading(t, "digest", "oci:"+copyDir+":app"); a != b {
		t.Errorf("skopeo's copy changed the manifest: %s vs %s", a, b)
	}
	ours := filepath.Join(tmp, "ours")
	lading(t, "unpack", "oci:"+copyDir+":app", ours)
	compareTrees(t, snapshot(t, src), snapshot(t, ours), "unpack of skopeo's copy")
}
