package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// lading runs the CLI in-process and returns stdout; it fails the test on error.
func lading(t *testing.T, args ...string) string {
	t.Helper()
	out, errOut, err := ladingErr(t, nil, args...)
	if err != nil {
		t.Fatalf("lading %s: %v\nstderr: %s", strings.Join(args, " "), err, errOut)
	}
	return out
}

// ladingErr runs the CLI in-process and returns stdout, stderr and the error.
func ladingErr(t *testing.T, stdin io.Reader, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	if stdin == nil {
		stdin = strings.NewReader("")
	}
	err := run(context.Background(), &out, &errOut, stdin, args...)
	return out.String(), errOut.String(), err
}

// writeTree makes a small root filesystem with every common entry type.
func writeTree(t *testing.T, dir string) {
	t.Helper()
	files := map[string]string{
		"etc/hostname":        "lading\n",
		"etc/app/config.toml": "port = 8080\n",
		"usr/bin/tool":        strings.Repeat("#!/bin/sh\necho tool\n", 50),
		"var/cache/big.bin":   strings.Repeat("x", 64<<10),
		"home/user/notes.txt": "notes",
	}
	for name, data := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	must(t, os.Chmod(filepath.Join(dir, "usr/bin/tool"), 0o755))
	must(t, os.Symlink("../etc/hostname", filepath.Join(dir, "home/hostname-link")))
	must(t, os.Link(filepath.Join(dir, "usr/bin/tool"), filepath.Join(dir, "usr/bin/tool-alias")))
	must(t, os.MkdirAll(filepath.Join(dir, "empty/dir"), 0o700))
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// entryInfo is what tree comparisons look at.
type entryInfo struct {
	Type   string
	Mode   fs.FileMode
	Link   string
	SHA256 string
}

// snapshot describes every entry below dir (paths relative to dir).
func snapshot(t *testing.T, dir string) map[string]entryInfo {
	t.Helper()
	out := map[string]entryInfo{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if rel == "." {
			return nil
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		e := entryInfo{Mode: fi.Mode().Perm() | (fi.Mode() & (fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky))}
		switch {
		case fi.Mode().IsRegular():
			e.Type = "file"
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			sum := sha256.Sum256(data)
			e.SHA256 = hex.EncodeToString(sum[:])
		case fi.IsDir():
			e.Type = "dir"
		case fi.Mode()&fs.ModeSymlink != 0:
			e.Type = "symlink"
			e.Mode = 0
			e.Link, _ = os.Readlink(p)
		default:
			e.Type = fi.Mode().Type().String()
		}
		out[rel] = e
		return nil
	})
	must(t, err)
	return out
}

func compareTrees(t *testing.T, want, got map[string]entryInfo, what string) {
	t.Helper()
	for p, w := range want {
		g, ok := got[p]
		if !ok {
			t.Errorf("%s: %s missing", what, p)
			continue
		}
		if g != w {
			t.Errorf("%s: %s: got %+v, want %+v", what, p, g, w)
		}
	}
	for p := range got {
		if _, ok := want[p]; !ok {
			t.Errorf("%s: unexpected %s", what, p)
		}
	}
}

func TestBuildInspectAndLayoutCommands(t *testing.T) {
	tmp := t.TempDir()
	src := filepath.Join(tmp, "src")
	writeTree(t, src)
	layout := filepath.Join(tmp, "images")
	ref := "oci:" + layout + ":app"

	out := lading(t, "build", src, "-t", ref, "--entrypoint", "/usr/bin/tool", "--cmd", `["--serve","--port=8080"]`,
		"--env", "PORT=8080", "--env", "MODE=prod", "--workdir", "/srv", "--user", "1000:1000", "--expose", "8080",
		"--expose", "53/udp", "--volume", "/data", "--label", "org.opencontainers.image.title=app", "--annotation", "owner=team",
		"--author", "Ada", "--platform", "linux/arm64/v8", "--timestamp", "1700000000", "--stop-signal", "SIGQUIT")
	if !strings.Contains(out, "sha256:") {
		t.Fatalf("build printed %q", out)
	}

	var cfg map[string]any
	must(t, json.Unmarshal([]byte(lading(t, "inspect", ref, "--format", "{{json .Config}}")), &cfg))
	if got := cfg["Entrypoint"]; !equalJSON(got, []any{"/usr/bin/tool"}) {
		t.Errorf("Entrypoint = %v", got)
	}
	if got := cfg["Cmd"]; !equalJSON(got, []any{"--serve", "--port=8080"}) {
		t.Errorf("Cmd = %v", got)
	}
	if got := cfg["Env"]; !equalJSON(got, []any{"PORT=8080", "MODE=prod"}) {
		t.Errorf("Env = %v", got)
	}
	if got := cfg["ExposedPorts"]; !equalJSON(got, map[string]any{"8080/tcp": map[string]any{}, "53/udp": map[string]any{}}) {
		t.Errorf("ExposedPorts = %v", got)
	}
	for k, want := range map[string]string{"WorkingDir": "/srv", "User": "1000:1000", "StopSignal": "SIGQUIT"} {
		if cfg[k] != want {
			t.Errorf("%s = %v, want %s", k, cfg[k], want)
		}
	}
	if got := strings.TrimSpace(lading(t, "inspect", ref, "--format", "{{.Architecture}}/{{.Variant}} {{.Os}} {{.Author}}")); got != "arm64/v8 linux Ada" {
		t.Errorf("platform via template = %q", got)
	}
	var diffIDs []string
	must(t, json.Unmarshal([]byte(lading(t, "inspect", ref, "--format", "{{json .RootFS.Layers}}")), &diffIDs))
	if len(diffIDs) != 1 || !strings.HasPrefix(diffIDs[0], "sha256:") {
		t.Fatalf("RootFS.Layers = %v", diffIDs)
	}
	var view inspectView
	must(t, json.Unmarshal([]byte(lading(t, "inspect", ref, "--format", "json")), &view))
	if view.Created != "2023-11-14T22:13:20Z" || view.Annotations["owner"] != "team" || len(view.Layers) != 1 || view.Size <= view.Layers[0].Size ||
		len(view.RepoTags) != 1 || view.RepoTags[0] != ref || len(view.RepoDigests) != 1 || !strings.HasSuffix(view.RepoDigests[0], view.Digest) {
		t.Errorf("inspect json = %+v", view)
	}
	text := lading(t, "inspect", ref)
	for _, want := range []string{"Platform:", "linux/arm64/v8", "Entrypoint:", "/usr/bin/tool", "Layers:", diffIDs[0]} {
		if !strings.Contains(text, want) {
			t.Errorf("inspect text lacks %q:\n%s", want, text)
		}
	}

	// manifest, config, digest and blob agree with each other.
	manifest := lading(t, "manifest", ref)
	dgst := strings.TrimSpace(lading(t, "digest", ref))
	if sum := sha256.Sum256([]byte(manifest)); "sha256:"+hex.EncodeToString(sum[:]) != dgst {
		t.Errorf("digest %s does not hash the manifest", dgst)
	}
	var m struct {
		Config struct{ Digest string }
		Layers []struct{ Digest string }
	}
	must(t, json.Unmarshal([]byte(manifest), &m))
	if got := lading(t, "blob", "oci:"+layout, m.Config.Digest); got != lading(t, "config", ref) {
		t.Errorf("blob of the config digest differs from config")
	}
	out, _, err := ladingErr(t, strings.NewReader(manifest), "validate", "-")
	if err != nil || strings.TrimSpace(out) != "valid" {
		t.Errorf("validate manifest: %q %v", out, err)
	}

	// ls lists the tag with its platform.
	ls := lading(t, "ls", layout)
	if !strings.Contains(ls, "app") || !strings.Contains(ls, dgst) || !strings.Contains(ls, "linux/arm64/v8") {
		t.Errorf("ls:\n%s", ls)
	}
	// The shell completes the layout's tags.
	if out := lading(t, "__complete", "inspect", "oci:"+layout+":"); !strings.Contains(out, ref+"\n") {
		t.Errorf("completion of %s: lacks %s:\n%s", layout, ref, out)
	}
	// tag, rm, verify, gc
	lading(t, "tag", ref, "stable")
	if strings.TrimSpace(lading(t, "digest", "oci:"+layout+":stable")) != dgst {
		t.Error("tag stable does not point at the image")
	}
	lading(t, "tag", ref, "oci:"+filepath.Join(tmp, "other")+":copy")
	if out := lading(t, "verify", filepath.Join(tmp, "other")); !strings.Contains(out, "0 problems") {
		t.Errorf("verify of the copy: %s", out)
	}
	lading(t, "rm", "oci:"+layout+":app", "oci:"+layout+":stable")
	if out := lading(t, "gc", layout, "--dry-run"); !strings.Contains(out, "would remove 3 blobs") {
		t.Errorf("gc --dry-run: %s", out)
	}
	if out := lading(t, "verify", layout); !strings.Contains(out, "3 blobs") {
		t.Errorf("dry run removed something: %s", out)
	}
	lading(t, "gc", layout)
	if out := lading(t, "verify", layout); !strings.Contains(out, "0 blobs") {
		t.Errorf("after gc: %s", out)
	}
}

func equalJSON(a, b any) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return bytes.Equal(ja, jb)
}

