package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/lading-oci/lading/internal/registrytest"
	"github.com/lading-oci/lading/internal/testutil"
)

// runSetup makes a busybox image oci:LAYOUT:bb and an isolated cache; it
// skips unless runc can be used.
func runSetup(t *testing.T) (layout string) {
	t.Helper()
	testutil.NeedRoot(t)
	testutil.NeedTool(t, "runc", "runc")
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	t.Setenv("LADING_RUNTIME", "")
	root := t.TempDir()
	testutil.BusyboxTree(t, root)
	// A lowercase path: buildah takes an oci: path for a repository name.
	tmp, err := os.MkdirTemp("", "lading-run-test-")
	must(t, err)
	t.Cleanup(func() { os.RemoveAll(tmp) })
	layout = filepath.Join(tmp, "images")
	lading(t, "build", root, "-t", "oci:"+layout+":bb", "--env", "PATH=/bin", "--cmd", `["sh","-c","echo hello from busybox"]`)
	return layout
}

func runExit(err error) int {
	var ee exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	if err != nil {
		return -1
	}
	return 0
}

func TestRunCommand(t *testing.T) {
	layout := runSetup(t)
	ref := "oci:" + layout + ":bb"
	// The runs are named so that the check at the end looks only at this
	// test's containers (other tests use the same runtime state).
	names := []string{"lading-cli-run-1", "lading-cli-run-2", "lading-cli-run-3", "lading-cli-run-4"}
	if out := lading(t, "run", "--rm", "--name", names[0], ref); out != "hello from busybox\n" {
		t.Errorf("run: %q", out)
	}
	out, errOut, err := ladingErr(t, nil, "run", "--rm", "--name", names[1], "-e", "X=1", "-w", "/tmp", "-u", "user", ref, "--", "sh", "-c", "echo $X; pwd; id -un; echo oops >&2; exit 5")
	if runExit(err) != 5 || out != "1\n/tmp\nuser\n" || errOut != "oops\n" {
		t.Errorf("code %d (%v), out %q, stderr %q", runExit(err), err, out, errOut)
	}
	// stdin passes through.
	out, _, err = ladingErr(t, strings.NewReader("a\nb\nc\n"), "run", "--rm", "--name", names[2], ref, "--", "wc", "-l")
	if err != nil || strings.TrimSpace(out) != "3" {
		t.Errorf("stdin: %q %v", out, err)
	}
	// Volumes, and a copy instead of an overlay.
	host := t.TempDir()
	must(t, os.WriteFile(filepath.Join(host, "f"), []byte("host file"), 0o644))
	out, _, err = ladingErr(t, nil, "run", "--rm", "--name", names[3], "--rootfs", "copy", "-v", host+":/mnt:ro", ref, "--", "cat", "/mnt/f")
	if err != nil || out != "host file" {
		t.Errorf("volume: %q %v", out, err)
	}
	// A bad command line is a usage error; anything else that keeps the
	// container from running exits with 125, with the reason on stderr.
	for _, args := range [][]string{
		{"run", "--volume", "/nonexistent:/x", ref},
		{"run", "--network", "bogus", ref},
		{"run", "--name", "bad/name", ref},
		{"run", "--rootfs", "zfs", ref},
	} {
		var ue usageError
		if _, _, err := ladingErr(t, nil, args...); !errors.As(err, &ue) {
			t.Errorf("%v: %v", args, err)
		}
	}
	for _, c := range []struct {
		args []string
		msg  string
	}{
		{[]string{"run", "-u", "ghost", ref}, "ghost"},
		{[]string{"run", "oci:" + layout + ":missing"}, "missing"},
		{[]string{"run", "--runtime", "/no/such/runtime", ref}, "/no/such/runtime"},
	} {
		_, errOut, err := ladingErr(t, nil, c.args...)
		if runExit(err) != 125 || !strings.Contains(errOut, c.msg) {
			t.Errorf("%v: %v, stderr %q", c.args, err, errOut)
		}
	}
	outb, _ := exec.Command("runc", "list", "-q").Output()
	for _, n := range strings.Fields(string(outb)) {
		if slices.Contains(names, n) {
			t.Errorf("container left: %s", n)
		}
	}
}

// The bundle from lading bundle runs under plain runc with the output of
// lading run.
func TestBundleCommand(t *testing.T) {
	layout := runSetup(t)
	ref := "oci:" + layout + ":bb"
	dir := filepath.Join(t.TempDir(), "bundle")
	lading(t, "bundle", ref, dir, "-u", "user", "--", "sh", "-c", "echo in bundle; id -un")
	cmd := exec.Command("runc", "run", "--bundle", dir, "lading-cli-bundle-test")
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	_ = exec.Command("runc", "delete", "--force", "lading-cli-bundle-test").Run()
	if err != nil {
		t.Fatalf("runc run: %v: %s", err, errOut.String())
	}
	want := lading(t, "run", "--rm", "-u", "user", ref, "--", "sh", "-c", "echo in bundle; id -un")
	if out.String() != "in bundle\nuser\n" || out.String() != want {
		t.Errorf("runc: %q, lading run: %q", out.String(), want)
	}
	if _, _, err := ladingErr(t, nil, "bundle", ref, dir); err == nil {
		t.Error("a second bundle into the same directory was written")
	}
}

