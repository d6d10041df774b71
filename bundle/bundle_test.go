package bundle

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lading-oci/lading/errdef"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// rootfs writes a tree with /etc/passwd and /etc/group.
func rootfs(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(dir, "etc/passwd"), "root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/home/user:/bin/sh\nweb:x:33:33::/var/www:/bin/false\n")
	write(t, filepath.Join(dir, "etc/group"), "root:x:0:\nusers:x:1000:\nextra:x:2000:user,web\nmore:x:2001:user\nstaff:x:50:\n")
	return dir
}

func write(t *testing.T, p, s string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestResolveUser(t *testing.T) {
	dir := rootfs(t)
	cases := []struct {
		spec string
		want specs.User
		home string
	}{
		{"", specs.User{UID: 0, GID: 0}, "/root"},
		{"user", specs.User{UID: 1000, GID: 1000, AdditionalGids: []uint32{2000, 2001}}, "/home/user"},
		{"web", specs.User{UID: 33, GID: 33, AdditionalGids: []uint32{2000}}, "/var/www"},
		{"1000", specs.User{UID: 1000, GID: 1000}, "/home/user"},      // numeric: no additional groups
		{"4242", specs.User{UID: 4242, GID: 0}, ""},                   // not in passwd: taken as it is
		{"1000:1000", specs.User{UID: 1000, GID: 1000}, "/home/user"}, // group given: no additional groups
		{"user:staff", specs.User{UID: 1000, GID: 50}, "/home/user"},
		{"user:77", specs.User{UID: 1000, GID: 77}, "/home/user"},
		{"4242:4343", specs.User{UID: 4242, GID: 4343}, ""},
		{"0", specs.User{UID: 0, GID: 0}, "/root"},
	}
	for _, c := range cases {
		u, home, err := ResolveUser(context.Background(), dir, c.spec)
		if err != nil {
			t.Errorf("%q: %v", c.spec, err)
			continue
		}
		if !reflect.DeepEqual(u, c.want) || home != c.home {
			t.Errorf("%q: got %+v home %q, want %+v home %q", c.spec, u, home, c.want, c.home)
		}
	}
}

func TestResolveUserUnknown(t *testing.T) {
	dir := rootfs(t)
	for _, spec := range []string{"nobody", "user:nogroup", "nobody:1000"} {
		_, _, err := ResolveUser(context.Background(), dir, spec)
		if !errors.Is(err, errdef.ErrNotFound) || !strings.Contains(err.Error(), spec) {
			t.Errorf("%q: want a not-found error naming it, got %v", spec, err)
		}
	}
	// No /etc/passwd at all: names are unknown, numbers fine.
	empty := t.TempDir()
	if _, _, err := ResolveUser(context.Background(), empty, "user"); !errors.Is(err, errdef.ErrNotFound) {
		t.Errorf("no passwd, a name: got %v", err)
	}
	if u, _, err := ResolveUser(context.Background(), empty, "12:34"); err != nil || u.UID != 12 || u.GID != 34 {
		t.Errorf("no passwd, numbers: got %+v, %v", u, err)
	}
	if _, _, err := ResolveUser(context.Background(), empty, "99999999999"); !errors.Is(err, errdef.ErrInvalid) {
		t.Errorf("out of range uid: got %v", err)
	}
}

// The user database is read inside the root filesystem: a link out of it
// is followed as the container would see it, never to the host's file.
func TestResolveUserStaysInRootfs(t *testing.T) {
	outside := t.TempDir()
	write(t, filepath.Join(outside, "passwd"), "evil:x:6666:6666::/:/bin/sh\n")
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	// An absolute link: inside the rootfs it names rootfs/<outside>/passwd.
	if err := os.Symlink(filepath.Join(outside, "passwd"), filepath.Join(dir, "etc/passwd")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := ResolveUser(context.Background(), dir, "evil"); !errors.Is(err, errdef.ErrNotFound) {
		t.Fatalf("absolute link out of the rootfs was followed: %v", err)
	}
	// A relative link climbing out stops at the rootfs top.
	os.Remove(filepath.Join(dir, "etc/passwd"))
	rel, _ := filepath.Rel(filepath.Join(dir, "etc"), filepath.Join(outside, "passwd"))
	if err := os.Symlink(rel, filepath.Join(dir, "etc/passwd")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := ResolveUser(context.Background(), dir, "evil"); !errors.Is(err, errdef.ErrNotFound) {
		t.Fatalf("relative link out of the rootfs was followed: %v", err)
	}
	// A link that stays inside works.
	os.Remove(filepath.Join(dir, "etc/passwd"))
	write(t, filepath.Join(dir, "etc/passwd.real"), "app:x:10:10::/app:/bin/sh\n")
	if err := os.Symlink("/etc/passwd.real", filepath.Join(dir, "etc/passwd")); err != nil {
		t.Fatal(err)
	}
	if u, _, err := ResolveUser(context.Background(), dir, "app"); err != nil || u.UID != 10 {
		t.Fatalf("link inside the rootfs: %+v, %v", u, err)
	}
}

func testImage() *ocispec.Image {
	created := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	return &ocispec.Image{
		Created:  &created,
		Author:   "someone",
		Platform: ocispec.Platform{OS: "linux", Architecture: "amd64", Variant: "v3", OSFeatures: []string{"a", "b"}},
		Config: ocispec.ImageConfig{
			User:         "user",
			Env:          []string{"PATH=/custom/bin", "A=1"},
			Entrypoint:   []string{"/bin/entry", "--flag"},
			Cmd:          []string{"serve"},
			WorkingDir:   "/srv",
			ExposedPorts: map[string]struct{}{"8080/tcp": {}, "53/udp": {}},
			Volumes:      map[string]struct{}{"/data": {}},
			StopSignal:   "SIGQUIT",
			Labels:       map[string]string{"org.opencontainers.image.author": "label wins", "x": "y"},
		},
	}
}

func TestGenerateConversion(t *testing.T) {
	dir := rootfs(t)
	s, err := Generate(context.Background(), testImage(), dir, Options{Hostname: "box"})
	if err != nil {
		t.Fatal(err)
	}
	p := s.Process
	if want := []string{"/bin/entry", "--flag", "serve"}; !slices.Equal(p.Args, want) {
		t.Errorf("args %q, want %q", p.Args, want)
	}
	if p.Cwd != "/srv" {
		t.Errorf("cwd %q", p.Cwd)
	}
	// The image's PATH is kept; HOME comes from passwd; nothing else is added.
	if want := []string{"PATH=/custom/bin", "A=1", "HOME=/home/user"}; !slices.Equal(p.Env, want) {
		t.Errorf("env %q, want %q", p.Env, want)
	}
	if p.User.UID != 1000 || p.User.GID != 1000 || !slices.Equal(p.User.AdditionalGids, []uint32{2000, 2001}) {
		t.Errorf("user %+v", p.User)
	}
	want := map[string]string{
		AnnotationOS:           "linux",
		AnnotationArchitecture: "amd64",
		AnnotationVariant:      "v3",
		AnnotationOSFeatures:   "a,b",
		AnnotationAuthor:       "label wins", // labels take precedence
		AnnotationCreated:      "2024-05-06T07:08:09Z",
		AnnotationStopSignal:   "SIGQUIT",
		AnnotationExposedPorts: "53/udp,8080/tcp",
		"x":                    "y",
	}
	if !reflect.DeepEqual(s.Annotations, want) {
		t.Errorf("annotations\n got %v\nwant %v", s.Annotations, want)
	}
	if s.Hostname != "box" || s.Root.Path != "rootfs" || s.Version != Version {
		t.Errorf("hostname %q root %q version %q", s.Hostname, s.Root.Path, s.Version)
	}
	// A non-root user starts without capabilities; the bounding set is docker's.
	if len(p.Capabilities.Effective) != 0 || !slices.Equal(p.Capabilities.Bounding, DefaultCapabilities) || !p.NoNewPrivileges {
		t.Errorf("capabilities %+v, no new privileges %v", p.Capabilities, p.NoNewPrivileges)
	}
	var ns []specs.LinuxNamespaceType
	for _, n := range s.Linux.Namespaces {
		ns = append(ns, n.Type)
	}
	if want := []specs.LinuxNamespaceType{"pid", "ipc", "uts", "mount", "network"}; !slices.Equal(ns, want) {
		t.Errorf("namespaces %v, want %v", ns, want)
	}
	var dests []string
	for _, m := range s.Mounts {
		dests = append(dests, m.Destination)
	}
	for _, d := range []string{"/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys"} {
		if !slices.Contains(dests, d) {
			t.Errorf("no %s mount in %v", d, dests)
		}
	}
	if len(s.Linux.MaskedPaths) == 0 || len(s.Linux.ReadonlyPaths) == 0 || len(p.Rlimits) == 0 {
		t.Error("masked paths, read-only paths or rlimits missing")
	}
	if err := Check(s); err != nil {
		t.Error(err)
	}
}

func TestGenerateOverrides(t *testing.T) {
	dir := rootfs(t)
	img := testImage()
	ctx := context.Background()
	// Args replace Cmd only.
	s, err := Generate(ctx, img, dir, Options{Args: []string{"a", "b"}, Env: []string{"A=2", "B=3"}, WorkingDir: "rel", User: "0"})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"/bin/entry", "--flag", "a", "b"}; !slices.Equal(s.Process.Args, want) {
		t.Errorf("args %q", s.Process.Args)
	}
	if want := []string{"PATH=/custom/bin", "A=2", "B=3", "HOME=/root"}; !slices.Equal(s.Process.Env, want) {
		t.Errorf("env %q", s.Process.Env)
	}
	if s.Process.Cwd != "/rel" || s.Process.User.UID != 0 {
		t.Errorf("cwd %q uid %d", s.Process.Cwd, s.Process.User.UID)
	}
	if !slices.Equal(s.Process.Capabilities.Effective, DefaultCapabilities) {
		t.Errorf("root has effective %v", s.Process.Capabilities.Effective)
	}
	// A new entrypoint drops the image's command.
	s, err = Generate(ctx, img, dir, Options{Entrypoint: []string{"/bin/sh"}})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(s.Process.Args, []string{"/bin/sh"}) {
		t.Errorf("args %q", s.Process.Args)
	}
	// Nothing to run.
	bare := &ocispec.Image{}
	if _, err := Generate(ctx, bare, dir, Options{}); !errors.Is(err, errdef.ErrInvalid) {
		t.Errorf("no command: %v", err)
	}
	if _, err := Generate(ctx, img, dir, Options{Env: []string{"NOEQUALS"}}); !errors.Is(err, errdef.ErrInvalid) {
		t.Errorf("bad env: %v", err)
	}
	if _, err := Generate(ctx, img, dir, Options{User: "ghost"}); !errors.Is(err, errdef.ErrNotFound) {
		t.Errorf("unknown user: %v", err)
	}
	// No PATH in the image: the default one is added.
	img.Config.Env = nil
	s, err = Generate(ctx, img, dir, Options{Terminal: true})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(s.Process.Env, "PATH="+DefaultPath) || !slices.Contains(s.Process.Env, "TERM=xterm") {
		t.Errorf("env %q", s.Process.Env)
	}
}

func TestGenerateRootlessAndHostNetwork(t *testing.T) {
	dir := rootfs(t)
	ctx := context.Background()
	// Only the caller is mapped, as root: another user cannot run.
	if _, err := Generate(ctx, testImage(), dir, Options{Rootless: true}); !errors.Is(err, errdef.ErrUnsupported) || !strings.Contains(err.Error(), "1000:1000") {
		t.Fatalf("unmapped user: %v", err)
	}
	// With ranges (from /etc/subuid), it can, without additional groups.
	ranges := []specs.LinuxIDMapping{{ContainerID: 0, HostID: 5000, Size: 1}, {ContainerID: 1, HostID: 100000, Size: 2000}}
	s, err := Generate(ctx, testImage(), dir, Options{Rootless: true, UIDMappings: ranges, GIDMappings: ranges})
	if err != nil {
		t.Fatal(err)
	}
	if u := s.Process.User; u.UID != 1000 || u.GID != 1000 || len(u.AdditionalGids) != 0 {
		t.Errorf("user %+v", u)
	}
	s, err = Generate(ctx, testImage(), dir, Options{Rootless: true, HostNetwork: true, User: "0"})
	if err != nil {
		t.Fatal(err)
	}
	var user, net bool
	for _, n := range s.Linux.Namespaces {
		user = user || n.Type == specs.UserNamespace
		net = net || n.Type == specs.NetworkNamespace
	}
	if !user || net {
		t.Errorf("namespaces %v", s.Linux.Namespaces)
	}
	if len(s.Linux.UIDMappings) != 1 || s.Linux.UIDMappings[0].HostID != uint32(os.Getuid()) || s.Linux.UIDMappings[0].Size != 1 {
		t.Errorf("uid mappings %+v", s.Linux.UIDMappings)
	}
	if s.Linux.Resources != nil {
		t.Error("rootless config has cgroup resources")
	}
	for _, m := range s.Mounts {
		if m.Destination == "/sys" && m.Type != "none" {
			t.Errorf("/sys is %s, want a bind mount", m.Type)
		}
		if m.Destination == "/sys/fs/cgroup" {
			t.Error("rootless config mounts cgroups")
		}
	}
	if err := Check(s); err != nil {
		t.Error(err)
	}
}

// config.json written and read back is the same configuration, and has
// what runtime-spec requires.
func TestWriteReadRoundTrip(t *testing.T) {
	dir := rootfs(t)
	s, err := Generate(context.Background(), testImage(), dir, Options{Mounts: []specs.Mount{{Destination: "/data", Type: "none", Source: "/tmp", Options: []string{"rbind"}}}})
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	if err := WriteConfig(context.Background(), out, s); err != nil {
		t.Fatal(err)
	}
	back, err := ReadConfig(context.Background(), out)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(s, back) {
		t.Errorf("round trip changed the config")
	}
	// The required top-level fields are present in the JSON.
	var raw map[string]json.RawMessage
	data, _ := os.ReadFile(filepath.Join(out, "config.json"))
	if err := json.Unmarshal(data, &raw); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"ociVersion", "root", "process", "mounts", "linux", "annotations"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("config.json has no %q", k)
		}
	}
	entries, _ := os.ReadDir(out)
	if len(entries) != 1 {
		t.Errorf("WriteConfig left %d files", len(entries))
	}
}

