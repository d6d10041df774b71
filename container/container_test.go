//go:build linux

package container

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lading-oci/lading/bundle"
	"github.com/lading-oci/lading/content"
	"github.com/lading-oci/lading/content/ocilayout"
	"github.com/lading-oci/lading/errdef"
	"github.com/lading-oci/lading/internal/testutil"
	"github.com/lading-oci/lading/layer/unpack"
	"github.com/lading-oci/lading/mutate"
)

// needRunc returns runc as a Runtime, or skips: these tests start real
// containers.
func needRunc(t *testing.T) *Runtime {
	t.Helper()
	testutil.NeedRoot(t)
	p := testutil.NeedTool(t, "runc", "runc")
	return &Runtime{Name: "runc", Path: p}
}

func fixture(t *testing.T, changes mutate.ConfigChanges) (*ocilayout.Store, *content.LoadedImage, *Cache) {
	t.Helper()
	st, img := testutil.BusyboxImage(t, filepath.Join(t.TempDir(), "layout"), "bb", changes)
	c, err := OpenCache(filepath.Join(t.TempDir(), "cache"))
	if err != nil {
		t.Fatal(err)
	}
	return st, img, c
}

func runIt(t *testing.T, rt *Runtime, st content.Fetcher, img *content.LoadedImage, c *Cache, o Options) (string, string, int, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	o.Runtime, o.Cache = rt, c
	o.Stdout, o.Stderr = &out, &errOut
	if o.Stdin == nil {
		o.Stdin = strings.NewReader("")
	}
	code, err := Run(context.Background(), st, img, o)
	return out.String(), errOut.String(), code, err
}

func TestRunOutputExitCodeAndUser(t *testing.T) {
	rt := needRunc(t)
	st, img, c := fixture(t, mutate.ConfigChanges{
		Cmd: []string{"/bin/sh", "-c", "echo hello from $NAME; id -u; pwd"}, Env: []string{"NAME=busybox"}, WorkingDir: ptr("/tmp"),
	})
	out, errOut, code, err := runIt(t, rt, st, img, c, Options{Remove: true})
	if err != nil || code != 0 {
		t.Fatalf("code %d, err %v, stderr %s", code, err, errOut)
	}
	if out != "hello from busybox\n0\n/tmp\n" {
		t.Errorf("output %q", out)
	}
	// The command line replaces Cmd; the exit code is the container's.
	out, _, code, err = runIt(t, rt, st, img, c, Options{Remove: true, Options: bundle.Options{
		Args: []string{"sh", "-c", "id; echo err >&2; exit 42"}, User: "user",
	}})
	if err != nil || code != 42 {
		t.Fatalf("code %d, err %v", code, err)
	}
	if !strings.Contains(out, "uid=1000(user) gid=1000(users) groups=2000(extra)") {
		t.Errorf("id output %q", out)
	}
	// stdin passes through.
	var o bytes.Buffer
	code, err = Run(context.Background(), st, img, Options{Runtime: rt, Cache: c, Remove: true,
		Options:     bundle.Options{Args: []string{"wc", "-c"}},
		ExecOptions: ExecOptions{Stdin: strings.NewReader("12345"), Stdout: &o}})
	if err != nil || code != 0 || strings.TrimSpace(o.String()) != "5" {
		t.Errorf("stdin: code %d err %v out %q", code, err, o.String())
	}
}

// A container that ignores SIGTERM is killed once StopTimeout has passed
// after the context ended, and reports 128+9.
func TestRunKilledAfterStopTimeout(t *testing.T) {
	rt := needRunc(t)
	st, img, c := fixture(t, mutate.ConfigChanges{})
	if _, err := c.Rootfs(context.Background(), st, img); err != nil { // unpacked before the clock starts
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	const name = "lading-test-stop-timeout"
	code, err := Run(ctx, st, img, Options{Runtime: rt, Cache: c, Remove: true, Name: name,
		Options:     bundle.Options{Args: []string{"sh", "-c", "trap '' TERM; while true; do sleep 0.1; done"}},
		ExecOptions: ExecOptions{StopTimeout: 300 * time.Millisecond}})
	if code != 137 || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("code %d err %v", code, err)
	}
	if d := time.Since(start); d > 4*time.Second {
		t.Errorf("took %v", d)
	}
	// Only this test's container: other tests share the runtime's state.
	if out, _ := exec.Command(rt.Path, "list", "-q").Output(); slices.Contains(strings.Fields(string(out)), name) {
		t.Errorf("container left: %s", name)
	}
}

