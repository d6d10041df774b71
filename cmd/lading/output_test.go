package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// exec runs the CLI as main does and returns stdout, stderr and the exit
// code.
func execCLI(t *testing.T, ctx context.Context, stdin string, args ...string) (string, string, int) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := execute(ctx, &out, &errOut, strings.NewReader(stdin), args)
	return out.String(), errOut.String(), code
}

// builtLayout builds the test tree into a layout tagged app and returns
// the layout directory.
func builtLayout(t *testing.T) string {
	t.Helper()
	tmp := t.TempDir()
	src := filepath.Join(tmp, "src")
	writeTree(t, src)
	layout := filepath.Join(tmp, "images")
	lading(t, "build", src, "-t", "oci:"+layout+":app", "--timestamp", "1700000000")
	return layout
}

func TestExitCodes(t *testing.T) {
	layout := builtLayout(t)
	ctx := context.Background()
	cases := []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"inspect"}, exitUsage, "accepts 1 arg"},
		{[]string{"inspect", "oci:" + layout + ":app", "--no-such-flag"}, exitUsage, "unknown flag"},
		{[]string{"ls", layout, "--format", "yaml"}, exitUsage, `want json or a Go template`},
		{[]string{"verify", layout, "--format", "{{.X}}"}, exitUsage, `want json`},
		{[]string{"inspect", "oci:" + layout + ":nope"}, exitNotFound, `tag "nope" not found in ` + layout},
		{[]string{"inspect", "oci:" + filepath.Join(layout, "missing") + ":x"}, exitNotFound, "layout " + filepath.Join(layout, "missing") + " not found"},
		{[]string{"inspect", "oci:" + layout + "@sha256:" + strings.Repeat("0", 64)}, exitNotFound, "not found in " + layout},
		{[]string{"inspect", layout}, exitUsage, "write oci:" + layout},
		{[]string{"inspect", "./img"}, exitUsage, "write oci:./img"},
		{[]string{"inspect", "oci:" + layout + ":app", "--platform", "linux/s390x"}, exitNotFound, "the image is for linux/amd64"},
		{[]string{"inspect", "oci:" + layout + ":app", "--format", "{{.Nope}}"}, exitUsage, `no field "Nope"; the fields are Id, RepoTags`},
		{[]string{"tag", "oci:" + layout + ":app", "bad tag!"}, exitFailure, "a tag is letters and digits"},
		{[]string{"unpack", "oci:" + layout + ":app", filepath.Join(layout, "blobs")}, exitFailure, "hold one another"},
		{[]string{"gc", layout, "--progress", "fancy"}, exitUsage, "--progress \"fancy\""},
		{[]string{"unpack", "oci:" + layout + ":app", t.TempDir(), "--max-layer-size", "12 furlongs"}, exitUsage, "unknown unit"},
	}
	for _, c := range cases {
		_, errOut, code := execCLI(t, ctx, "", c.args...)
		if code != c.code || !strings.Contains(errOut, c.msg) {
			t.Errorf("lading %s: exit %d, stderr %q; want exit %d and %q", strings.Join(c.args, " "), code, errOut, c.code, c.msg)
		}
		if strings.Count(strings.TrimSpace(errOut), "\n") > 0 {
			t.Errorf("lading %s: error on several lines: %q", strings.Join(c.args, " "), errOut)
		}
	}
	// An interrupted command says so and exits 130.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, errOut, code := execCLI(t, cctx, "", "verify", layout)
	if code != exitInterrupted || strings.TrimSpace(errOut) != "lading: interrupted" {
		t.Errorf("interrupted: exit %d, %q", code, errOut)
	}
}

