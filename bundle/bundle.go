// Package bundle turns an OCI image configuration into an OCI runtime
// configuration (config.json), as image-spec's conversion.md says: Env,
// Entrypoint and Cmd, WorkingDir verbatim; User resolved to numeric ids
// through the image's own /etc/passwd and /etc/group; os, architecture,
// author, created, StopSignal, ExposedPorts and Labels as annotations, the
// labels taking precedence. Around that it puts the Linux defaults a
// container engine gives: pid, ipc, uts, mount and network namespaces, the
// kernel filesystems mounted, docker's default capabilities, no new
// privileges, masked and read-only /proc and /sys paths, rlimits, and, for
// a caller without root, a user namespace mapping the container's root to
// the caller.
//
// The package knows nothing of stores: it reads the image configuration and
// the unpacked root filesystem, and writes config.json.
package bundle

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/lading-oci/lading/internal/atomicfile"

	"github.com/lading-oci/lading/errdef"
	"github.com/lading-oci/lading/image"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// DefaultPath is the PATH a process gets when the image sets none.
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Version is the ociVersion of the configurations Generate makes: the
// oldest runtime-spec release that has every field they use, so that
// runtimes of that release (crun 1.8, runc 1.1) take them.
const Version = "1.0.2"

// Annotation keys set from the image configuration (conversion.md).
const (
	AnnotationOS           = "org.opencontainers.image.os"
	AnnotationArchitecture = "org.opencontainers.image.architecture"
	AnnotationVariant      = "org.opencontainers.image.variant"
	AnnotationOSVersion    = "org.opencontainers.image.os.version"
	AnnotationOSFeatures   = "org.opencontainers.image.os.features"
	AnnotationAuthor       = "org.opencontainers.image.author"
	AnnotationCreated      = "org.opencontainers.image.created"
	AnnotationStopSignal   = "org.opencontainers.image.stopSignal"
	AnnotationExposedPorts = "org.opencontainers.image.exposedPorts"
)

// Options are the caller's inputs on top of the image configuration. The
// zero value runs the image as its configuration says, as root would.
type Options struct {
	// Args, when non-nil, replaces the image's Cmd: the arguments that
	// follow the entrypoint (docker run IMAGE ARGS...).
	Args []string
	// Entrypoint, when non-nil, replaces the image's Entrypoint; the
	// image's Cmd is then dropped too (only Args follow it), as docker run
	// --entrypoint does.
	Entrypoint []string
	// Env entries KEY=VALUE are set on top of the image's environment.
	Env []string
	// WorkingDir and User, when set, replace the image's.
	WorkingDir string
	User       string
	// Hostname of the container (in its own UTS namespace).
	Hostname string
	// Terminal gives the process a pseudo-terminal.
	Terminal bool
	// Rootless makes the container in a user namespace that maps its root
	// to the calling user (UIDMappings and GIDMappings, when set, replace
	// that single mapping), without cgroup device rules, and with /sys bound
	// from the host instead of mounted anew.
	Rootless    bool
	UIDMappings []specs.LinuxIDMapping
	GIDMappings []specs.LinuxIDMapping
	// HostNetwork shares the host's network namespace. Without it the
	// container gets a new, empty one: a loopback device and nothing else.
	HostNetwork bool
	// ReadonlyRootfs mounts the root filesystem read-only.
	ReadonlyRootfs bool
	// Mounts are added after the default ones, in order: bind mounts of
	// volumes, say.
	Mounts []specs.Mount
	// Annotations are added to the ones taken from the image; the image's
	// labels still win over both, as conversion.md requires.
	Annotations map[string]string
	// RootPath is root.path in config.json (default "rootfs", relative to
	// the bundle directory).
	RootPath string
}

