package storage

import (
	"errors"
	"strings"
	"testing"

	"github.com/lading-oci/lading/errdef"
)

func TestCheckName(t *testing.T) {
	good := []string{"a", "library/alpine", "a0/b-c/d__e", "a.b_c--d", "x/y/z", "conformance/repo1", strings.Repeat("a", MaxNameLength)}
	for _, n := range good {
		if err := CheckName(n); err != nil {
			t.Errorf("CheckName(%q) = %v, want nil", n, err)
		}
	}
	bad := map[string]string{
		"":                          "empty",
		"A":                         "must start",
		"a/../b":                    "must start",
		"..":                        "must start",
		".hidden":                   "must start",
		"_x":                        "must start",
		"a/.lading":                 "must start",
		"a//b":                      "empty path component",
		"a/":                        "empty path component",
		"/a":                        "empty path component",
		"a-":                        "must end",
		"a___b":                     "followed by",
		"a%2fb":                     "not allowed",
		"a b":                       "not allowed",
		"a/blobs":                   "reserved",
		"a/index.json":              "reserved",
		"a/oci-layout":              "reserved",
		"a/ingest":                  "reserved",
		"blobs/x":                   "reserved",
		strings.Repeat("a", 201):    "limit",
		"a/b/c/blobs/sha256/abcdef": "reserved",
	}
	for n, want := range bad {
		err := CheckName(n)
		if err == nil || !errors.Is(err, errdef.ErrInvalid) || !strings.Contains(err.Error(), want) {
			t.Errorf("CheckName(%q) = %v, want an ErrInvalid mentioning %q", n, err, want)
		}
	}
}

func TestCheckTag(t *testing.T) {
	for _, tag := range []string{"latest", "v1.2.3", "_x", "A-b_c.d", strings.Repeat("x", 128)} {
		if err := CheckTag(tag); err != nil {
			t.Errorf("CheckTag(%q) = %v", tag, err)
		}
	}
	for _, tag := range []string{"", ".x", "-x", "a:b", "a/b", strings.Repeat("x", 129), "ü"} {
		if err := CheckTag(tag); !errors.Is(err, errdef.ErrInvalid) {
			t.Errorf("CheckTag(%q) = %v, want ErrInvalid", tag, err)
		}
	}
}

// FuzzCheckName checks that every accepted name is a safe relative path of
// the grammar: no dot components, no reserved component, no empty one.
func FuzzCheckName(f *testing.F) {
	for _, s := range []string{"a/b", "a/../b", "a/blobs", "a.b-c", "x__y", "%2e"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if CheckName(name) != nil {
			return
		}
		if len(name) > MaxNameLength {
			t.Fatalf("accepted %d characters", len(name))
		}
		for _, c := range strings.Split(name, "/") {
			if c == "" || c == "." || c == ".." || c[0] == '.' || c[0] == '_' || c[0] == '-' {
				t.Fatalf("accepted component %q in %q", c, name)
			}
			for _, r := range ReservedComponents {
				if c == r {
					t.Fatalf("accepted reserved component %q", c)
				}
			}
			for _, b := range []byte(c) {
				if !(isLowerAlnum(b) || b == '.' || b == '_' || b == '-') {
					t.Fatalf("accepted byte %q", b)
				}
			}
		}
	})
}

func FuzzCheckTag(f *testing.F) {
	for _, s := range []string{"latest", "a:b", ".x", "v1.0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, tag string) {
		if CheckTag(tag) != nil {
			return
		}
		if len(tag) == 0 || len(tag) > MaxTagLength || tag[0] == '.' || tag[0] == '-' || strings.ContainsAny(tag, "/:@ \x00") {
			t.Fatalf("accepted %q", tag)
		}
	})
}
