package image

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/lading-oci/lading/errdef"
)

// archAliases maps common non-Go architecture names to GOARCH values, with
// the variant they imply.
var archAliases = map[string][2]string{
	"x86_64":  {"amd64", ""},
	"x86-64":  {"amd64", ""},
	"aarch64": {"arm64", ""},
	"armhf":   {"arm", "v7"},
	"armel":   {"arm", "v6"},
	"i386":    {"386", ""},
	"i686":    {"386", ""},
}

// ParsePlatform parses "os/arch" or "os/arch/variant", such as
// "linux/arm64/v8". Common architecture aliases are normalised: x86_64 to
// amd64, aarch64 to arm64, armhf to arm/v7, armel to arm/v6, i386 to 386.
// Components must be non-empty lowercase letters, digits, '.', '_' or '-'.
// Errors match errdef.ErrInvalid.
func ParsePlatform(s string) (ocispec.Platform, error) {
	parts := strings.Split(s, "/")
	if len(parts) < 2 || len(parts) > 3 {
		return ocispec.Platform{}, fmt.Errorf("platform %q: %w: want os/arch or os/arch/variant", s, errdef.ErrInvalid)
	}
	for _, part := range parts {
		if !platformComponent(part) {
			return ocispec.Platform{}, fmt.Errorf("platform %q: %w: component %q must be non-empty lowercase letters, digits, '.', '_' or '-'", s, errdef.ErrInvalid, part)
		}
	}
	p := ocispec.Platform{OS: parts[0], Architecture: parts[1]}
	if len(parts) == 3 {
		p.Variant = parts[2]
	}
	if alias, ok := archAliases[p.Architecture]; ok {
		p.Architecture = alias[0]
		if p.Variant == "" {
			p.Variant = alias[1]
		}
	}
	return p, nil
}

func platformComponent(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// FormatPlatform renders p as "os/arch" or "os/arch/variant", the form
// ParsePlatform reads.
func FormatPlatform(p ocispec.Platform) string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

// MatchPlatform reports whether an image for have runs where want is asked
// for: os and architecture must be equal and, when want names a variant, the
// variants must be equal too. On arm64 an absent variant means "v8".
func MatchPlatform(want, have ocispec.Platform) bool {
	if want.OS != have.OS || want.Architecture != have.Architecture {
		return false
	}
	if want.Variant == "" {
		return true
	}
	return normalVariant(want) == normalVariant(have)
}

func normalVariant(p ocispec.Platform) string {
	if p.Architecture == "arm64" && p.Variant == "" {
		return "v8"
	}
	return p.Variant
}

// DefaultPlatform returns the platform images are built for and selected by
// when none is named: linux on the architecture lading was built for
// (runtime.GOARCH), as docker and crane do on any host, with the variant
// "v8" on arm64 and, on arm, the GOARM level the binary was built with ("v7"
// when unknown).
func DefaultPlatform() ocispec.Platform {
	p := ocispec.Platform{OS: "linux", Architecture: runtime.GOARCH}
	switch p.Architecture {
	case "arm64":
		p.Variant = "v8"
	case "arm":
		p.Variant = "v7"
		if bi, ok := debug.ReadBuildInfo(); ok {
			for _, s := range bi.Settings {
				if s.Key == "GOARM" && s.Value != "" {
					level, _, _ := strings.Cut(s.Value, ",")
					p.Variant = "v" + level
				}
			}
		}
	}
	return p
}