func TestValidateReportsEveryProblem(t *testing.T) {
	bad := `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:abc","size":-1},
"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:D41D8CD98F00B204E9800998ECF8427E","size":1}]}`
	_, errOut, err := ladingErr(t, strings.NewReader(bad), "validate", "-")
	var ee exitError
	if !errors.As(err, &ee) || ee.code != 1 {
		t.Fatalf("validate of a bad manifest: err = %v", err)
	}
	for _, want := range []string{"manifest.config.digest", "manifest.config.size", "manifest.layers[0].digest"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("validate output lacks %q:\n%s", want, errOut)
		}
	}
	_, errOut, err = ladingErr(t, strings.NewReader(`{"schemaVersion":1,"name":"x","tag":"y","fsLayers":[]}`), "validate", "-")
	if err == nil || !strings.Contains(errOut, "schema 1") {
		t.Errorf("schema 1: err %v, stderr %s", err, errOut)
	}
	_, errOut, err = ladingErr(t, strings.NewReader(`{"config":`), "validate", "--media-type", "application/vnd.oci.image.manifest.v1+json", "-")
	if err == nil || errOut == "" {
		t.Errorf("malformed JSON: err %v, stderr %s", err, errOut)
	}
}

func TestVerifyNamesCorruptBlob(t *testing.T) {
	tmp := t.TempDir()
	src := filepath.Join(tmp, "src")
	writeTree(t, src)
	layout := filepath.Join(tmp, "images")
	lading(t, "build", src, "-t", "oci:"+layout+":app")
	var m struct{ Layers []struct{ Digest string } }
	must(t, json.Unmarshal([]byte(lading(t, "manifest", "oci:"+layout+":app")), &m))
	hexPart := strings.TrimPrefix(m.Layers[0].Digest, "sha256:")
	blob := filepath.Join(layout, "blobs", "sha256", hexPart)
	data, err := os.ReadFile(blob)
	must(t, err)
	data[len(data)/2] ^= 0xff
	must(t, os.WriteFile(blob, data, 0o644))

	out, _, err := ladingErr(t, nil, "verify", layout)
	var ee exitError
	if !errors.As(err, &ee) || ee.code != exitVerify {
		t.Fatalf("verify of a corrupt layout: err = %v", err)
	}
	if !strings.Contains(out, m.Layers[0].Digest) || !strings.Contains(out, blob) {
		t.Errorf("verify output does not name the blob and its path:\n%s", out)
	}
	// Unpacking the corrupt image fails and names the layer.
	_, _, err = ladingErr(t, nil, "unpack", "oci:"+layout+":app", filepath.Join(tmp, "root"))
	if err == nil || !strings.Contains(err.Error(), m.Layers[0].Digest) {
		t.Errorf("unpack of a corrupt layer: %v", err)
	}
}