const cliContainerfile = `FROM %s
ENV GREETING=hi
WORKDIR /srv
COPY app.txt ./
RUN echo "$GREETING from RUN" > run.txt
CMD ["sh", "-c", "cat app.txt run.txt"]
`

func TestBuildFileCommand(t *testing.T) {
	layout := runSetup(t)
	ctxDir := t.TempDir()
	must(t, os.WriteFile(filepath.Join(ctxDir, "app.txt"), []byte("app\n"), 0o644))
	file := filepath.Join(t.TempDir(), "Containerfile")
	must(t, os.WriteFile(file, []byte(strings.ReplaceAll(cliContainerfile, "%s", "oci:"+layout+":bb")), 0o644))
	dst := "oci:" + layout + ":app"
	out := lading(t, "build", "-f", file, ctxDir, "-t", dst)
	if !strings.Contains(out, "STEP 5/6: RUN echo") || !strings.HasSuffix(out, "\n") || !strings.Contains(out, dst+" sha256:") {
		t.Errorf("output:\n%s", out)
	}
	if got := lading(t, "run", "--rm", dst); got != "app\nhi from RUN\n" {
		t.Errorf("run: %q", got)
	}
	// --quiet prints only the digest, and the unchanged build reuses it.
	q := lading(t, "build", "-q", "--file", file, ctxDir, "-t", dst)
	if !strings.HasPrefix(q, "sha256:") || strings.Count(q, "\n") != 1 || !strings.Contains(out, strings.TrimSpace(q)) {
		t.Errorf("quiet: %q", q)
	}
	// A failing RUN stops the build with its code and output; nothing is tagged.
	bad := filepath.Join(t.TempDir(), "Containerfile")
	must(t, os.WriteFile(bad, []byte("FROM oci:"+layout+":bb\nRUN echo about to fail; exit 7\n"), 0o644))
	out, _, err := ladingErr(t, nil, "build", "--file", bad, ctxDir, "-t", "oci:"+layout+":broken")
	if err == nil || !strings.Contains(err.Error(), ":2: ") || !strings.Contains(err.Error(), "code 7") || !strings.Contains(out, "about to fail") {
		t.Errorf("failing RUN: %v\n%s", err, out)
	}
	_, _, err = ladingErr(t, nil, "build", "-q", "--file", bad, ctxDir, "-t", "oci:"+layout+":broken")
	if err == nil || !strings.Contains(err.Error(), "about to fail") {
		t.Errorf("quiet failing RUN: %v", err)
	}
	if ls := lading(t, "ls", "oci:"+layout); strings.Contains(ls, "broken") {
		t.Errorf("a failed build was tagged:\n%s", ls)
	}
	// A syntax error names its line.
	must(t, os.WriteFile(bad, []byte("FROM scratch\n\nNOTANINSTRUCTION x\n"), 0o644))
	if _, _, err := ladingErr(t, nil, "build", "--file", bad, ctxDir, "-t", "oci:"+layout+":broken"); err == nil || !strings.Contains(err.Error(), "Containerfile:3: ") {
		t.Errorf("syntax error: %v", err)
	}
}