func TestJSONOutputs(t *testing.T) {
	layout := builtLayout(t)
	ref := "oci:" + layout + ":app"
	ctx := context.Background()
	for _, args := range [][]string{
		{"ls", layout}, {"inspect", ref}, {"digest", ref}, {"verify", layout}, {"gc", layout, "--dry-run"},
		{"layers", ref}, {"diff", ref, ref}, {"tag", ref, "team/app:v1"}, {"rm", "oci:" + layout + ":team/app:v1"},
		{"build", t.TempDir(), "-t", "oci:" + layout + ":empty"},
	} {
		out, errOut, code := execCLI(t, ctx, "", append(args, "--format", "json")...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, errOut)
		}
		var v any
		if err := json.Unmarshal([]byte(out), &v); err != nil {
			t.Errorf("%v --format json: not JSON: %v\n%s", args, err, out)
			continue
		}
		if strings.Contains(out, "null") {
			t.Errorf("%v --format json: an empty list is null:\n%s", args, out)
		}
		if args[0] != "inspect" { // inspect keeps docker's field names
			for _, key := range keysOf(v) {
				if key[0] < 'a' || key[0] > 'z' {
					t.Errorf("%v --format json: key %q is not lowerCamel", args, key)
				}
			}
		}
	}
	// A template applies to each ls entry.
	out := lading(t, "ls", layout, "--format", "{{.Tag}}={{size .ImageSize}}")
	if !regexp.MustCompile(`(?m)^app=\d+(\.\d)? (B|kB)$`).MatchString(out) {
		t.Errorf("ls template: %q", out)
	}
	// Text sizes are for people.
	if out := lading(t, "ls", layout); !regexp.MustCompile(` \d+(\.\d)? (B|kB) `).MatchString(out) {
		t.Errorf("ls sizes:\n%s", out)
	}
}

// keysOf lists every object key in a decoded JSON value.
func keysOf(v any) []string {
	var out []string
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			out = append(out, k)
			out = append(out, keysOf(x)...)
		}
	case []any:
		for _, x := range v {
			out = append(out, keysOf(x)...)
		}
	}
	return out
}

func TestIndexFormatSelectsPlatform(t *testing.T) {
	layout, _ := multiLayout(t)
	ref := "oci:" + layout + ":multi"
	// The text view lists the manifests; a template picks an image.
	if out := lading(t, "inspect", ref); !strings.Contains(out, "linux/arm64") || !strings.Contains(out, "--platform") {
		t.Errorf("index text view:\n%s", out)
	}
	if out := strings.TrimSpace(lading(t, "inspect", ref, "--platform", "linux/arm64", "--format", "{{.Architecture}}")); out != "arm64" {
		t.Errorf("--platform linux/arm64: %q", out)
	}
	_, errOut, code := execCLI(t, context.Background(), "", "inspect", ref, "--platform", "windows/amd64", "--format", "{{.Os}}")
	if code != exitNotFound || !strings.Contains(errOut, "linux/amd64, linux/arm64") {
		t.Errorf("missing platform: exit %d %q", code, errOut)
	}
}

func TestDiffJSONAndExitCode(t *testing.T) {
	tmp := t.TempDir()
	src := filepath.Join(tmp, "src")
	writeTree(t, src)
	layout := filepath.Join(tmp, "images")
	lading(t, "build", src, "-t", "oci:"+layout+":v1")
	must(t, os.Chmod(filepath.Join(src, "etc/hostname"), 0o600))
	lading(t, "build", src, "-t", "oci:"+layout+":v2")
	ctx := context.Background()
	out, _, code := execCLI(t, ctx, "", "diff", "oci:"+layout+":v1", "oci:"+layout+":v2", "--format", "json", "--exit-code")
	if code != exitFailure {
		t.Errorf("--exit-code on different images: exit %d", code)
	}
	var rep struct {
		Changed []struct {
			Path string
			Mode string
			Old  struct{ Mode string }
		}
	}
	must(t, json.Unmarshal([]byte(out), &rep))
	if len(rep.Changed) != 1 || rep.Changed[0].Mode != "-rw-------" || rep.Changed[0].Old.Mode != "-rw-r--r--" {
		t.Errorf("changed %+v", rep.Changed)
	}
	if _, _, code := execCLI(t, ctx, "", "diff", "oci:"+layout+":v1", "oci:"+layout+":v1", "--exit-code"); code != 0 {
		t.Errorf("--exit-code on one image: exit %d", code)
	}
}