func TestReproducibleBuild(t *testing.T) {
	tmp := t.TempDir()
	a, b := filepath.Join(tmp, "a"), filepath.Join(tmp, "b")
	writeTree(t, a)
	writeTree(t, b)
	// Different times on disk must not matter once clamped (both are later
	// than the timestamp).
	old := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	must(t, filepath.WalkDir(b, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.Type()&fs.ModeSymlink != 0 {
			return err
		}
		return os.Chtimes(p, old, old)
	}))
	time.Sleep(10 * time.Millisecond)
	for _, comp := range []string{"gzip", "zstd", "none"} {
		t.Setenv("SOURCE_DATE_EPOCH", "1600000000")
		da := lading(t, "build", a, "-t", "oci:"+filepath.Join(tmp, "la")+":"+comp, "--compression", comp)
		t.Setenv("SOURCE_DATE_EPOCH", "1600000000")
		db := lading(t, "build", b, "-t", "oci:"+filepath.Join(tmp, "lb")+":"+comp, "--compression", comp)
		if strings.Fields(da)[1] != strings.Fields(db)[1] {
			t.Errorf("%s: builds of the same tree differ: %s vs %s", comp, da, db)
		}
	}
}

func TestUnpackCommitRoundTrip(t *testing.T) {
	tmp := t.TempDir()
	src := filepath.Join(tmp, "src")
	writeTree(t, src)
	layout := filepath.Join(tmp, "images")
	lading(t, "build", src, "-t", "oci:"+layout+":base")

	root := filepath.Join(tmp, "root")
	lading(t, "unpack", "oci:"+layout+":base", root)
	compareTrees(t, snapshot(t, src), snapshot(t, root), "unpack of base")

	// Change the tree: add, modify (same size), delete a file and a directory.
	must(t, os.WriteFile(filepath.Join(root, "etc/new.conf"), []byte("new"), 0o600))
	must(t, os.WriteFile(filepath.Join(root, "etc/hostname"), []byte("ladinG\n"), 0o644))
	must(t, os.RemoveAll(filepath.Join(root, "var/cache")))
	must(t, os.Remove(filepath.Join(root, "home/user/notes.txt")))
	lading(t, "commit", root, "--from", "oci:"+layout+":base", "-t", "oci:"+layout+":changed")

	again := filepath.Join(tmp, "again")
	lading(t, "unpack", "oci:"+layout+":changed", again)
	compareTrees(t, snapshot(t, root), snapshot(t, again), "unpack of the commit")

	// The commit's layer wastes what it deleted: 64 KiB of var/cache and 5 bytes of notes,
	// plus the 7 bytes of the overwritten hostname.
	var rep struct {
		WastedBytes int64 `json:"wastedBytes"`
		Layers      []struct {
			Removed int `json:"removed"`
		} `json:"layers"`
	}
	must(t, json.Unmarshal([]byte(lading(t, "layers", "oci:"+layout+":changed", "--format", "json")), &rep))
	if want := int64(64<<10 + 5 + 7); rep.WastedBytes != want {
		t.Errorf("wasted bytes = %d, want %d", rep.WastedBytes, want)
	}
	diff := lading(t, "diff", "oci:"+layout+":base", "oci:"+layout+":changed")
	for _, want := range []string{"+ etc/new.conf", "- var/cache", "- home/user/notes.txt", "etc/hostname"} {
		if !strings.Contains(diff, want) {
			t.Errorf("diff lacks %q:\n%s", want, diff)
		}
	}
}

