package image

import (
	"errors"
	"runtime"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/lading-oci/lading/errdef"
)

func TestParsePlatform(t *testing.T) {
	tests := []struct {
		in   string
		want ocispec.Platform
		ok   bool
	}{
		{"linux/amd64", ocispec.Platform{OS: "linux", Architecture: "amd64"}, true},
		{"linux/arm64/v8", ocispec.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}, true},
		{"linux/arm/v7", ocispec.Platform{OS: "linux", Architecture: "arm", Variant: "v7"}, true},
		{"windows/amd64", ocispec.Platform{OS: "windows", Architecture: "amd64"}, true},
		{"linux/x86_64", ocispec.Platform{OS: "linux", Architecture: "amd64"}, true},
		{"linux/aarch64", ocispec.Platform{OS: "linux", Architecture: "arm64"}, true},
		{"linux/armhf", ocispec.Platform{OS: "linux", Architecture: "arm", Variant: "v7"}, true},
		{"linux/armel", ocispec.Platform{OS: "linux", Architecture: "arm", Variant: "v6"}, true},
		{"linux/i386", ocispec.Platform{OS: "linux", Architecture: "386"}, true},
		{"linux/ppc64le/power9", ocispec.Platform{OS: "linux", Architecture: "ppc64le", Variant: "power9"}, true},
		{"linux", ocispec.Platform{}, false},
		{"", ocispec.Platform{}, false},
		{"linux/", ocispec.Platform{}, false},
		{"/amd64", ocispec.Platform{}, false},
		{"linux/amd64/", ocispec.Platform{}, false},
		{"linux/amd64/v3/x", ocispec.Platform{}, false},
		{"Linux/AMD64", ocispec.Platform{}, false},
		{"linux/amd 64", ocispec.Platform{}, false},
	}
	for _, tc := range tests {
		got, err := ParsePlatform(tc.in)
		if !tc.ok {
			if !errors.Is(err, errdef.ErrInvalid) {
				t.Errorf("ParsePlatform(%q) = %+v, %v; want ErrInvalid", tc.in, got, err)
			}
			continue
		}
		if err != nil || got.OS != tc.want.OS || got.Architecture != tc.want.Architecture || got.Variant != tc.want.Variant {
			t.Errorf("ParsePlatform(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
		if tc.in == FormatPlatform(tc.want) && FormatPlatform(got) != tc.in {
			t.Errorf("FormatPlatform(%+v) = %q, want %q", got, FormatPlatform(got), tc.in)
		}
	}
}

func TestMatchPlatform(t *testing.T) {
	p := func(s string) ocispec.Platform {
		t.Helper()
		pl, err := ParsePlatform(s)
		if err != nil {
			t.Fatal(err)
		}
		return pl
	}
	tests := []struct {
		want, have string
		match      bool
	}{
		{"linux/amd64", "linux/amd64", true},
		{"linux/amd64", "linux/amd64/v3", true},
		{"linux/amd64/v3", "linux/amd64", false},
		{"linux/amd64", "windows/amd64", false},
		{"linux/amd64", "linux/arm64", false},
		{"linux/arm64", "linux/arm64/v8", true},
		{"linux/arm64/v8", "linux/arm64", true},
		{"linux/arm64/v8", "linux/arm64/v8", true},
		{"linux/arm64/v9", "linux/arm64", false},
		{"linux/arm/v7", "linux/arm/v7", true},
		{"linux/arm/v7", "linux/arm/v6", false},
		{"linux/arm/v7", "linux/arm", false},
		{"linux/arm", "linux/arm/v6", true},
	}
	for _, tc := range tests {
		if got := MatchPlatform(p(tc.want), p(tc.have)); got != tc.match {
			t.Errorf("MatchPlatform(%s, %s) = %v, want %v", tc.want, tc.have, got, tc.match)
		}
	}
}

func TestDefaultPlatform(t *testing.T) {
	p := DefaultPlatform()
	if p.OS != runtime.GOOS || p.Architecture != runtime.GOARCH {
		t.Fatalf("DefaultPlatform = %+v, want %s/%s", p, runtime.GOOS, runtime.GOARCH)
	}
	if !MatchPlatform(p, p) {
		t.Error("the default platform does not match itself")
	}
	if back, err := ParsePlatform(FormatPlatform(p)); err != nil || !MatchPlatform(p, back) {
		t.Errorf("round trip %q: %+v, %v", FormatPlatform(p), back, err)
	}
}