func TestCheckRefuses(t *testing.T) {
	good := func() *specs.Spec {
		s, err := Generate(context.Background(), testImage(), rootfs(t), Options{})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	cases := map[string]func(s *specs.Spec){
		"no version":     func(s *specs.Spec) { s.Version = "" },
		"no root":        func(s *specs.Spec) { s.Root = nil },
		"no args":        func(s *specs.Spec) { s.Process.Args = nil },
		"relative cwd":   func(s *specs.Spec) { s.Process.Cwd = "srv" },
		"relative mount": func(s *specs.Spec) { s.Mounts[0].Destination = "proc" },
		"twice a namespace": func(s *specs.Spec) {
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: "pid"})
		},
		"unknown namespace": func(s *specs.Spec) { s.Linux.Namespaces[0].Type = "bogus" },
		"mapping, no userns": func(s *specs.Spec) {
			s.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 1, Size: 1}}
		},
		"bad env":      func(s *specs.Spec) { s.Process.Env = append(s.Process.Env, "X") },
		"rlimit twice": func(s *specs.Spec) { s.Process.Rlimits = append(s.Process.Rlimits, s.Process.Rlimits[0]) },
	}
	for name, mod := range cases {
		s := good()
		mod(s)
		if err := Check(s); !errors.Is(err, errdef.ErrInvalid) {
			t.Errorf("%s: got %v", name, err)
		}
	}
}