func TestAppendFlattenMutate(t *testing.T) {
	tmp := t.TempDir()
	src := filepath.Join(tmp, "src")
	writeTree(t, src)
	layout := filepath.Join(tmp, "images")
	lading(t, "build", src, "-t", "oci:"+layout+":base")

	extra := filepath.Join(tmp, "extra")
	must(t, os.MkdirAll(filepath.Join(extra, "opt"), 0o755))
	must(t, os.WriteFile(filepath.Join(extra, "opt/added"), []byte("added"), 0o644))
	tarball := filepath.Join(tmp, "extra.tar.gz")
	if out, err := exec.Command("tar", "-C", extra, "-czf", tarball, ".").CombinedOutput(); err != nil {
		t.Fatalf("tar: %v %s", err, out)
	}
	lading(t, "append", "oci:"+layout+":base", tarball, "-t", "oci:"+layout+":appended")
	var layers []map[string]any
	must(t, json.Unmarshal([]byte(lading(t, "inspect", "oci:"+layout+":appended", "--format", "{{json .Layers}}")), &layers))
	if len(layers) != 2 || layers[1]["MediaType"] != "application/vnd.oci.image.layer.v1.tar+gzip" {
		t.Fatalf("appended layers = %v", layers)
	}
	blob, err := os.ReadFile(tarball)
	must(t, err)
	if sum := sha256.Sum256(blob); layers[1]["Digest"] != "sha256:"+hex.EncodeToString(sum[:]) {
		t.Errorf("append changed the layer's bytes")
	}

	lading(t, "flatten", "oci:"+layout+":appended", "-t", "oci:"+layout+":flat", "--compression", "zstd")
	must(t, json.Unmarshal([]byte(lading(t, "inspect", "oci:"+layout+":flat", "--format", "{{json .Layers}}")), &layers))
	if len(layers) != 1 || layers[0]["MediaType"] != "application/vnd.oci.image.layer.v1.tar+zstd" {
		t.Fatalf("flattened layers = %v", layers)
	}
	a, b := filepath.Join(tmp, "a"), filepath.Join(tmp, "b")
	lading(t, "unpack", "oci:"+layout+":appended", a)
	lading(t, "unpack", "oci:"+layout+":flat", b)
	compareTrees(t, snapshot(t, a), snapshot(t, b), "flatten")

	lading(t, "mutate", "oci:"+layout+":flat", "-t", "oci:"+layout+":mutated", "--env", "X=1", "--cmd", "run")
	if got := lading(t, "inspect", "oci:"+layout+":mutated", "--format", "{{json .Layers}}"); got != lading(t, "inspect", "oci:"+layout+":flat", "--format", "{{json .Layers}}") {
		t.Errorf("mutate changed layers")
	}
	if got := strings.TrimSpace(lading(t, "inspect", "oci:"+layout+":mutated", "--format", "{{json .Config.Env}} {{json .Config.Cmd}}")); got != `["X=1"] ["run"]` {
		t.Errorf("mutated config = %s", got)
	}
}