func ptr[T any](v T) *T { return &v }

// A run never changes the cached tree, in either rootfs mode, and a second
// run starts from the cache.
func TestRunLeavesCacheUntouched(t *testing.T) {
	rt := needRunc(t)
	st, img, c := fixture(t, mutate.ConfigChanges{})
	for _, mode := range []RootfsMode{RootfsOverlay, RootfsCopy} {
		t.Run(mode.String(), func(t *testing.T) {
			out, errOut, code, err := runIt(t, rt, st, img, c, Options{RootfsMode: mode, Name: "keep-" + mode.String(), Options: bundle.Options{
				Args: []string{"sh", "-c", "echo changed > /etc/passwd && rm /bin/echo && touch /new && cat /etc/passwd"},
			}})
			if err != nil || code != 0 || out != "changed\n" {
				t.Fatalf("code %d err %v out %q stderr %s", code, err, out, errOut)
			}
			cached := filepath.Join(c.Dir, "rootfs", ChainKey(img.ConfigFile.RootFS.DiffIDs))
			data, err := os.ReadFile(filepath.Join(cached, "etc/passwd"))
			if err != nil || !strings.HasPrefix(string(data), "root:") {
				t.Fatalf("cached passwd changed: %q %v", data, err)
			}
			if _, err := os.Lstat(filepath.Join(cached, "bin/echo")); err != nil {
				t.Fatal("cached bin/echo removed")
			}
			if _, err := os.Lstat(filepath.Join(cached, "new")); err == nil {
				t.Fatal("a file appeared in the cached tree")
			}
			// Without Remove the container's directory stays, unmounted.
			dir := filepath.Join(c.Dir, "containers", "keep-"+mode.String())
			if _, err := os.Stat(filepath.Join(dir, "config.json")); err != nil {
				t.Fatal(err)
			}
			if mode == RootfsOverlay {
				if _, err := os.Stat(filepath.Join(dir, "upper", "new")); err != nil {
					t.Errorf("the overlay's changes are not kept: %v", err)
				}
			}
			// The same name again is refused.
			if _, _, _, err := runIt(t, rt, st, img, c, Options{Name: "keep-" + mode.String()}); !errors.Is(err, errdef.ErrAlreadyExists) {
				t.Errorf("reused name: %v", err)
			}
			unpack.RemoveAll(dir)
		})
	}
}

func TestRunVolumes(t *testing.T) {
	rt := needRunc(t)
	st, img, c := fixture(t, mutate.ConfigChanges{Volumes: []string{"/etc"}})
	host := t.TempDir()
	if err := os.WriteFile(filepath.Join(host, "in.txt"), []byte("from host"), 0o644); err != nil {
		t.Fatal(err)
	}
	rw, err := ParseVolume(host + ":/data")
	if err != nil {
		t.Fatal(err)
	}
	ro, err := ParseVolume(host + ":/ro:ro")
	if err != nil {
		t.Fatal(err)
	}
	// /etc is an image volume: an anonymous volume seeded from the image.
	out, errOut, code, err := runIt(t, rt, st, img, c, Options{Remove: true, Volumes: []Volume{rw, ro}, Options: bundle.Options{
		Args: []string{"sh", "-c", "cat /data/in.txt; echo; echo out > /data/out.txt; touch /ro/x 2>/dev/null || echo ro refused; head -1 /etc/passwd"},
	}})
	if err != nil || code != 0 {
		t.Fatalf("code %d err %v stderr %s", code, err, errOut)
	}
	if out != "from host\nro refused\nroot:x:0:0:root:/root:/bin/sh\n" {
		t.Errorf("output %q", out)
	}
	if data, _ := os.ReadFile(filepath.Join(host, "out.txt")); string(data) != "out\n" {
		t.Errorf("write to the volume: %q", data)
	}
	if _, err := os.Stat(filepath.Join(host, "x")); err == nil {
		t.Error("read-only volume was written")
	}
}

