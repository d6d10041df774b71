package bundle

import (
	"os"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// DefaultCapabilities is the bounding set a container gets: docker's
// default set. A process running as root has them effective and permitted;
// any other user starts with none (it can gain them only through file
// capabilities, which no-new-privileges keeps off).
var DefaultCapabilities = []string{
	"CAP_CHOWN",
	"CAP_DAC_OVERRIDE",
	"CAP_FSETID",
	"CAP_FOWNER",
	"CAP_MKNOD",
	"CAP_NET_RAW",
	"CAP_SETGID",
	"CAP_SETUID",
	"CAP_SETFCAP",
	"CAP_SETPCAP",
	"CAP_NET_BIND_SERVICE",
	"CAP_SYS_CHROOT",
	"CAP_KILL",
	"CAP_AUDIT_WRITE",
}

// MaskedPaths are hidden from the container (docker's list).
var MaskedPaths = []string{
	"/proc/asound",
	"/proc/acpi",
	"/proc/interrupts",
	"/proc/kcore",
	"/proc/keys",
	"/proc/latency_stats",
	"/proc/timer_list",
	"/proc/timer_stats",
	"/proc/sched_debug",
	"/proc/scsi",
	"/sys/firmware",
	"/sys/devices/virtual/powercap",
}

// ReadonlyPaths are mounted read-only in the container (docker's list).
var ReadonlyPaths = []string{
	"/proc/bus",
	"/proc/fs",
	"/proc/irq",
	"/proc/sys",
	"/proc/sysrq-trigger",
}

func capabilities(root bool) *specs.LinuxCapabilities {
	c := &specs.LinuxCapabilities{Bounding: append([]string(nil), DefaultCapabilities...)}
	if root {
		c.Effective = append([]string(nil), DefaultCapabilities...)
		c.Permitted = append([]string(nil), DefaultCapabilities...)
	}
	return c
}

// mounts are the kernel filesystems every container gets, then the
// caller's.
func mounts(opts Options) []specs.Mount {
	ms := []specs.Mount{
		{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
		{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
		{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
		{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
		{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"nosuid", "noexec", "nodev", "relatime", "ro"}},
	}
	if opts.Rootless || opts.HostNetwork {
		// sysfs can be mounted only by the owner of the network namespace;
		// bind the host's instead, read-only.
		ms[5] = specs.Mount{Destination: "/sys", Type: "none", Source: "/sys", Options: []string{"rbind", "nosuid", "noexec", "nodev", "ro"}}
	}
	if opts.Rootless {
		// Without root, devpts cannot be given the tty group, and cgroups
		// are not the caller's to mount.
		ms[2].Options = []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"}
		ms = ms[:6]
	}
	return append(ms, opts.Mounts...)
}

func linux(opts Options) *specs.Linux {
	l := &specs.Linux{
		Namespaces: []specs.LinuxNamespace{
			{Type: specs.PIDNamespace},
			{Type: specs.IPCNamespace},
			{Type: specs.UTSNamespace},
			{Type: specs.MountNamespace},
		},
		MaskedPaths:   append([]string(nil), MaskedPaths...),
		ReadonlyPaths: append([]string(nil), ReadonlyPaths...),
	}
	if !opts.HostNetwork {
		l.Namespaces = append(l.Namespaces, specs.LinuxNamespace{Type: specs.NetworkNamespace})
	}
	if opts.Rootless {
		l.Namespaces = append(l.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
		l.UIDMappings = opts.UIDMappings
		if len(l.UIDMappings) == 0 {
			l.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: uint32(os.Getuid()), Size: 1}}
		}
		l.GIDMappings = opts.GIDMappings
		if len(l.GIDMappings) == 0 {
			l.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: uint32(os.Getgid()), Size: 1}}
		}
	} else {
		l.Resources = &specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}}}
	}
	return l
}
