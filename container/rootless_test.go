//go:build linux

package container

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/lading-oci/lading/bundle"
	"github.com/lading-oci/lading/content"
	"github.com/lading-oci/lading/content/ocilayout"
	"github.com/lading-oci/lading/internal/testutil"
	"github.com/lading-oci/lading/layer/unpack"
	"github.com/lading-oci/lading/mutate"
	"github.com/moby/sys/user"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

const rootlessEnv = "LADING_TEST_ROOTLESS_LAYOUT"

func TestMain(m *testing.M) {
	if layout := os.Getenv(rootlessEnv); layout != "" {
		os.Exit(rootlessHelper(layout))
	}
	os.Exit(m.Run())
}

// rootlessHelper runs the image "bb" of layout as this (unprivileged)
// process, for TestRunRootless.
func rootlessHelper(layout string) int {
	ctx := context.Background()
	st, err := ocilayout.Open(ctx, layout)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 100
	}
	defer st.Close()
	desc, err := st.Resolve(ctx, "bb")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 100
	}
	img, err := content.LoadImage(ctx, st, desc, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 100
	}
	c, err := OpenCache(os.Getenv("XDG_CACHE_HOME"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 100
	}
	rt, err := FindRuntime(ctx, "runc", FindOptions{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 100
	}
	code, err := Run(ctx, st, img, Options{Runtime: rt, Cache: c, Remove: true,
		Options:     bundle.Options{Args: []string{"sh", "-c", "echo rootless; id -u; echo data > /tmp/f; cat /tmp/f"}},
		ExecOptions: ExecOptions{Stdout: os.Stdout, Stderr: os.Stderr}})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 101
	}
	return code
}

// Without root, lading runs the container in a user namespace, on a copy
// of a tree it unpacked without privileges.
func TestRunRootless(t *testing.T) {
	testutil.NeedRoot(t)
	testutil.NeedTool(t, "runc", "runc")
	setpriv := testutil.NeedTool(t, "setpriv", "util-linux")
	if data, err := os.ReadFile("/proc/sys/user/max_user_namespaces"); err != nil || strings.TrimSpace(string(data)) == "0" {
		t.Skip("user namespaces are not available")
	}
	const nobody = 65534
	dir, err := os.MkdirTemp("", "lading-rootless-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unpack.RemoveAll(dir) })
	testutil.BusyboxImage(t, filepath.Join(dir, "layout"), "bb", mutate.ConfigChanges{})
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "container.test")
	in, err := os.Open(self)
	if err != nil {
		t.Fatal(err)
	}
	out, err := os.OpenFile(bin, os.O_CREATE|os.O_WRONLY, 0o755)
	if err == nil {
		_, err = io.Copy(out, in)
		out.Close()
	}
	in.Close()
	if err != nil {
		t.Fatal(err)
	}
	for _, sub := range []string{"cache", "run"} {
		if err := os.Mkdir(filepath.Join(dir, sub), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, nobody, nobody)
	}); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(setpriv, "--reuid", fmt.Sprint(nobody), "--regid", fmt.Sprint(nobody), "--clear-groups",
		bin, "-test.run", "^$")
	cmd.Env = append(os.Environ(), rootlessEnv+"="+filepath.Join(dir, "layout"),
		"XDG_CACHE_HOME="+filepath.Join(dir, "cache"), "XDG_RUNTIME_DIR="+filepath.Join(dir, "run"), "HOME="+dir)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("rootless run: %v\nstdout %s\nstderr %s", err, stdout.String(), stderr.String())
	}
	if stdout.String() != "rootless\n0\ndata\n" {
		t.Errorf("output %q (stderr %s)", stdout.String(), stderr.String())
	}
	// The cached tree belongs to the unprivileged user.
	ents, err := os.ReadDir(filepath.Join(dir, "cache", "rootfs"))
	if err != nil || len(ents) != 1 {
		t.Fatalf("cache: %v %v", ents, err)
	}
	fi, err := os.Stat(filepath.Join(dir, "cache", "rootfs", ents[0].Name(), "bin", "busybox"))
	if err != nil {
		t.Fatal(err)
	}
	if uid, _ := owner(fi); uid != nobody {
		t.Errorf("cached file owned by %d", uid)
	}
}

func owner(fi os.FileInfo) (int, int) {
	st := fi.Sys().(*syscall.Stat_t)
	return int(st.Uid), int(st.Gid)
}

func TestIDMappings(t *testing.T) {
	got := idMappings(1000, user.SubID{Name: "u", SubID: 100000, Count: 65536})
	if len(got) != 2 || got[0] != (specs.LinuxIDMapping{ContainerID: 0, HostID: 1000, Size: 1}) ||
		got[1] != (specs.LinuxIDMapping{ContainerID: 1, HostID: 100000, Size: 65536}) {
		t.Errorf("%+v", got)
	}
	for _, bad := range []user.SubID{{SubID: -1, Count: 10}, {SubID: 1, Count: 0}, {SubID: 1 << 33, Count: 1}} {
		if got := idMappings(7, bad); len(got) != 1 {
			t.Errorf("%+v gave %+v", bad, got)
		}
	}
}
