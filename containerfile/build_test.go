package containerfile

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/lading-oci/lading/bundle"
	"github.com/lading-oci/lading/container"
	"github.com/lading-oci/lading/content"
	"github.com/lading-oci/lading/content/ocilayout"
	"github.com/lading-oci/lading/errdef"
	"github.com/lading-oci/lading/internal/testutil"
	"github.com/lading-oci/lading/mutate"
)

// env is a test's store (holding the busybox image as "busybox"), build
// context and cache.
type env struct {
	st    *ocilayout.Store
	base  *content.LoadedImage
	ctx   string
	cache *container.Cache
	rt    *container.Runtime
}

func newEnv(t *testing.T) *env {
	t.Helper()
	st, img := testutil.BusyboxImage(t, filepath.Join(t.TempDir(), "layout"), "busybox", mutate.ConfigChanges{
		Env: []string{"PATH=/bin"},
	})
	c, err := container.OpenCache(filepath.Join(t.TempDir(), "cache"))
	if err != nil {
		t.Fatal(err)
	}
	return &env{st: st, base: img, ctx: t.TempDir(), cache: c}
}

// needRuntime gives RUN a runtime, or skips.
func (e *env) needRuntime(t *testing.T) {
	t.Helper()
	testutil.NeedRoot(t)
	e.rt = &container.Runtime{Name: "runc", Path: testutil.NeedTool(t, "runc", "runc")}
}