func TestParseVolume(t *testing.T) {
	dir := t.TempDir()
	for _, bad := range []string{"", dir, dir + ":", ":/x", dir + ":rel", dir + ":/x:rx", dir + ":/x:ro:z", "/does/not/exist:/x"} {
		if _, err := ParseVolume(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	v, err := ParseVolume(dir + ":/a/../b/:ro")
	if err != nil || v.Destination != "/b" || !v.ReadOnly || v.Source != dir {
		t.Errorf("%+v %v", v, err)
	}
}

func FuzzParseVolume(f *testing.F) {
	dir := f.TempDir()
	f.Add(dir + ":/data:ro")
	f.Add("x:y:z:w")
	f.Fuzz(func(t *testing.T, s string) {
		v, err := ParseVolume(s)
		if err != nil {
			return
		}
		if !filepath.IsAbs(v.Source) || !strings.HasPrefix(v.Destination, "/") {
			t.Fatalf("%q gave %+v", s, v)
		}
	})
}

// The bundle lading writes runs under plain runc with the output lading
// run gives.
func TestBundleRunsUnderRunc(t *testing.T) {
	rt := needRunc(t)
	st, img, c := fixture(t, mutate.ConfigChanges{
		Entrypoint: []string{"/bin/sh", "-c"}, Cmd: []string{"echo bundle says hi; id -u -n"}, User: ptr("user"),
	})
	dir := filepath.Join(t.TempDir(), "bundle")
	if err := WriteBundle(context.Background(), st, img, dir, bundle.Options{}); err != nil {
		t.Fatal(err)
	}
	if _, err := bundle.ReadConfig(context.Background(), dir); err != nil {
		t.Fatal(err)
	}
	id := "lading-test-" + randomHex(4)
	cmd := exec.Command(rt.Path, "run", "--bundle", dir, id)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	rt.forceDelete(id)
	if err != nil {
		t.Fatalf("runc run: %v: %s", err, errOut.String())
	}
	want, _, code, err := runIt(t, rt, st, img, c, Options{Remove: true})
	if err != nil || code != 0 {
		t.Fatal(code, err)
	}
	if out.String() != "bundle says hi\nuser\n" || out.String() != want {
		t.Errorf("runc run: %q; lading run: %q", out.String(), want)
	}
	// A second bundle into the same directory is refused.
	if err := WriteBundle(context.Background(), st, img, dir, bundle.Options{}); !errors.Is(err, errdef.ErrAlreadyExists) {
		t.Errorf("second bundle: %v", err)
	}
}

// When the context ends, the container gets SIGTERM and may exit its own
// way.
func TestRunStopsOnContextEnd(t *testing.T) {
	rt := needRunc(t)
	st, img, c := fixture(t, mutate.ConfigChanges{})
	ctx, cancel := context.WithCancel(context.Background())
	var out syncWriter
	go func() {
		// Wait for the trap to be set before cancelling.
		for i := 0; i < 100 && !strings.Contains(out.String(), "ready"); i++ {
			time.Sleep(50 * time.Millisecond)
		}
		cancel()
	}()
	start := time.Now()
	code, err := Run(ctx, st, img, Options{Runtime: rt, Cache: c, Remove: true,
		Options:     bundle.Options{Args: []string{"sh", "-c", "trap 'echo got TERM; exit 3' TERM; echo ready; while true; do sleep 0.1; done"}},
		ExecOptions: ExecOptions{Stdout: &out, StopTimeout: 5 * time.Second}})
	if !errors.Is(err, context.Canceled) || code != 3 {
		t.Fatalf("code %d err %v out %q", code, err, out.String())
	}
	if !strings.Contains(out.String(), "got TERM") || time.Since(start) > 5*time.Second {
		t.Errorf("out %q after %v", out.String(), time.Since(start))
	}
}

// syncWriter is a buffer written by one goroutine and read by another.
type syncWriter struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *syncWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

func TestFindRuntime(t *testing.T) {
	testutil.NeedRoot(t)
	cache := t.TempDir()
	// Explicit choices are taken as they are.
	rt, err := FindRuntime(context.Background(), "runc", FindOptions{})
	if err != nil {
		t.Skipf("runc is not installed: %v", err)
	}
	if rt.Name != "runc" {
		t.Errorf("got %s", rt.Name)
	}
	if _, err := FindRuntime(context.Background(), "/no/such/runtime", FindOptions{}); !errors.Is(err, errdef.ErrNotFound) {
		t.Errorf("missing runtime: %v", err)
	}
	// With crun and runc both on PATH, the one that works here is chosen,
	// and the verdicts are kept.
	t.Setenv(RuntimeEnv, "")
	rt, err = FindRuntime(context.Background(), "", FindOptions{CacheDir: cache})
	if err != nil {
		t.Fatal(err)
	}
	crun, crunErr := exec.LookPath("crun")
	if crunErr == nil && Probe(context.Background(), &Runtime{Name: "crun", Path: crun}) != nil && rt.Name != "runc" {
		t.Errorf("crun cannot start containers here, yet %s was chosen", rt.Name)
	}
	if _, err := os.Stat(filepath.Join(cache, "runtimes.json")); err != nil {
		t.Error("no verdict kept")
	}
	// LADING_RUNTIME chooses.
	t.Setenv(RuntimeEnv, "runc")
	if rt, err := FindRuntime(context.Background(), "", FindOptions{}); err != nil || rt.Name != "runc" {
		t.Errorf("%s: %v %v", RuntimeEnv, rt, err)
	}
	// No runtime on PATH at all.
	t.Setenv(RuntimeEnv, "")
	t.Setenv("PATH", t.TempDir())
	if _, err := FindRuntime(context.Background(), "", FindOptions{}); !errors.Is(err, errdef.ErrNotFound) || !strings.Contains(err.Error(), "install runc") {
		t.Errorf("no runtime: %v", err)
	}
}

// An explicitly chosen runtime that cannot run here fails with its own
// message.
func TestExplicitRuntimeFailureIsReported(t *testing.T) {
	testutil.NeedRoot(t)
	p := testutil.NeedTool(t, "crun", "crun")
	crun := &Runtime{Name: "crun", Path: p}
	perr := Probe(context.Background(), crun)
	if perr == nil {
		t.Skip("crun works on this machine; nothing to report")
	}
	st, img, c := fixture(t, mutate.ConfigChanges{Cmd: []string{"true"}})
	_, _, _, err := runIt(t, crun, st, img, c, Options{Remove: true})
	if err == nil || !strings.Contains(err.Error(), "crun") || !strings.Contains(err.Error(), strings.SplitN(perr.Error(), ",", 2)[0]) {
		t.Errorf("got %v, want crun's own message (%v)", err, perr)
	}
	// Nothing is left behind.
	ents, _ := os.ReadDir(filepath.Join(c.Dir, "containers"))
	if len(ents) != 0 {
		t.Errorf("%d container directories left", len(ents))
	}
}

// Signals this process receives are passed on to the container.
func TestRunForwardsSignals(t *testing.T) {
	rt := needRunc(t)
	st, img, c := fixture(t, mutate.ConfigChanges{})
	var out syncWriter
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 200 && !strings.Contains(out.String(), "ready"); i++ {
			time.Sleep(25 * time.Millisecond)
		}
		// Run has asked for SIGUSR1 by now: it is caught, not fatal.
		_ = syscall.Kill(os.Getpid(), syscall.SIGUSR1)
	}()
	code, err := Run(context.Background(), st, img, Options{Runtime: rt, Cache: c, Remove: true,
		Options:     bundle.Options{Args: []string{"sh", "-c", "trap 'echo got USR1; exit 6' USR1; echo ready; while true; do sleep 0.1; done"}},
		ExecOptions: ExecOptions{Stdout: &out, ForwardSignals: true, StopTimeout: time.Second}})
	<-done
	if err != nil || code != 6 || !strings.Contains(out.String(), "got USR1") {
		t.Fatalf("code %d err %v out %q", code, err, out.String())
	}
}

// Processes unpacking the same image at once each use their own directory;
// all get the one cached tree, complete.
func TestCacheRootfsConcurrent(t *testing.T) {
	st, img := testutil.BusyboxImage(t, filepath.Join(t.TempDir(), "layout"), "bb", mutate.ConfigChanges{})
	c, err := OpenCache(filepath.Join(t.TempDir(), "cache"))
	if err != nil {
		t.Fatal(err)
	}
	const n = 4
	paths := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			paths[i], errs[i] = c.Rootfs(context.Background(), st, img)
		}()
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil || paths[i] != paths[0] {
			t.Fatalf("%d: %s %v", i, paths[i], errs[i])
		}
	}
	if _, err := os.Stat(filepath.Join(paths[0], "bin", "busybox")); err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(filepath.Join(c.Dir, "rootfs"))
	if len(ents) != 1 {
		t.Errorf("%d entries in the rootfs cache, want 1", len(ents))
	}
}
