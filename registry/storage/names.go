package storage

import (
	"fmt"
	"strings"

	"github.com/lading-oci/lading/errdef"
)

// MaxNameLength is the longest repository name accepted. Many clients cap
// "host[:port]/name" at 255 characters; 255 leaves room for none, so names
// are capped a little lower to leave room for a host.
const MaxNameLength = 200

// ReservedComponents are path components a repository name may not have:
// they are the entries of an OCI image layout (and the ingest directory of
// lading's embedded store), so a repository named with one would land inside
// another repository's layout.
var ReservedComponents = []string{"blobs", "index.json", "oci-layout", "ingest"}

// CheckName validates a repository name: the distribution specification's
// grammar, path components separated by "/", each of lowercase letters and
// digits joined by ".", "_", "__" or runs of "-"; at most MaxNameLength
// characters; and no component that is one of ReservedComponents. A bad
// name matches errdef.ErrInvalid; the message says why.
func CheckName(name string) error {
	if name == "" {
		return fmt.Errorf("repository name: %w: empty", errdef.ErrInvalid)
	}
	if len(name) > MaxNameLength {
		return fmt.Errorf("repository name %.40q…: %w: %d characters, the limit is %d", name, errdef.ErrInvalid, len(name), MaxNameLength)
	}
	for comp := range strings.SplitSeq(name, "/") {
		if err := checkComponent(comp); err != nil {
			return fmt.Errorf("repository name %q: %w: %s", name, errdef.ErrInvalid, err)
		}
		for _, r := range ReservedComponents {
			if comp == r {
				return fmt.Errorf("repository name %q: %w: the component %q is reserved: it would collide with an entry of an OCI image layout (%s)", name, errdef.ErrInvalid, comp, strings.Join(ReservedComponents, ", "))
			}
		}
	}
	return nil
}

// checkComponent checks one component against
// [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*.
func checkComponent(c string) error {
	if c == "" {
		return fmt.Errorf("empty path component")
	}
	i := 0
	for {
		// A run of [a-z0-9]+.
		start := i
		for i < len(c) && isLowerAlnum(c[i]) {
			i++
		}
		if i == start {
			if start == 0 {
				return fmt.Errorf("component %q must start with a lowercase letter or digit", c)
			}
			return fmt.Errorf("component %q: a separator must be followed by a lowercase letter or digit", c)
		}
		if i == len(c) {
			return nil
		}
		// A separator: ".", "_", "__" or "-"+.
		switch c[i] {
		case '.':
			i++
		case '_':
			i++
			if i < len(c) && c[i] == '_' {
				i++
			}
		case '-':
			for i < len(c) && c[i] == '-' {
				i++
			}
		default:
			return fmt.Errorf("component %q: character %q not allowed (lowercase letters, digits, '.', '_', '-')", c, c[i])
		}
		if i == len(c) {
			return fmt.Errorf("component %q must end with a lowercase letter or digit", c)
		}
	}
}

func isLowerAlnum(b byte) bool { return b >= 'a' && b <= 'z' || b >= '0' && b <= '9' }

// MaxTagLength is the longest tag the distribution specification allows.
const MaxTagLength = 128

// CheckTag validates a tag against the distribution specification:
// [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}. A bad tag matches errdef.ErrInvalid.
func CheckTag(tag string) error {
	if tag == "" || len(tag) > MaxTagLength {
		return fmt.Errorf("tag %.40q: %w: must be 1 to %d characters", tag, errdef.ErrInvalid, MaxTagLength)
	}
	for i := 0; i < len(tag); i++ {
		c := tag[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || (i > 0 && (c == '.' || c == '-'))
		if !ok {
			return fmt.Errorf("tag %q: %w: character %q not allowed at position %d", tag, errdef.ErrInvalid, c, i)
		}
	}
	return nil
}