// Generate makes the runtime configuration for img, whose root filesystem
// is unpacked at rootfs (read for /etc/passwd and /etc/group only). A user
// that the image's files do not know, or a configuration that leaves
// nothing to run, is an error matching errdef.ErrInvalid.
func Generate(ctx context.Context, img *ocispec.Image, rootfs string, opts Options) (*specs.Spec, error) {
	if img == nil {
		return nil, fmt.Errorf("bundle: %w: no image configuration", errdef.ErrInvalid)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	cfg := img.Config
	args := processArgs(cfg, opts)
	if len(args) == 0 {
		return nil, fmt.Errorf("bundle: %w: the image has neither an entrypoint nor a command, and none was given", errdef.ErrInvalid)
	}
	userSpec := cfg.User
	if opts.User != "" {
		userSpec = opts.User
	}
	u, home, err := ResolveUser(ctx, rootfs, userSpec)
	if err != nil {
		return nil, err
	}
	env, err := processEnv(cfg.Env, opts.Env, home, opts.Terminal)
	if err != nil {
		return nil, err
	}
	cwd := cfg.WorkingDir
	if opts.WorkingDir != "" {
		cwd = opts.WorkingDir
	}
	cwd = path.Clean("/" + cwd)
	rootPath := opts.RootPath
	if rootPath == "" {
		rootPath = "rootfs"
	}
	lx := linux(opts)
	if opts.Rootless {
		if err := mapUser(&u, lx); err != nil {
			return nil, err
		}
	}
	s := &specs.Spec{
		Version: Version,
		Root:    &specs.Root{Path: rootPath, Readonly: opts.ReadonlyRootfs},
		Process: &specs.Process{
			Terminal:        opts.Terminal,
			User:            u,
			Args:            args,
			Env:             env,
			Cwd:             cwd,
			Capabilities:    capabilities(u.UID == 0),
			Rlimits:         rlimits(opts.Rootless),
			NoNewPrivileges: true,
		},
		Hostname:    opts.Hostname,
		Mounts:      mounts(opts),
		Annotations: annotations(img, opts.Annotations),
		Linux:       lx,
	}
	return s, nil
}

// mapUser checks that the process's user and group are mapped into the
// user namespace of a rootless container, and leaves out the additional
// groups, which such a container cannot set.
func mapUser(u *specs.User, l *specs.Linux) error {
	if !mapped(l.UIDMappings, u.UID) || !mapped(l.GIDMappings, u.GID) {
		return fmt.Errorf("user %d:%d: %w: it is not mapped into the container's user namespace; without root only "+
			"the caller is (as uid 0) unless /etc/subuid and /etc/subgid give the caller ranges and newuidmap is installed",
			u.UID, u.GID, errdef.ErrUnsupported)
	}
	// A process in a user namespace made without root may not set
	// supplementary groups (setgroups is denied there, and runc refuses
	// them outright).
	u.AdditionalGids = nil
	return nil
}

func mapped(ms []specs.LinuxIDMapping, id uint32) bool {
	for _, m := range ms {
		if id >= m.ContainerID && id-m.ContainerID < m.Size {
			return true
		}
	}
	return false
}

// processArgs is process.args: Entrypoint followed by Cmd, with the
// caller's replacements.
func processArgs(cfg ocispec.ImageConfig, opts Options) []string {
	entry, cmd := cfg.Entrypoint, cfg.Cmd
	if opts.Entrypoint != nil {
		entry, cmd = opts.Entrypoint, nil
	}
	if opts.Args != nil {
		cmd = opts.Args
	}
	return slices.Concat(entry, cmd)
}

// processEnv is the image's environment with the caller's entries set on
// top, and PATH, HOME (and TERM for a terminal) added when nobody set them.
func processEnv(imageEnv, extra []string, home string, terminal bool) ([]string, error) {
	env := slices.Clone(imageEnv)
	for _, e := range extra {
		k, _, ok := strings.Cut(e, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("env %q: %w: want KEY=VALUE", e, errdef.ErrInvalid)
		}
		env = image.SetEnv(env, e)
	}
	defaults := []string{"PATH=" + DefaultPath}
	if home != "" {
		defaults = append(defaults, "HOME="+home)
	} else {
		defaults = append(defaults, "HOME=/")
	}
	if terminal {
		defaults = append(defaults, "TERM=xterm")
	}
	for _, d := range defaults {
		k, _, _ := strings.Cut(d, "=")
		if !image.HasEnv(env, k) {
			env = append(env, d)
		}
	}
	return env, nil
}

// annotations are the implicit annotations of conversion.md, then the
// caller's, then the image's labels, which win over both.
func annotations(img *ocispec.Image, extra map[string]string) map[string]string {
	a := map[string]string{}
	set := func(k, v string) {
		if v != "" {
			a[k] = v
		}
	}
	set(AnnotationOS, img.OS)
	set(AnnotationArchitecture, img.Architecture)
	set(AnnotationVariant, img.Variant)
	set(AnnotationOSVersion, img.OSVersion)
	set(AnnotationOSFeatures, strings.Join(img.OSFeatures, ","))
	set(AnnotationAuthor, img.Author)
	if img.Created != nil {
		set(AnnotationCreated, img.Created.UTC().Format(time.RFC3339Nano))
	}
	set(AnnotationStopSignal, img.Config.StopSignal)
	if len(img.Config.ExposedPorts) > 0 {
		set(AnnotationExposedPorts, strings.Join(slices.Sorted(maps.Keys(img.Config.ExposedPorts)), ","))
	}
	maps.Copy(a, extra)
	maps.Copy(a, img.Config.Labels)
	if len(a) == 0 {
		return nil
	}
	return a
}

// WriteConfig writes s as dir/config.json (through a temporary file and a
// rename, so a reader never sees half of it).
func WriteConfig(ctx context.Context, dir string, s *specs.Spec) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	data, err := json.MarshalIndent(s, "", "\t")
	if err != nil {
		return err
	}
	path := filepath.Join(dir, "config.json")
	if err := atomicfile.Write(path, append(data, '\n'), 0o644, false); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// ReadConfig reads dir/config.json back, refusing a document larger than
// 4 MiB or one that misses what a runtime needs (see Check).
func ReadConfig(ctx context.Context, dir string) (*specs.Spec, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	name := filepath.Join(dir, "config.json")
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var s specs.Spec
	dec := json.NewDecoder(&limitReader{f: f, n: 4 << 20})
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("%s: %w: %v", name, errdef.ErrInvalid, err)
	}
	if err := Check(&s); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return &s, nil
}