func TestCLIErrors(t *testing.T) {
	tmp := t.TempDir()
	src := filepath.Join(tmp, "src")
	writeTree(t, src)
	lading(t, "build", src, "-t", "oci:"+filepath.Join(tmp, "ok")+":x")
	empty := t.TempDir()
	cases := []struct {
		args []string
		want string // what the error must say
	}{
		{[]string{"inspect", "oci:" + filepath.Join(tmp, "missing") + ":x"}, "layout " + filepath.Join(tmp, "missing") + " not found"},
		{[]string{"inspect", "docker://registry.invalid/app:1"}, "registry.invalid"},
		{[]string{"build", filepath.Join(tmp, "nodir"), "-t", "oci:" + filepath.Join(tmp, "l") + ":x"}, "no such file or directory"},
		{[]string{"build", empty, "-t", "oci:" + filepath.Join(tmp, "l")}, "name a tag (oci:DIR:TAG)"},
		{[]string{"build", empty, "-t", "oci:" + filepath.Join(tmp, "l") + ":x", "--env", "NOEQUALS"}, `env "NOEQUALS": invalid: want KEY=VALUE`},
		{[]string{"build", empty, "-t", "oci:" + filepath.Join(tmp, "l") + ":x", "--expose", "99999"}, `port "99999": invalid: want a number from 1 to 65535`},
		{[]string{"build", empty, "-t", "oci:" + filepath.Join(tmp, "l") + ":x", "--compression", "brotli"}, "brotli"},
		{[]string{"blob", "oci:" + tmp, "sha256:zz"}, `digest "sha256:zz": invalid`},
		{[]string{"unpack", "oci:" + filepath.Join(tmp, "ok") + ":x", filepath.Join(tmp, "ok", "blobs")}, "hold one another"},
		{[]string{"build", src, "-t", "oci:" + filepath.Join(src, "images") + ":x"}, "inside the directory the layer is made from"},
	}
	for _, c := range cases {
		_, _, err := ladingErr(t, nil, c.args...)
		if err == nil {
			t.Errorf("lading %s: no error", strings.Join(c.args, " "))
			continue
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("lading %s: %v; want it to say %q", strings.Join(c.args, " "), err, c.want)
		}
		if _, err := os.Stat(filepath.Join(src, "images")); err == nil {
			t.Errorf("a refused build left a layout in its context")
		}
		if _, err := os.Stat(filepath.Join(tmp, "l")); err == nil {
			t.Errorf("lading %s: a refused build left its destination layout", strings.Join(c.args, " "))
		}
		if msg := oneLine(err); strings.Contains(msg, "\n") || msg == "" {
			t.Errorf("lading %s: error not one line: %q", strings.Join(c.args, " "), msg)
		}
	}
}
