package main

import (
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lading-oci/lading/internal/registrytest"
)

// TestRegistryCommands pushes to and pulls from Debian's docker-registry
// (distribution 2.8) on loopback with the CLI: copy, push, pull, inspect,
// manifest, config, digest, ls of tags, catalog, tag, rm, delete and
// unpack straight from the registry; skopeo sees what lading pushed.
func TestRegistryCommands(t *testing.T) {
	reg := registrytest.Start(t, registrytest.Distribution28(t), "")
	layout, _ := multiLayout(t)
	repo := reg.Host + "/team/app"
	ctx := context.Background()

	// The index, every platform, then one image.
	out := lading(t, "push", "oci:"+layout+":multi", repo+":multi")
	if !strings.Contains(out, repo+":multi sha256:") {
		t.Fatalf("push printed %q", out)
	}
	local := strings.TrimSpace(lading(t, "digest", "oci:"+layout+":multi"))
	if remote := strings.TrimSpace(lading(t, "digest", repo+":multi")); remote != local {
		t.Fatalf("digest in the registry %s, in the layout %s", remote, local)
	}
	lading(t, "copy", "oci:"+layout+":linux-amd64", "docker://"+repo+":v1.2.0")
	lading(t, "tag", repo+":v1.2.0", "v1.10.0")
	lading(t, "tag", repo+":v1.2.0", "v1.9.1")
	if out := lading(t, "ls", repo, "--sort", "semver", "--filter", `^v1\.`); out != "v1.2.0\nv1.9.1\nv1.10.0\n" {
		t.Errorf("ls --sort semver: %q", out)
	}
	var repos []string
	must(t, json.Unmarshal([]byte(lading(t, "catalog", reg.Host, "--format", "json")), &repos))
	if len(repos) != 1 || repos[0] != "team/app" {
		t.Errorf("catalog %v", repos)
	}
	if out := lading(t, "inspect", repo+":multi"); !strings.Contains(out, "linux/arm64/v8") {
		t.Errorf("inspect of the index:\n%s", out)
	}
	if out := strings.TrimSpace(lading(t, "inspect", repo+":multi", "--platform", "linux/arm64", "--format", "{{.Architecture}}")); out != "arm64" {
		t.Errorf("inspect --platform: %q", out)
	}
	if a, b := lading(t, "config", "oci:"+layout+":linux-amd64"), lading(t, "config", repo+":v1.2.0"); a != b {
		t.Error("config differs through the registry")
	}
	var m struct{ Config struct{ Digest string } }
	must(t, json.Unmarshal([]byte(lading(t, "manifest", repo+":v1.2.0")), &m))
	if got := lading(t, "blob", repo, m.Config.Digest); got != lading(t, "config", repo+":v1.2.0") {
		t.Error("blob of the config from the registry differs")
	}
	// pull takes the default platform's image of the index; --all the index.
	pulled := filepath.Join(t.TempDir(), "pulled")
	lading(t, "pull", repo+":multi", pulled, "--platform", "linux/arm64")
	if out := lading(t, "inspect", "oci:"+pulled+":multi", "--format", "{{.Architecture}}"); strings.TrimSpace(out) != "arm64" {
		t.Errorf("pulled %q", out)
	}
	lading(t, "pull", repo+":multi", pulled, "--all")
	if d := strings.TrimSpace(lading(t, "digest", "oci:"+pulled+":multi")); d != local {
		t.Errorf("pull --all: %s, want %s", d, local)
	}
	if out := lading(t, "verify", pulled); !strings.Contains(out, " 0 problems") {
		t.Errorf("verify: %s", out)
	}
	// Unpack straight from the registry gives the layout's files.
	a, b := filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b")
	lading(t, "unpack", repo+":v1.2.0", a)
	lading(t, "unpack", "oci:"+layout+":linux-amd64", b)
	compareTrees(t, snapshot(t, b), snapshot(t, a), "unpack from the registry")
	// skopeo reads what lading pushed, with the same digest.
	if _, err := exec.LookPath("skopeo"); err == nil {
		out := sh(t, t.TempDir(), "skopeo", "inspect", "--raw", "--tls-verify=false", "docker://"+repo+":multi")
		if !strings.Contains(out, `"manifests"`) {
			t.Errorf("skopeo inspect --raw: %s", out)
		}
		sh(t, t.TempDir(), "skopeo", "copy", "--all", "--src-tls-verify=false", "docker://"+repo+":multi", "oci:"+filepath.Join(t.TempDir(), "s")+":x")
	}
	// Deletion: a tag alone cannot be deleted by distribution; the
	// manifest can.
	lading(t, "delete", repo+":v1.10.0")
	_, errOut, code := execCLI(t, ctx, "", "inspect", repo+":v1.2.0")
	if code != exitNotFound {
		t.Errorf("inspect after delete: exit %d %s", code, errOut)
	}
}

// TestRegistryAuth checks credentials with htpasswd: anonymous pushes are
// refused (exit 5), --username with --password-stdin works, and a wrong
// password is refused naming the registry.
func TestRegistryAuth(t *testing.T) {
	auth := registrytest.HtpasswdConfig(t, "ada", "s3cret")
	reg := registrytest.Start(t, registrytest.Distribution28(t), auth)
	layout := builtLayout(t)
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	ctx := context.Background()
	dst := reg.Host + "/private/app:1"
	_, errOut, code := execCLI(t, ctx, "", "copy", "oci:"+layout+":app", dst)
	if code != exitAuth || !strings.Contains(errOut, reg.Host) {
		t.Errorf("anonymous push: exit %d %s", code, errOut)
	}
	_, errOut, code = execCLI(t, ctx, "wrong\n", "copy", "oci:"+layout+":app", dst, "--username", "ada", "--password-stdin")
	if code != exitAuth {
		t.Errorf("wrong password: exit %d %s", code, errOut)
	}
	if _, errOut, code := execCLI(t, ctx, "s3cret\n", "copy", "oci:"+layout+":app", dst, "--username", "ada", "--password-stdin"); code != 0 {
		t.Fatalf("push with credentials: exit %d %s", code, errOut)
	}
	// login keeps them, and later commands find them.
	if _, errOut, code := execCLI(t, ctx, "s3cret\n", "login", reg.Host, "--username", "ada", "--password-stdin"); code != 0 {
		t.Fatalf("login: %s", errOut)
	}
	if out := lading(t, "ls", reg.Host+"/private/app"); out != "1\n" {
		t.Errorf("ls after login: %q", out)
	}
}
