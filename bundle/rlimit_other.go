//go:build !unix

package bundle

import specs "github.com/opencontainers/runtime-spec/specs-go"

// rlimits gives open files a limit of 1048576 (soft and hard).
func rlimits(bool) []specs.POSIXRlimit {
	return []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 1 << 20, Hard: 1 << 20}}
}
