package server

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lading-oci/lading/content/ocilayout"
	"github.com/lading-oci/lading/registry/storage"
	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/crypto/bcrypt"
)

// Pinned versions of the peers installed with go install.
const (
	craneModule  = "github.com/google/go-containerregistry/cmd/crane@v0.21.7"
	regctlModule = "github.com/regclient/regclient/cmd/regctl@v0.11.1"
	orasModule   = "oras.land/oras/cmd/oras@v1.3.6"
)

// goPeer installs a Go command at a pinned version into a cache under the
// temporary directory (once) and returns its path; the test is skipped if
// it cannot be installed (no network).
func goPeer(t *testing.T, module string) string {
	t.Helper()
	name := filepath.Base(strings.Split(module, "@")[0])
	dir := filepath.Join(os.TempDir(), "lading-peers", strings.NewReplacer("/", "_", "@", "_").Replace(module))
	bin := filepath.Join(dir, name)
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	cmd := exec.Command("go", "install", module)
	cmd.Env = append(os.Environ(), "GOBIN="+dir, "GOFLAGS=-buildvcs=false")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Skipf("cannot install %s: %v: %s", module, err, out)
	}
	return bin
}

func debianPeer(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s is not installed", name)
	}
	return p
}

// run runs a peer and fails the test if it fails.
func run(t *testing.T, env []string, name string, args ...string) string {
	t.Helper()
	out, err := runErr(env, name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, out)
	}
	return out
}

func runErr(env []string, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*60e9)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// testLayout writes a one-layer image into a new OCI layout, tagged tag.
func testLayout(t *testing.T, tag string) string {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	st, err := ocilayout.Init(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var raw bytes.Buffer
	tw := tar.NewWriter(&raw)
	body := []byte("hello from lading\n")
	tw.WriteHeader(&tar.Header{Name: "hello.txt", Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg})
	tw.Write(body)
	tw.Close()
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(raw.Bytes())
	zw.Close()
	push := func(mt string, data []byte) ocispec.Descriptor {
		d := ocispec.Descriptor{MediaType: mt, Digest: digest.FromBytes(data), Size: int64(len(data))}
		if err := st.Push(ctx, d, bytes.NewReader(data)); err != nil {
			t.Fatal(err)
		}
		return d
	}
	layer := push(ocispec.MediaTypeImageLayerGzip, gz.Bytes())
	cfg, _ := json.Marshal(ocispec.Image{Platform: ocispec.Platform{Architecture: "amd64", OS: "linux"}, RootFS: ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{digest.FromBytes(raw.Bytes())}}})
	cd := push(ocispec.MediaTypeImageConfig, cfg)
	m, _ := json.Marshal(ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest, Config: cd, Layers: []ocispec.Descriptor{layer}})
	md := push(ocispec.MediaTypeImageManifest, m)
	if err := st.Tag(ctx, md, tag); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestRealClients has skopeo, crane, regctl and oras push, pull, copy and
// attach referrers, and skopeo and umoci read the registry's storage
// directly as OCI layouts.
func TestRealClients(t *testing.T) {
	if testing.Short() {
		t.Skip("talks to real clients")
	}
	skopeo := debianPeer(t, "skopeo")
	r := newTestRegistry(t, Options{})
	host := strings.TrimPrefix(r.srv.URL, "http://")
	home := t.TempDir()
	env := []string{"HOME=" + home, "DOCKER_CONFIG=" + filepath.Join(home, ".docker"), "XDG_CONFIG_HOME=" + filepath.Join(home, ".config")}
	layout := testLayout(t, "v1")

	// skopeo pushes from a layout, and reads back through the registry and
	// straight from the registry's storage.
	run(t, env, skopeo, "copy", "--dest-tls-verify=false", "oci:"+layout+":v1", "docker://"+host+"/skopeo/img:v1")
	out := run(t, env, skopeo, "inspect", "--tls-verify=false", "docker://"+host+"/skopeo/img:v1")
	if !strings.Contains(out, `"Architecture": "amd64"`) {
		t.Fatalf("skopeo inspect: %s", out)
	}
	run(t, env, skopeo, "inspect", "oci:"+filepath.Join(r.root, "skopeo/img")+":v1")
	pulled := filepath.Join(t.TempDir(), "pulled")
	run(t, env, skopeo, "copy", "--src-tls-verify=false", "docker://"+host+"/skopeo/img:v1", "oci:"+pulled+":v1")
	if umoci, err := exec.LookPath("umoci"); err == nil {
		bundle := filepath.Join(t.TempDir(), "bundle")
		run(t, env, umoci, "unpack", "--rootless", "--image", filepath.Join(r.root, "skopeo/img")+":v1", bundle)
		if data, err := os.ReadFile(filepath.Join(bundle, "rootfs", "hello.txt")); err != nil || string(data) != "hello from lading\n" {
			t.Fatalf("umoci unpacked %q, %v", data, err)
		}
	}

	crane := goPeer(t, craneModule)
	run(t, env, crane, "copy", host+"/skopeo/img:v1", host+"/crane/copy:v1")
	if got := strings.TrimSpace(run(t, env, crane, "ls", host+"/crane/copy")); got != "v1" {
		t.Fatalf("crane ls: %q", got)
	}
	d1 := strings.TrimSpace(run(t, env, crane, "digest", host+"/skopeo/img:v1"))
	d2 := strings.TrimSpace(run(t, env, crane, "digest", host+"/crane/copy:v1"))
	if d1 != d2 {
		t.Fatalf("copy changed the digest: %s %s", d1, d2)
	}
	tarball := filepath.Join(t.TempDir(), "layer.tar")
	os.WriteFile(tarball, mustTar(t, "extra.txt", "more"), 0o644)
	run(t, env, crane, "append", "-b", host+"/crane/copy:v1", "-f", tarball, "-t", host+"/crane/appended:v2")
	run(t, env, crane, "pull", "--format", "oci", host+"/crane/appended:v2", filepath.Join(t.TempDir(), "cranepull"))
	if cat := run(t, env, crane, "catalog", host); !strings.Contains(cat, "crane/appended") {
		t.Fatalf("catalog: %s", cat)
	}

	regctl := goPeer(t, regctlModule)
	run(t, env, regctl, "registry", "set", "--tls", "disabled", host)
	run(t, env, regctl, "image", "copy", host+"/crane/appended:v2", host+"/regctl/img:v2")
	sbom := filepath.Join(t.TempDir(), "sbom.json")
	os.WriteFile(sbom, []byte(`{"sbom":true}`), 0o644)
	run(t, env, regctl, "artifact", "put", "--subject", host+"/skopeo/img:v1", "--artifact-type", "application/vnd.example.sbom", "--file", sbom, "--file-media-type", "application/json")

	oras := goPeer(t, orasModule)
	sig := filepath.Join(t.TempDir(), "sig.txt")
	os.WriteFile(sig, []byte("signed"), 0o644)
	run(t, env, oras, "attach", "--plain-http", "--disable-path-validation", "--artifact-type", "application/vnd.example.sig", host+"/skopeo/img:v1", sig+":text/plain")
	out = run(t, env, oras, "discover", "--plain-http", "--format", "json", host+"/skopeo/img:v1")
	if !strings.Contains(out, "application/vnd.example.sbom") || !strings.Contains(out, "application/vnd.example.sig") {
		t.Fatalf("oras discover: %s", out)
	}
	out = run(t, env, regctl, "artifact", "list", "--format", "{{json .}}", host+"/skopeo/img:v1")
	if !strings.Contains(out, "application/vnd.example.sig") {
		t.Fatalf("regctl artifact list: %s", out)
	}
	run(t, env, oras, "pull", "--plain-http", "-o", t.TempDir(), host+"/skopeo/img@"+referrerOfType(t, out, "application/vnd.example.sbom"))
	r.verifyLayouts()
}