func TestBuildQuietDigestfileExclude(t *testing.T) {
	tmp := t.TempDir()
	src := filepath.Join(tmp, "src")
	writeTree(t, src)
	must(t, os.WriteFile(filepath.Join(src, ".dockerignore"), []byte("var/cache\n*.txt\n"), 0o644))
	layout := filepath.Join(tmp, "images")
	df := filepath.Join(tmp, "digest")
	out, errOut, code := execCLI(t, context.Background(), "", "build", src, "-t", "oci:"+layout+":app", "-q", "--digestfile", df, "--exclude", "home")
	if code != 0 {
		t.Fatal(errOut)
	}
	dgst, _ := os.ReadFile(df)
	if strings.TrimSpace(out) != string(dgst) || !strings.HasPrefix(string(dgst), "sha256:") {
		t.Errorf("-q printed %q, digestfile %q", out, dgst)
	}
	if errOut != "" {
		t.Errorf("a quick build wrote to stderr: %q", errOut)
	}
	diff := lading(t, "diff", "oci:"+layout+":app", "oci:"+layout+":app")
	_ = diff
	layers := lading(t, "layers", "oci:"+layout+":app", "--files", "--format", "json")
	for _, gone := range []string{"var/cache", "notes.txt", "home"} {
		if strings.Contains(layers, gone) {
			t.Errorf("%s was not excluded", gone)
		}
	}
	if !strings.Contains(layers, "etc/hostname") {
		t.Error("etc/hostname missing")
	}
}

func TestCommitNoChanges(t *testing.T) {
	layout := builtLayout(t)
	root := filepath.Join(t.TempDir(), "root")
	lading(t, "unpack", "oci:"+layout+":app", root)
	_, errOut, code := execCLI(t, context.Background(), "", "commit", root, "--from", "oci:"+layout+":app", "-t", "oci:"+layout+":same")
	if code != 0 || !strings.Contains(errOut, "no changes") {
		t.Fatalf("commit of no changes: exit %d %q", code, errOut)
	}
	count := func(tag string) int {
		var m struct{ Layers []any }
		must(t, json.Unmarshal([]byte(lading(t, "manifest", "oci:"+layout+":"+tag)), &m))
		return len(m.Layers)
	}
	if count("same") != count("app") {
		t.Error("a commit of no changes added a layer")
	}
	lading(t, "commit", root, "--from", "oci:"+layout+":app", "-t", "oci:"+layout+":empty", "--allow-empty")
	if count("empty") != count("app")+1 {
		t.Error("--allow-empty added no layer")
	}
}

func TestProgressModes(t *testing.T) {
	layout := builtLayout(t)
	ctx := context.Background()
	_, errOut, code := execCLI(t, ctx, "", "verify", layout, "--progress", "json")
	if code != 0 {
		t.Fatal(errOut)
	}
	var started, finished int
	for _, line := range strings.Split(strings.TrimSpace(errOut), "\n") {
		var e struct{ ID, State, Time string }
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("progress line %q: %v", line, err)
		}
		switch e.State {
		case "started":
			started++
		case "finished":
			finished++
		}
	}
	if started != 3 || finished != 3 {
		t.Errorf("json progress of 3 blobs: %d started, %d finished\n%s", started, finished, errOut)
	}
	// plain prints a line per finished blob and a summary.
	_, errOut, _ = execCLI(t, ctx, "", "verify", layout, "--progress", "plain")
	if strings.Count(errOut, "done") != 3 || !strings.Contains(errOut, "finished in") {
		t.Errorf("plain progress:\n%s", errOut)
	}
	// auto on a pipe stays silent for quick work, and quiet always does.
	for _, mode := range []string{"auto", "quiet"} {
		if _, errOut, _ := execCLI(t, ctx, "", "verify", layout, "--progress", mode); errOut != "" {
			t.Errorf("--progress %s: %q", mode, errOut)
		}
	}
}

func TestRmSeveralAndTagsWithSlash(t *testing.T) {
	layout := builtLayout(t)
	ref := "oci:" + layout + ":app"
	lading(t, "tag", ref, "team/app:v1")
	lading(t, "tag", ref, "team/app:v2")
	if out := lading(t, "inspect", "oci:"+layout+":team/app:v1", "--format", "{{.Digest}}"); !strings.HasPrefix(out, "sha256:") {
		t.Errorf("inspect of a tag with / and : = %q", out)
	}
	dgst := strings.TrimSpace(lading(t, "digest", ref))
	out, errOut, code := execCLI(t, context.Background(), "", "rm", "oci:"+layout+":team/app:v1", "oci:"+layout+":missing", "oci:"+layout+"@"+dgst)
	if code != exitNotFound || !strings.Contains(errOut, `tag "missing" not found`) {
		t.Errorf("rm with one missing: exit %d, %q", code, errOut)
	}
	if !strings.Contains(out, "removed oci:"+layout+":team/app:v1") || !strings.Contains(out, "(tags app, team/app:v2)") {
		t.Errorf("rm output:\n%s", out)
	}
	if out := lading(t, "ls", layout, "--format", "json"); strings.TrimSpace(out) != "[]" {
		t.Errorf("after rm: %s", out)
	}
}

