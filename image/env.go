package image

import (
	"slices"
	"strings"
)

// SetEnv returns a copy of env, a configuration's KEY=value list, with kv
// set: it takes the place of the entry with the same key, or is appended.
func SetEnv(env []string, kv string) []string {
	k, _, _ := strings.Cut(kv, "=")
	out := slices.Clone(env)
	for i, e := range out {
		if ek, _, _ := strings.Cut(e, "="); ek == k {
			out[i] = kv
			return out
		}
	}
	return append(out, kv)
}

// HasEnv reports whether env, a configuration's KEY=value list, has an
// entry for key.
func HasEnv(env []string, key string) bool {
	for _, e := range env {
		if k, _, _ := strings.Cut(e, "="); k == key {
			return true
		}
	}
	return false
}
