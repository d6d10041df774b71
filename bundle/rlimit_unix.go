//go:build unix

package bundle

import (
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// rlimits gives open files this process's hard limit, soft and hard: what
// can be set without privileges beyond ours (raising a hard limit needs
// CAP_SYS_RESOURCE, which neither a rootless caller nor every root has).
func rlimits(bool) []specs.POSIXRlimit {
	n := uint64(1024)
	var cur syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &cur); err == nil {
		n = uint64(cur.Max)
	}
	return []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: n, Hard: n}}
}