type limitReader struct {
	f *os.File
	n int64
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.n <= 0 {
		return 0, fmt.Errorf("%w: config.json is larger than 4 MiB", errdef.ErrTooLarge)
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.f.Read(p)
	l.n -= int64(n)
	return n, err
}

// Check verifies what runtime-spec requires of a Linux config.json: the
// version, root.path, process.args with at least one entry, an absolute
// process.cwd, absolute mount destinations, and namespace types known and
// not repeated. The error matches errdef.ErrInvalid.
func Check(s *specs.Spec) error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("runtime config: %w: "+format, append([]any{errdef.ErrInvalid}, a...)...)
	}
	if s.Version == "" {
		return bad("ociVersion is missing")
	}
	if s.Root == nil || s.Root.Path == "" {
		return bad("root.path is missing")
	}
	if s.Process != nil {
		if len(s.Process.Args) == 0 {
			return bad("process.args is empty")
		}
		if !path.IsAbs(s.Process.Cwd) {
			return bad("process.cwd %q is not absolute", s.Process.Cwd)
		}
		for _, e := range s.Process.Env {
			if k, _, ok := strings.Cut(e, "="); !ok || k == "" {
				return bad("process.env entry %q is not KEY=VALUE", e)
			}
		}
		seen := map[string]bool{}
		for _, r := range s.Process.Rlimits {
			if seen[r.Type] {
				return bad("rlimit %s is given twice", r.Type)
			}
			seen[r.Type] = true
			if r.Soft > r.Hard {
				return bad("rlimit %s: soft limit %d is above the hard limit %d", r.Type, r.Soft, r.Hard)
			}
		}
	}
	for _, m := range s.Mounts {
		if !path.IsAbs(m.Destination) {
			return bad("mount destination %q is not absolute", m.Destination)
		}
	}
	if s.Linux != nil {
		seen := map[specs.LinuxNamespaceType]bool{}
		for _, ns := range s.Linux.Namespaces {
			switch ns.Type {
			case specs.PIDNamespace, specs.NetworkNamespace, specs.MountNamespace, specs.IPCNamespace,
				specs.UTSNamespace, specs.UserNamespace, specs.CgroupNamespace, specs.TimeNamespace:
			default:
				return bad("unknown namespace type %q", ns.Type)
			}
			if seen[ns.Type] {
				return bad("namespace %s is given twice", ns.Type)
			}
			seen[ns.Type] = true
		}
		if (len(s.Linux.UIDMappings) > 0 || len(s.Linux.GIDMappings) > 0) && !seen[specs.UserNamespace] {
			return bad("uid or gid mappings without a user namespace")
		}
	}
	return nil
}