func TestFailedWritesLeaveNothing(t *testing.T) {
	layout := builtLayout(t)
	// Remove a layer: copying the image fails.
	var m struct{ Layers []struct{ Digest string } }
	must(t, json.Unmarshal([]byte(lading(t, "manifest", "oci:"+layout+":app")), &m))
	must(t, os.Remove(filepath.Join(layout, "blobs", "sha256", strings.TrimPrefix(m.Layers[0].Digest, "sha256:"))))
	parent := t.TempDir()
	ctx := context.Background()
	if _, _, code := execCLI(t, ctx, "", "tag", "oci:"+layout+":app", "oci:"+filepath.Join(parent, "copy")+":app"); code != exitNotFound {
		t.Errorf("copy of an image with a missing layer: exit %d", code)
	}
	if _, _, code := execCLI(t, ctx, "", "build", filepath.Join(parent, "no-such-dir"), "-t", "oci:"+filepath.Join(parent, "built")+":x"); code == 0 {
		t.Error("build of a missing directory succeeded")
	}
	if _, _, code := execCLI(t, ctx, "", "build", t.TempDir(), "--from", "oci:"+layout+":app", "-t", "oci:"+filepath.Join(parent, "on")+":x"); code != exitNotFound {
		t.Errorf("build on a base with a missing layer: exit %d", code)
	}
	if ents, _ := os.ReadDir(parent); len(ents) != 0 {
		t.Errorf("failed writes left %v", ents)
	}
}

func TestInitMessageOnStderr(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "l")
	out, errOut, code := execCLI(t, context.Background(), "", "init", dir)
	if code != 0 || out != "" || !strings.Contains(errOut, "initialized OCI layout in "+dir) {
		t.Errorf("init: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}

func TestIndexCommands(t *testing.T) {
	layout, descs := multiLayout(t)
	ref := func(tag string) string { return "oci:" + layout + ":" + tag }
	lading(t, "index", "create", ref("made"), ref("linux-amd64"), ref("linux-arm64-v8"), "--annotation", "v=1")
	var idx struct {
		Manifests []struct {
			Digest   string
			Platform struct{ Architecture, Variant string }
		}
		Annotations map[string]string
	}
	must(t, json.Unmarshal([]byte(lading(t, "manifest", ref("made"))), &idx))
	if len(idx.Manifests) != 2 || idx.Manifests[1].Platform.Variant != "v8" || idx.Annotations["v"] != "1" ||
		idx.Manifests[0].Digest != descs["linux/amd64"].Digest.String() {
		t.Fatalf("created index %+v", idx)
	}
	lading(t, "index", "remove", ref("made"), "--platform", "linux/arm64")
	lading(t, "index", "annotate", ref("made"), "--platform", "linux/amd64", "--annotation", "tuned=yes")
	idx.Manifests, idx.Annotations = nil, nil
	var raw map[string]any
	out := lading(t, "manifest", ref("made"))
	must(t, json.Unmarshal([]byte(out), &idx))
	must(t, json.Unmarshal([]byte(out), &raw))
	if len(idx.Manifests) != 1 || !strings.Contains(out, `"tuned":"yes"`) {
		t.Fatalf("edited index %s", out)
	}
	lading(t, "index", "add", ref("made"), ref("linux-arm64-v8"))
	if out := lading(t, "inspect", ref("made")); !strings.Contains(out, "linux/arm64/v8") {
		t.Errorf("index after add:\n%s", out)
	}
	_, errOut, code := execCLI(t, context.Background(), "", "index", "remove", ref("made"), "--platform", "windows/amd64")
	if code != exitNotFound || !strings.Contains(errOut, "windows/amd64") {
		t.Errorf("remove of a missing platform: %d %s", code, errOut)
	}
	if out := lading(t, "verify", layout); !strings.Contains(out, " 0 problems") {
		t.Errorf("verify: %s", out)
	}
}