// An image buildah builds runs with lading, and lading's build of the same
// Containerfile gives the same configuration and files.
func TestBuildahInterop(t *testing.T) {
	layout := runSetup(t)
	buildah := needTool(t, "buildah")
	ctxDir := t.TempDir()
	must(t, os.WriteFile(filepath.Join(ctxDir, "app.txt"), []byte("app file\n"), 0o644))
	must(t, os.MkdirAll(filepath.Join(ctxDir, "conf"), 0o755))
	must(t, os.WriteFile(filepath.Join(ctxDir, "conf", "a.conf"), []byte("a=1\n"), 0o600))
	src := `FROM oci:` + layout + `:bb
ENV GREETING=hi MODE=interop
WORKDIR /srv
COPY app.txt ./
COPY conf/ /etc/app/
RUN echo "$GREETING $MODE" > /srv/run.txt && mkdir -p /var/lib/app && rm /bin/false
WORKDIR /opt/empty
WORKDIR /srv
USER user
LABEL org.example.a=b
EXPOSE 8080/tcp 53/udp
ENTRYPOINT ["/bin/sh", "-c"]
CMD ["cat /srv/app.txt /srv/run.txt; id -un"]
`
	file := filepath.Join(ctxDir, "Containerfile")
	must(t, os.WriteFile(file, []byte(src), 0o644))
	store := t.TempDir()
	b := func(args ...string) string {
		return sh(t, ctxDir, buildah, append([]string{"--storage-driver", "vfs", "--root", filepath.Join(store, "root"), "--runroot", filepath.Join(store, "run")}, args...)...)
	}
	b("build", "--isolation", "chroot", "-f", file, "-t", "localhost/interop", ctxDir)
	b("push", "localhost/interop", "oci:"+layout+":buildah")
	want := "app file\nhi interop\nuser\n"
	if got := lading(t, "run", "--rm", "oci:"+layout+":buildah"); got != want {
		t.Errorf("lading run of buildah's image: %q, want %q", got, want)
	}
	// FROM scratch too: buildah 1.28 writes an empty base-digest annotation
	// then, which lading reads with a warning.
	scratchCtx := t.TempDir()
	testutil.BusyboxTree(t, filepath.Join(scratchCtx, "rootfs"))
	must(t, os.WriteFile(filepath.Join(scratchCtx, "Containerfile"), []byte("FROM scratch\nCOPY rootfs/ /\nCMD [\"/bin/sh\", \"-c\", \"echo from scratch\"]\n"), 0o644))
	b("build", "--isolation", "chroot", "-f", filepath.Join(scratchCtx, "Containerfile"), "-t", "localhost/scratch", scratchCtx)
	b("push", "localhost/scratch", "oci:"+layout+":buildah-scratch")
	if got := lading(t, "run", "--rm", "oci:"+layout+":buildah-scratch"); got != "from scratch\n" {
		t.Errorf("lading run of buildah's scratch image: %q", got)
	}
	lading(t, "build", "-q", "--file", file, ctxDir, "-t", "oci:"+layout+":lading")
	if got := lading(t, "run", "--rm", "oci:"+layout+":lading"); got != want {
		t.Errorf("lading run of lading's image: %q", got)
	}
	type cfg struct {
		Config struct {
			User, WorkingDir string
			Env, Entrypoint  []string
			Cmd              []string
			Labels           map[string]string
			ExposedPorts     map[string]struct{}
		} `json:"config"`
	}
	var bc, lc cfg
	must(t, jsonDecode(lading(t, "config", "oci:"+layout+":buildah"), &bc))
	must(t, jsonDecode(lading(t, "config", "oci:"+layout+":lading"), &lc))
	maps.DeleteFunc(bc.Config.Labels, func(k, _ string) bool { return strings.HasPrefix(k, "io.buildah.") })
	bj, _ := jsonEncode(bc)
	lj, _ := jsonEncode(lc)
	if bj != lj {
		t.Errorf("configs differ:\nbuildah %s\nlading  %s", bj, lj)
	}
	bdir, ldir := filepath.Join(t.TempDir(), "b"), filepath.Join(t.TempDir(), "l")
	lading(t, "unpack", "oci:"+layout+":buildah", bdir)
	lading(t, "unpack", "oci:"+layout+":lading", ldir)
	bs, ls := snapshot(t, bdir), snapshot(t, ldir)
	// buildah leaves the mount points of RUN in the image, as empty files
	// and directories; lading removes them.
	const emptySHA = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	for _, stub := range []string{"dev", "proc", "sys", "run", "etc/hostname", "etc/hosts", "etc/resolv.conf"} {
		e, ok := bs[stub]
		if _, inLading := ls[stub]; !ok || inLading {
			continue
		}
		empty := (e.Type == "file" && e.SHA256 == emptySHA) || e.Type == "dir"
		for name := range bs {
			if strings.HasPrefix(name, stub+"/") {
				empty = false
			}
		}
		if empty {
			delete(bs, stub)
		}
	}
	for name, e := range bs {
		if le, ok := ls[name]; !ok {
			t.Errorf("%s: only in buildah's image", name)
		} else if le != e {
			t.Errorf("%s: buildah %+v, lading %+v", name, e, le)
		}
	}
	for name := range ls {
		if _, ok := bs[name]; !ok {
			t.Errorf("%s: only in lading's image", name)
		}
	}
}

func jsonDecode(s string, v any) error { return json.Unmarshal([]byte(s), v) }

func jsonEncode(v any) (string, error) {
	b, err := json.Marshal(v)
	return string(b), err
}

// Images in a registry run, and build on, as images in a layout do.
func TestRunFromRegistry(t *testing.T) {
	layout := runSetup(t)
	reg := registrytest.Start(t, registrytest.Distribution28(t), "")
	repo := reg.Host + "/lading/bb:1"
	lading(t, "push", "oci:"+layout+":bb", repo)
	if out := lading(t, "run", "--rm", repo, "--", "sh", "-c", "echo from the registry"); out != "from the registry\n" {
		t.Errorf("run: %q", out)
	}
	ctxDir := t.TempDir()
	file := filepath.Join(ctxDir, "Containerfile")
	must(t, os.WriteFile(file, []byte("FROM "+repo+"\nRUN echo built on the registry image > /x\nCMD [\"cat\", \"/x\"]\n"), 0o644))
	lading(t, "build", "-q", "--file", file, ctxDir, "-t", "oci:"+layout+":from-registry")
	if out := lading(t, "run", "--rm", "oci:"+layout+":from-registry"); out != "built on the registry image\n" {
		t.Errorf("run of the build: %q", out)
	}
}
