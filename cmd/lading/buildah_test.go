package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestImagesBuildahWrites checks the image format's basic promise: images
// Debian's buildah builds (OCI and Docker formats, multi-stage, FROM
// scratch; OCI ones carry an empty base.digest annotation) are read by
// lading: inspected (with a warning), verified and unpacked to the tree
// umoci unpacks.
func TestImagesBuildahWrites(t *testing.T) {
	needTool(t, "buildah")
	needTool(t, "umoci")
	if os.Geteuid() != 0 {
		t.Skip("buildah builds with the vfs driver need root here")
	}
	tmp := t.TempDir()
	ctxDir := filepath.Join(tmp, "ctx")
	writeTree(t, ctxDir)
	must(t, os.WriteFile(filepath.Join(ctxDir, "Containerfile"), []byte(`FROM scratch AS base
COPY etc /etc
COPY usr /usr
FROM scratch
COPY --from=base /etc /etc
COPY --from=base /usr/bin/tool /usr/bin/tool
COPY home /home
ENV PORT=8080
LABEL org.opencontainers.image.title=demo
WORKDIR /srv
CMD ["/usr/bin/tool"]
`), 0o644))
	buildah := func(args ...string) string {
		return sh(t, tmp, "buildah", append([]string{"--storage-driver", "vfs", "--root", filepath.Join(tmp, "storage"),
			"--runroot", filepath.Join(tmp, "run")}, args...)...)
	}
	layout := filepath.Join(tmp, "layout")
	for _, f := range []struct{ format, push string }{{"oci", "oci"}, {"docker", "v2s2"}} {
		buildah("build", "--isolation", "chroot", "-q", "--format", f.format, "-f", filepath.Join(ctxDir, "Containerfile"),
			"-t", "localhost/demo:"+f.format, ctxDir)
		buildah("push", "--format", f.push, "localhost/demo:"+f.format, "oci:"+layout+":"+f.format)
	}
	// Both formats, as buildah wrote them.
	if mt := strings.TrimSpace(lading(t, "inspect", "oci:"+layout+":docker", "--format", "{{.MediaType}}")); mt != "application/vnd.docker.distribution.manifest.v2+json" {
		t.Errorf("the docker-format image is %s", mt)
	}
	out, errOut, err := ladingErr(t, nil, "inspect", "oci:"+layout+":oci", "--format", "{{json .Config.Env}} {{.Config.WorkingDir}}")
	if err != nil {
		t.Fatalf("inspect of buildah's OCI image: %v", err)
	}
	if !strings.Contains(out, "PORT=8080") || !strings.Contains(out, "/srv") {
		t.Errorf("inspect: %s", out)
	}
	if !strings.Contains(errOut, "warning") || !strings.Contains(errOut, "base.digest") {
		t.Errorf("inspect does not warn of the empty base.digest: %q", errOut)
	}
	if out := lading(t, "verify", layout); !strings.Contains(out, " 0 problems") {
		t.Errorf("verify: %s", out)
	}
	// The manifest is still invalid to a strict validation.
	manifest := lading(t, "manifest", "oci:"+layout+":oci")
	if _, errOut, err := ladingErr(t, strings.NewReader(manifest), "validate", "-"); err == nil || !strings.Contains(errOut, "base.digest") {
		t.Errorf("validate of buildah's manifest: %v %s", err, errOut)
	}
	theirs := filepath.Join(tmp, "umoci")
	sh(t, tmp, "umoci", "unpack", "--rootless", "--image", layout+":oci", theirs)
	want := snapshot(t, filepath.Join(theirs, "rootfs"))
	for _, f := range []string{"oci", "docker"} {
		ours := filepath.Join(tmp, "lading-"+f)
		lading(t, "unpack", "--rootless", "oci:"+layout+":"+f, ours)
		compareTrees(t, want, snapshot(t, ours), "lading unpack of buildah's "+f+" image")
	}
	if _, ok := want["usr/bin/tool"]; !ok {
		t.Errorf("umoci's tree lacks the copied file: %v", want)
	}
}