func TestReadConfigRefusesLarge(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "config.json"), `{"ociVersion":"1.0.2","x":"`+strings.Repeat("a", 5<<20)+`"}`)
	if _, err := ReadConfig(context.Background(), dir); !errors.Is(err, errdef.ErrInvalid) && !errors.Is(err, errdef.ErrTooLarge) {
		t.Errorf("got %v", err)
	}
}

// Whatever the user database and the user, ResolveUser gives ids or an
// error, never a panic, and numbers are taken as they are.
func FuzzResolveUser(f *testing.F) {
	f.Add("root:x:0:0::/root:/bin/sh\nu:x:7:8::/h:/bin/sh\n", "g:x:9:u\n", "u")
	f.Add("", "", "1:2")
	f.Add("a:b:c\n::::\n", "x:y\n", "a:x")
	f.Fuzz(func(t *testing.T, passwd, group, spec string) {
		dir := t.TempDir()
		if err := os.MkdirAll(filepath.Join(dir, "etc"), 0o755); err != nil {
			t.Fatal(err)
		}
		write(t, filepath.Join(dir, "etc/passwd"), passwd)
		write(t, filepath.Join(dir, "etc/group"), group)
		u, _, err := ResolveUser(context.Background(), dir, spec)
		if err != nil {
			return
		}
		name, grp, _ := strings.Cut(spec, ":")
		if n, ok := numeric(name); ok && n >= 0 && uint32(n) != u.UID {
			t.Fatalf("%q: uid %d", spec, u.UID)
		}
		if n, ok := numeric(grp); ok && n >= 0 && uint32(n) != u.GID {
			t.Fatalf("%q: gid %d", spec, u.GID)
		}
	})
}
