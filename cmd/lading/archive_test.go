package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestArchiveTransports copies an image through oci-archive and
// docker-archive files and back, builds straight into an archive, and
// checks the round trip keeps the image's files; skopeo reads what lading
// writes.
func TestArchiveTransports(t *testing.T) {
	layout := builtLayout(t)
	tmp := t.TempDir()
	ociTar := filepath.Join(tmp, "img.oci.tar")
	dockerTar := filepath.Join(tmp, "img.docker.tar")
	src := "oci:" + layout + ":app"
	lading(t, "copy", src, "oci-archive:"+ociTar+":app")
	lading(t, "copy", "oci-archive:"+ociTar+":app", "docker-archive:"+dockerTar+":example.com/app:v1")
	back := filepath.Join(tmp, "back")
	lading(t, "copy", "docker-archive:"+dockerTar, "oci:"+back+":app")
	if out := lading(t, "ls", "oci-archive:"+ociTar); !strings.Contains(out, "app") {
		t.Errorf("ls of the oci-archive:\n%s", out)
	}
	if out := lading(t, "ls", "docker-archive:"+dockerTar); !strings.Contains(out, "example.com/app:v1") {
		t.Errorf("ls of the docker-archive:\n%s", out)
	}
	// The same files, through three formats.
	a, b := filepath.Join(tmp, "a"), filepath.Join(tmp, "b")
	lading(t, "unpack", src, a)
	lading(t, "unpack", "oci:"+back+":app", b)
	compareTrees(t, snapshot(t, a), snapshot(t, b), "unpack after oci-archive and docker-archive round trips")
	// The config is the same blob all the way.
	if x, y := lading(t, "config", src), lading(t, "config", "docker-archive:"+dockerTar); x != y {
		t.Error("the config changed through the docker-archive")
	}
	// A build can write an archive, and a failed one leaves no file.
	built := filepath.Join(tmp, "built.tar")
	lading(t, "build", t.TempDir(), "-t", "oci-archive:"+built+":x")
	if _, err := os.Stat(built); err != nil {
		t.Errorf("build into an oci-archive: %v", err)
	}
	failed := filepath.Join(tmp, "failed.tar")
	if _, _, code := execCLI(t, context.Background(), "", "build", filepath.Join(tmp, "missing"), "-t", "oci-archive:"+failed+":x"); code == 0 {
		t.Error("build of a missing directory succeeded")
	}
	if _, err := os.Stat(failed); err == nil {
		t.Error("a failed build left its archive")
	}
	// skopeo reads both.
	if _, err := lookPath("skopeo"); err == nil {
		sh(t, tmp, "skopeo", "inspect", "oci-archive:"+ociTar+":app")
		sh(t, tmp, "skopeo", "inspect", "docker-archive:"+dockerTar)
	}
}

func lookPath(name string) (string, error) { return exec.LookPath(name) }

// TestCopyConvertsFormats converts an OCI image to Docker schema 2 and back:
// the layers and config keep their digests, the manifest is skopeo's.
func TestCopyConvertsFormats(t *testing.T) {
	layout := builtLayout(t)
	src := "oci:" + layout + ":app"
	tmp := t.TempDir()
	lading(t, "copy", src, "oci:"+tmp+"/d:app", "--format", "docker")
	if mt := strings.TrimSpace(lading(t, "inspect", "oci:"+tmp+"/d:app", "--format", "{{.MediaType}}")); mt != "application/vnd.docker.distribution.manifest.v2+json" {
		t.Fatalf("converted media type %s", mt)
	}
	if a, b := lading(t, "config", src), lading(t, "config", "oci:"+tmp+"/d:app"); a != b {
		t.Error("the config changed")
	}
	lading(t, "copy", "oci:"+tmp+"/d:app", "oci:"+tmp+"/o:app", "--format", "oci")
	if d1, d2 := lading(t, "digest", src), lading(t, "digest", "oci:"+tmp+"/o:app"); d1 != d2 {
		t.Errorf("OCI → Docker → OCI changed the manifest: %s %s", d1, d2)
	}
	if out := lading(t, "verify", tmp+"/d"); !strings.Contains(out, " 0 problems") {
		t.Errorf("verify: %s", out)
	}
	if _, err := exec.LookPath("skopeo"); err == nil {
		theirs := filepath.Join(tmp, "skopeo")
		sh(t, tmp, "skopeo", "copy", "--format", "v2s2", src, "oci:"+theirs+":app")
		if a, b := lading(t, "manifest", "oci:"+theirs+":app"), lading(t, "manifest", "oci:"+tmp+"/d:app"); a != b {
			t.Errorf("skopeo's conversion differs:\n%s\n%s", a, b)
		}
	}
}