func (e *env) file(t *testing.T, name, data string) {
	t.Helper()
	p := filepath.Join(e.ctx, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func (e *env) build(t *testing.T, src string, mod func(*Options)) (*Result, string, error) {
	t.Helper()
	f, err := Parse("Containerfile", []byte(src))
	if err != nil {
		return nil, "", err
	}
	var out bytes.Buffer
	o := Options{
		Store: e.st, File: f, ContextDir: e.ctx, Cache: e.cache, Runtime: e.rt, Stdout: &out,
		Resolve: func(ctx context.Context, ref string) (*content.LoadedImage, error) {
			if ref == "busybox" {
				return e.base, nil
			}
			return nil, errors.New(ref + ": " + errdef.ErrNotFound.Error())
		},
	}
	if mod != nil {
		mod(&o)
	}
	res, err := Build(context.Background(), o)
	return res, out.String(), err
}

// run runs img and returns its output.
func (e *env) run(t *testing.T, img *content.LoadedImage, args ...string) string {
	t.Helper()
	var out, errOut bytes.Buffer
	code, err := container.Run(context.Background(), e.st, img, container.Options{
		Options: bundle.Options{Args: args}, Runtime: e.rt, Cache: e.cache, Remove: true,
		ExecOptions: container.ExecOptions{Stdout: &out, Stderr: &errOut},
	})
	if err != nil || code != 0 {
		t.Fatalf("run: code %d, %v: %s", code, err, errOut.String())
	}
	return out.String()
}

const appFile = `ARG GREETING=hello
FROM busybox
ARG GREETING
ARG WHO=world
ENV APP=/srv/app MODE=prod
WORKDIR $APP
COPY app/ ./
COPY --chmod=0755 tool.sh /usr/local/bin/tool
RUN echo "$GREETING $WHO, mode $MODE" > greeting && cat greeting
LABEL org.example.app=demo version=1
EXPOSE 8080 53/udp
VOLUME /data
USER user
STOPSIGNAL SIGINT
CMD ["sh", "-c", "cat greeting; cat config.txt; /usr/local/bin/tool; id -un"]
`

func TestBuildRunAndCache(t *testing.T) {
	e := newEnv(t)
	e.needRuntime(t)
	e.file(t, "app/config.txt", "config v1\n")
	e.file(t, "app/skip.log", "ignored\n")
	e.file(t, ".dockerignore", "*/*.log\n")
	e.file(t, "tool.sh", "#!/bin/sh\necho tool runs\n")
	res, out, err := e.build(t, appFile, func(o *Options) { o.BuildArgs = map[string]string{"WHO": "tests", "UNUSED": "x"} })
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if res.Steps != 14 || res.Ran != 1 || res.Cached != 0 {
		t.Errorf("steps %d ran %d cached %d", res.Steps, res.Ran, res.Cached)
	}
	for _, want := range []string{"STEP 1/14: FROM busybox", "STEP 8/14: RUN echo", "hello tests, mode prod\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if !slices.ContainsFunc(res.Warnings, func(w string) bool { return strings.Contains(w, "UNUSED") }) {
		t.Errorf("no warning for the unused build argument: %v", res.Warnings)
	}
	cfg := res.Image.ConfigFile.Config
	if cfg.WorkingDir != "/srv/app" || cfg.User != "user" || cfg.StopSignal != "SIGINT" ||
		!slices.Equal(cfg.Env, []string{"PATH=/bin", "APP=/srv/app", "MODE=prod"}) ||
		cfg.Labels["org.example.app"] != "demo" || cfg.Labels["version"] != "1" ||
		len(cfg.ExposedPorts) != 2 || len(cfg.Volumes) != 1 ||
		!slices.Equal(cfg.Cmd, []string{"sh", "-c", "cat greeting; cat config.txt; /usr/local/bin/tool; id -un"}) {
		t.Errorf("config %+v", cfg)
	}
	if n := len(res.Image.Manifest.Layers); n != 5 { // base, WORKDIR's directory, two COPYs, RUN
		t.Errorf("%d layers", n)
	}
	if got := e.run(t, res.Image); got != "hello tests, mode prod\nconfig v1\ntool runs\nuser\n" {
		t.Errorf("run: %q", got)
	}
	if got := e.run(t, res.Image, "ls", "/srv/app"); got != "config.txt\ngreeting\n" {
		t.Errorf("files: %q (skip.log must be ignored)", got)
	}
	// The same build again does no work and gives the same image: every
	// step but FROM and the ARGs (which make no image) is a cache hit.
	res2, out2, err := e.build(t, appFile, func(o *Options) { o.BuildArgs = map[string]string{"WHO": "tests"} })
	if err != nil {
		t.Fatal(err)
	}
	if res2.Image.Desc.Digest != res.Image.Desc.Digest || res2.Ran != 0 || res2.Cached != 11 {
		t.Errorf("rebuild: %s (was %s), ran %d, cached %d\n%s", res2.Image.Desc.Digest, res.Image.Desc.Digest, res2.Ran, res2.Cached, out2)
	}
	if strings.Count(out2, "Using cache") != 11 {
		t.Errorf("rebuild output:\n%s", out2)
	}
	// An ignored file changing changes nothing.
	e.file(t, "app/skip.log", "still ignored\n")
	if res3, _, err := e.build(t, appFile, func(o *Options) { o.BuildArgs = map[string]string{"WHO": "tests"} }); err != nil || res3.Ran != 0 || res3.Image.Desc.Digest != res.Image.Desc.Digest {
		t.Errorf("ignored change: %v ran %d", err, res3.Ran)
	}
	// Changing one file reruns from the first step it affects.
	e.file(t, "app/config.txt", "config v2\n")
	res4, out4, err := e.build(t, appFile, func(o *Options) { o.BuildArgs = map[string]string{"WHO": "tests"} })
	if err != nil {
		t.Fatal(err)
	}
	if res4.Ran != 1 || res4.Cached != 2 { // ENV and WORKDIR
		t.Errorf("after a change: ran %d cached %d\n%s", res4.Ran, res4.Cached, out4)
	}
	if got := e.run(t, res4.Image, "cat", "config.txt"); got != "config v2\n" {
		t.Errorf("changed file: %q", got)
	}
	// A different build argument reruns the RUN that sees it.
	res5, _, err := e.build(t, appFile, func(o *Options) { o.BuildArgs = map[string]string{"WHO": "others"} })
	if err != nil || res5.Ran != 1 {
		t.Fatalf("new argument: ran %d, %v", res5.Ran, err)
	}
	if got := e.run(t, res5.Image, "cat", "greeting"); got != "hello others, mode prod\n" {
		t.Errorf("greeting %q", got)
	}
}

func TestBuildMultiStage(t *testing.T) {
	e := newEnv(t)
	e.needRuntime(t)
	src := `FROM busybox AS build
RUN mkdir -p /out && echo built > /out/artifact && echo unused > /out/other
FROM busybox AS unused
RUN exit 1
FROM scratch
COPY --from=build /bin/busybox /bin/busybox
COPY --from=0 /out/artifact /artifact
ENTRYPOINT ["/bin/busybox", "cat"]
CMD ["/artifact"]
`
	res, out, err := e.build(t, src, nil)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if strings.Contains(out, "exit 1") || res.Ran != 1 {
		t.Errorf("the unused stage was built (ran %d):\n%s", res.Ran, out)
	}
	if !strings.Contains(out, "[2/2] STEP 3/7: FROM scratch") {
		t.Errorf("output:\n%s", out)
	}
	if got := e.run(t, res.Image); got != "built\n" {
		t.Errorf("run %q", got)
	}
	if n := len(res.Image.Manifest.Layers); n != 2 {
		t.Errorf("%d layers", n)
	}
	// The target stage can be chosen.
	res, _, err = e.build(t, src, func(o *Options) { o.Target = "build" })
	if err != nil || res.Ran != 0 || res.Cached != 1 {
		t.Fatalf("target: %v ran %d cached %d", err, res.Ran, res.Cached)
	}
}

// COPY and ADD without RUN need no runtime.
func TestBuildCopySemantics(t *testing.T) {
	e := newEnv(t)
	e.file(t, "one.txt", "one")
	e.file(t, "dir/a.txt", "a")
	e.file(t, "dir/sub/b.txt", "b")
	e.file(t, "x1.conf", "x1")
	e.file(t, "x2.conf", "x2")
	if err := os.Symlink("a.txt", filepath.Join(e.ctx, "dir/link")); err != nil {
		t.Fatal(err)
	}
	var tgz bytes.Buffer
	gz := gzip.NewWriter(&tgz)
	tw := tar.NewWriter(gz)
	for _, f := range []struct{ name, data string }{{"pkg/", ""}, {"pkg/bin.sh", "#!/bin/sh\n"}} {
		h := &tar.Header{Name: f.name, Mode: 0o755, Typeflag: tar.TypeReg, Size: int64(len(f.data))}
		if strings.HasSuffix(f.name, "/") {
			h.Typeflag = tar.TypeDir
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(f.data))
	}
	tw.Close()
	gz.Close()
	e.file(t, "pkg.tar.gz", tgz.String())
	src := `FROM busybox
WORKDIR /w
COPY one.txt .
COPY one.txt /renamed.txt
COPY dir /copied/
COPY *.conf /etc/conf.d/
COPY --chown=user:staff --chmod=0600 one.txt /owned
ADD pkg.tar.gz /opt/
COPY pkg.tar.gz /as-is/
ADD one.txt /added.txt
`
	res, out, err := e.build(t, src, nil)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	root := filepath.Join(t.TempDir(), "root")
	if err := mutate.Unpack(context.Background(), e.st, res.Image, root, mutate.UnpackOptions{Rootless: os.Geteuid() != 0}); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"w/one.txt":          "one",
		"renamed.txt":        "one",
		"copied/a.txt":       "a",
		"copied/sub/b.txt":   "b",
		"etc/conf.d/x1.conf": "x1",
		"etc/conf.d/x2.conf": "x2",
		"owned":              "one",
		"opt/pkg/bin.sh":     "#!/bin/sh\n",
		"as-is/pkg.tar.gz":   tgz.String(),
		"added.txt":          "one",
	}
	for name, data := range want {
		got, err := os.ReadFile(filepath.Join(root, name))
		if err != nil || string(got) != data {
			t.Errorf("%s: %q, %v", name, got, err)
		}
	}
	if l, err := os.Readlink(filepath.Join(root, "copied/link")); err != nil || l != "a.txt" {
		t.Errorf("symlink copied as %q, %v", l, err)
	}
	fi, err := os.Stat(filepath.Join(root, "owned"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("--chmod: %v %v", fi.Mode(), err)
	}
	if os.Geteuid() == 0 {
		uid, gid := owner(fi)
		if uid != 1000 || gid != 50 {
			t.Errorf("--chown=user:staff gave %d:%d", uid, gid)
		}
		if fi, _ := os.Stat(filepath.Join(root, "w/one.txt")); fi != nil {
			if uid, gid := owner(fi); uid != 0 || gid != 0 {
				t.Errorf("COPY without --chown gave %d:%d", uid, gid)
			}
		}
	}
	// No RUN ran, and no mount points were left in the image.
	if res.Ran != 0 {
		t.Errorf("ran %d", res.Ran)
	}
	for _, p := range []string{"proc", "sys", "dev"} {
		if _, err := os.Lstat(filepath.Join(root, p)); err == nil {
			t.Errorf("/%s is in the image", p)
		}
	}
}

// Paths out of the context are refused, by name or through a link, and
// nothing is built.
func TestBuildRefusesOutsideContext(t *testing.T) {
	e := newEnv(t)
	outside := t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "secret"), []byte("secret"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(outside, "secret"), filepath.Join(e.ctx, "abs-link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../../../../../../../../"+outside, filepath.Join(e.ctx, "rel-link")); err != nil {
		t.Fatal(err)
	}
	e.file(t, "ok.txt", "ok")
	for _, c := range []struct{ line, want string }{
		{"COPY ../secret /x", "outside the build context"},
		{"COPY abs-link /x", "outside the build context through a symbolic link"},
		{"COPY rel-link/secret /x", "outside the build context through a symbolic link"},
		{"COPY missing.txt /x", "no such file"},
		{"COPY --from=nowhere /x /x", "nowhere"},
	} {
		src := "FROM busybox\nCOPY ok.txt /ok\n" + c.line + "\n"
		_, _, err := e.build(t, src, nil)
		var fe *Error
		if !errors.As(err, &fe) || fe.Line != 3 || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v", c.line, err)
		}
	}
	_, _, err := e.build(t, "FROM busybox\nCOPY ../secret /x\n", nil)
	if !errors.Is(err, errdef.ErrUnsafePath) {
		t.Errorf("../secret: %v", err)
	}
}

func TestBuildMissingBase(t *testing.T) {
	e := newEnv(t)
	_, _, err := e.build(t, "# base\nFROM nothere\nRUN true\n", nil)
	var fe *Error
	if !errors.As(err, &fe) || fe.Line != 2 || !strings.Contains(err.Error(), "nothere") {
		t.Errorf("got %v", err)
	}
	_, _, err = e.build(t, "FROM busybox\n", func(o *Options) { o.Target = "nope" })
	if !errors.Is(err, errdef.ErrNotFound) {
		t.Errorf("missing target: %v", err)
	}
}

func TestBuildRunFails(t *testing.T) {
	e := newEnv(t)
	e.needRuntime(t)
	src := "FROM busybox\nRUN echo before\nRUN echo failing output; exit 3\nRUN echo never\n"
	_, out, err := e.build(t, src, nil)
	var re *RunError
	var fe *Error
	if !errors.As(err, &re) || re.ExitCode != 3 || !errors.As(err, &fe) || fe.Line != 3 {
		t.Fatalf("got %v", err)
	}
	if !strings.Contains(out, "failing output") || strings.Contains(out, "never") {
		t.Errorf("output:\n%s", out)
	}
	// Without Stdout, the error carries the output.
	_, _, err = e.build(t, src, func(o *Options) { o.Stdout = nil })
	if !strings.Contains(err.Error(), "failing output") || !strings.Contains(err.Error(), "code 3") {
		t.Errorf("quiet error: %v", err)
	}
}

// RUN has no network but loopback unless asked; the host's with
// HostNetwork.
func TestBuildRunNetwork(t *testing.T) {
	e := newEnv(t)
	e.needRuntime(t)
	src := "FROM busybox\nRUN ls /sys/class/net | tr '\\n' ' ' > /ifaces\n"
	res, out, err := e.build(t, src, nil)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if got := e.run(t, res.Image, "cat", "/ifaces"); strings.TrimSpace(got) != "lo" {
		t.Errorf("isolated RUN sees %q", got)
	}
	res, _, err = e.build(t, src, func(o *Options) { o.HostNetwork = true })
	if err != nil {
		t.Fatal(err)
	}
	host, _ := os.ReadDir("/sys/class/net")
	if got := strings.Fields(e.run(t, res.Image, "cat", "/ifaces")); len(got) != len(host) {
		t.Errorf("host-network RUN sees %v, the host has %d", got, len(host))
	}
}

// Whatever a COPY source names, what it matches lies in the build context.
func FuzzCopySource(f *testing.F) {
	for _, s := range []string{"a.txt", "dir/*", "../x", "link/../../x", "/abs", "*/*/*", "[", "dir/../../..", "**"} {
		f.Add(s)
	}
	root := f.TempDir()
	outside := f.TempDir()
	os.MkdirAll(filepath.Join(root, "dir/sub"), 0o755)
	os.WriteFile(filepath.Join(root, "a.txt"), []byte("a"), 0o644)
	os.WriteFile(filepath.Join(root, "dir/sub/b.txt"), []byte("b"), 0o644)
	os.WriteFile(filepath.Join(outside, "secret"), []byte("s"), 0o644)
	os.Symlink(outside, filepath.Join(root, "link"))
	os.Symlink("sub", filepath.Join(root, "dir/inside"))
	src := &copySource{root: root, context: true, label: "the build context"}
	f.Fuzz(func(t *testing.T, pattern string) {
		ms, err := src.match(pattern)
		if err != nil {
			return
		}
		real, _ := filepath.EvalSymlinks(root)
		for _, m := range ms {
			if !strings.HasPrefix(m.host+"/", real+"/") && !strings.HasPrefix(m.host+"/", root+"/") {
				t.Fatalf("%q matched %s, outside %s", pattern, m.host, root)
			}
			_ = src.walk(m, func(rel, host string, fi os.FileInfo) error {
				if fi.Mode()&os.ModeSymlink == 0 && !strings.HasPrefix(host+"/", real+"/") && !strings.HasPrefix(host+"/", root+"/") {
					t.Fatalf("%q walked to %s", pattern, host)
				}
				return nil
			})
		}
	})
}

// SHELL changes what runs shell forms; COPY --from takes an image too;
// STOPSIGNAL, ENTRYPOINT's shell form and a RUN that changes nothing.
func TestBuildShellAndFromImage(t *testing.T) {
	e := newEnv(t)
	e.needRuntime(t)
	src := `FROM scratch
COPY --from=busybox /bin/busybox /bin/busybox
COPY --from=busybox /bin/sh /bin/echo /bin/
SHELL ["/bin/busybox", "sh", "-c"]
RUN echo "shell is $0" > /shell.txt
RUN true
ENTRYPOINT echo entry
`
	res, out, err := e.build(t, src, nil)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	tree := e.cacheTree(t, res.Image)
	// /bin/sh -c would say /bin/sh.
	if got, _ := os.ReadFile(filepath.Join(tree, "shell.txt")); string(got) != "shell is sh\n" {
		t.Errorf("shell: %q", got)
	}
	cfg := res.Image.ConfigFile
	if !slices.Equal(cfg.Config.Entrypoint, []string{"/bin/busybox", "sh", "-c", "echo entry"}) {
		t.Errorf("entrypoint %q", cfg.Config.Entrypoint)
	}
	// RUN true changed nothing: a history entry, no layer.
	if n := len(res.Image.Manifest.Layers); n != 3 {
		t.Errorf("%d layers", n)
	}
	last := cfg.History[len(cfg.History)-2]
	if last.CreatedBy != "RUN true" || !last.EmptyLayer {
		t.Errorf("history %+v", last)
	}
	// A source named through a link is copied as what it points at, as
	// BuildKit does.
	fi, err := os.Lstat(filepath.Join(tree, "bin/sh"))
	bb, _ := os.Stat(filepath.Join(tree, "bin/busybox"))
	if err != nil || !fi.Mode().IsRegular() || bb == nil || fi.Size() != bb.Size() {
		t.Errorf("COPY --from /bin/sh: %v %v", fi, err)
	}
}

// cacheTree is the unpacked tree of img in the cache.
func (e *env) cacheTree(t *testing.T, img *content.LoadedImage) string {
	t.Helper()
	p, err := e.cache.Rootfs(context.Background(), e.st, img)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