// referrerOfType picks from regctl's referrers list the one of the given
// artifact type.
func referrerOfType(t *testing.T, listJSON, artifactType string) string {
	t.Helper()
	var l struct {
		Manifests []ocispec.Descriptor `json:"descriptors"`
	}
	if err := json.Unmarshal([]byte(listJSON), &l); err != nil {
		t.Fatalf("referrers list: %v: %s", err, listJSON)
	}
	for _, m := range l.Manifests {
		if m.ArtifactType == artifactType {
			return string(m.Digest)
		}
	}
	t.Fatalf("no referrer of type %s in %s", artifactType, listJSON)
	return ""
}

func mustTar(t *testing.T, name, body string) []byte {
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg})
	tw.Write([]byte(body))
	tw.Close()
	return b.Bytes()
}

// TestRealClientsAuth: with an htpasswd file, skopeo and crane are refused
// writes anonymously and with a wrong password, and succeed with the right
// one; anonymous pull works when enabled.
func TestRealClientsAuth(t *testing.T) {
	if testing.Short() {
		t.Skip("talks to real clients")
	}
	skopeo := debianPeer(t, "skopeo")
	hash, _ := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	users, _ := ParseHtpasswd(strings.NewReader("ci:" + string(hash) + "\n"))
	for _, token := range []bool{false, true} {
		t.Run(fmt.Sprintf("token=%v", token), func(t *testing.T) {
			a := &Auth{Users: users, AnonymousPull: true}
			if token {
				a.TokenKey = []byte("secret")
			}
			root := t.TempDir()
			st, err := storage.Open(context.Background(), root, storage.Options{NoSync: true})
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			srv := httptest.NewServer(New(st, Options{Auth: a}))
			defer srv.Close()
			host := strings.TrimPrefix(srv.URL, "http://")
			home := t.TempDir()
			env := []string{"HOME=" + home, "DOCKER_CONFIG=" + filepath.Join(home, ".docker")}
			layout := testLayout(t, "v1")
			dst := "docker://" + host + "/secure/img:v1"
			if out, err := runErr(env, skopeo, "copy", "--dest-tls-verify=false", "oci:"+layout+":v1", dst); err == nil {
				t.Fatalf("anonymous push accepted: %s", out)
			}
			if out, err := runErr(env, skopeo, "copy", "--dest-tls-verify=false", "--dest-creds", "ci:wrong", "oci:"+layout+":v1", dst); err == nil {
				t.Fatalf("wrong password accepted: %s", out)
			}
			run(t, env, skopeo, "copy", "--dest-tls-verify=false", "--dest-creds", "ci:pw", "oci:"+layout+":v1", dst)
			run(t, env, skopeo, "inspect", "--tls-verify=false", dst) // anonymous pull
			crane := goPeer(t, craneModule)
			if out, err := runErr(env, crane, "tag", host+"/secure/img:v1", "v2"); err == nil {
				t.Fatalf("crane anonymous tag accepted: %s", out)
			}
			run(t, env, crane, "auth", "login", host, "-u", "ci", "-p", "pw")
			run(t, env, crane, "tag", host+"/secure/img:v1", "v2")
		})
	}
}
