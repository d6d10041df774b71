package ref

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"

	"github.com/lading-oci/lading/errdef"
)

const dg = "sha256:9834876dcfb05cb167a5c24953eba58c4ac89b1adf57f28f2f9d09af107ee8f0"

type want struct {
	scheme                         Scheme
	path, registry, repo, tag, str string
	digest                         digest.Digest
	index                          int // -1 when absent
}

func TestParse(t *testing.T) {
	tests := []struct {
		in string
		want
	}{
		// Registry references, normalised as docker does.
		{"busybox", want{scheme: SchemeRegistry, registry: "docker.io", repo: "library/busybox", tag: "latest", str: "docker.io/library/busybox:latest", index: -1}},
		{"busybox:1.36", want{scheme: SchemeRegistry, registry: "docker.io", repo: "library/busybox", tag: "1.36", str: "docker.io/library/busybox:1.36", index: -1}},
		{"busybox@" + dg, want{scheme: SchemeRegistry, registry: "docker.io", repo: "library/busybox", digest: dg, str: "docker.io/library/busybox@" + dg, index: -1}},
		{"busybox:1.36@" + dg, want{scheme: SchemeRegistry, registry: "docker.io", repo: "library/busybox", tag: "1.36", digest: dg, str: "docker.io/library/busybox:1.36@" + dg, index: -1}},
		{"user/app", want{scheme: SchemeRegistry, registry: "docker.io", repo: "user/app", tag: "latest", str: "docker.io/user/app:latest", index: -1}},
		{"docker.io/busybox", want{scheme: SchemeRegistry, registry: "docker.io", repo: "library/busybox", tag: "latest", str: "docker.io/library/busybox:latest", index: -1}},
		{"index.docker.io/user/app:v1", want{scheme: SchemeRegistry, registry: "docker.io", repo: "user/app", tag: "v1", str: "docker.io/user/app:v1", index: -1}},
		{"ghcr.io/org/team/app:v1.2.3", want{scheme: SchemeRegistry, registry: "ghcr.io", repo: "org/team/app", tag: "v1.2.3", str: "ghcr.io/org/team/app:v1.2.3", index: -1}},
		{"localhost/app", want{scheme: SchemeRegistry, registry: "localhost", repo: "app", tag: "latest", str: "localhost/app:latest", index: -1}},
		{"localhost:5000/app:dev", want{scheme: SchemeRegistry, registry: "localhost:5000", repo: "app", tag: "dev", str: "localhost:5000/app:dev", index: -1}},
		{"localhost:5000", want{scheme: SchemeRegistry, registry: "docker.io", repo: "library/localhost", tag: "5000", str: "docker.io/library/localhost:5000", index: -1}},
		{"127.0.0.1:5000/a/b", want{scheme: SchemeRegistry, registry: "127.0.0.1:5000", repo: "a/b", tag: "latest", str: "127.0.0.1:5000/a/b:latest", index: -1}},
		{"[::1]:5000/app", want{scheme: SchemeRegistry, registry: "[::1]:5000", repo: "app", tag: "latest", str: "[::1]:5000/app:latest", index: -1}},
		{"Registry/app", want{scheme: SchemeRegistry, registry: "Registry", repo: "app", tag: "latest", str: "Registry/app:latest", index: -1}},
		{"docker://busybox", want{scheme: SchemeRegistry, registry: "docker.io", repo: "library/busybox", tag: "latest", str: "docker.io/library/busybox:latest", index: -1}},
		{"alpine", want{scheme: SchemeRegistry, registry: "docker.io", repo: "library/alpine", tag: "latest", str: "docker.io/library/alpine:latest", index: -1}},
		{"[::1]/app:v", want{scheme: SchemeRegistry, registry: "[::1]", repo: "app", tag: "v", str: "[::1]/app:v", index: -1}},
		{"[2001:db8::1]:443/a/b@" + dg, want{scheme: SchemeRegistry, registry: "[2001:db8::1]:443", repo: "a/b", digest: dg, str: "[2001:db8::1]:443/a/b@" + dg, index: -1}},
		{"registry.example.com:5000/team/app:1.0", want{scheme: SchemeRegistry, registry: "registry.example.com:5000", repo: "team/app", tag: "1.0", str: "registry.example.com:5000/team/app:1.0", index: -1}},
		{"docker.io/user/app", want{scheme: SchemeRegistry, registry: "docker.io", repo: "user/app", tag: "latest", str: "docker.io/user/app:latest", index: -1}},
		{"docker://localhost:5000/a/b/c:v", want{scheme: SchemeRegistry, registry: "localhost:5000", repo: "a/b/c", tag: "v", str: "localhost:5000/a/b/c:v", index: -1}},
		{"docker://quay.io/a/b-c__d.e---f:t_1", want{scheme: SchemeRegistry, registry: "quay.io", repo: "a/b-c__d.e---f", tag: "t_1", str: "quay.io/a/b-c__d.e---f:t_1", index: -1}},
		// OCI layouts.
		{"oci:/tmp/x", want{scheme: SchemeOCI, path: "/tmp/x", str: "oci:/tmp/x", index: -1}},
		{"oci:/tmp/x:latest", want{scheme: SchemeOCI, path: "/tmp/x", tag: "latest", str: "oci:/tmp/x:latest", index: -1}},
		{"oci:relative/dir:v1.0-rc_1", want{scheme: SchemeOCI, path: "relative/dir", tag: "v1.0-rc_1", str: "oci:relative/dir:v1.0-rc_1", index: -1}},
		{"oci:/tmp/x@" + dg, want{scheme: SchemeOCI, path: "/tmp/x", digest: dg, str: "oci:/tmp/x@" + dg, index: -1}},
		{"oci:/tmp/x:v1@" + dg, want{scheme: SchemeOCI, path: "/tmp/x", tag: "v1", digest: dg, str: "oci:/tmp/x:v1@" + dg, index: -1}},
		// The first colon ends the path, as in skopeo: tags follow the
		// ref.name grammar, which allows ':' and '/'.
		{"oci:/mnt/a:b/c", want{scheme: SchemeOCI, path: "/mnt/a", tag: "b/c", str: "oci:/mnt/a:b/c", index: -1}},
		{"oci:./data:v1:latest", want{scheme: SchemeOCI, path: "./data", tag: "v1:latest", str: "oci:./data:v1:latest", index: -1}},
		{"oci:img:team/app", want{scheme: SchemeOCI, path: "img", tag: "team/app", str: "oci:img:team/app", index: -1}},
		{`oci:C:\images\x`, want{scheme: SchemeOCI, path: `C:\images\x`, str: `oci:C:\images\x`, index: -1}},
		{"oci:/home/me@work/x", want{scheme: SchemeOCI, path: "/home/me@work/x", str: "oci:/home/me@work/x", index: -1}},
		{"oci:latest", want{scheme: SchemeOCI, path: "latest", str: "oci:latest", index: -1}},
		{"oci-archive:/tmp/x.tar", want{scheme: SchemeOCIArchive, path: "/tmp/x.tar", str: "oci-archive:/tmp/x.tar", index: -1}},
		{"oci-archive:/tmp/x.tar:v2", want{scheme: SchemeOCIArchive, path: "/tmp/x.tar", tag: "v2", str: "oci-archive:/tmp/x.tar:v2", index: -1}},
		// docker-archive.
		{"docker-archive:/tmp/a.tar", want{scheme: SchemeDockerArchive, path: "/tmp/a.tar", str: "docker-archive:/tmp/a.tar", index: -1}},
		{"docker-archive:/tmp/a.tar:busybox:1.36", want{scheme: SchemeDockerArchive, path: "/tmp/a.tar", registry: "docker.io", repo: "library/busybox", tag: "1.36", str: "docker-archive:/tmp/a.tar:docker.io/library/busybox:1.36", index: -1}},
		{"docker-archive:a.tar:localhost:5000/app", want{scheme: SchemeDockerArchive, path: "a.tar", registry: "localhost:5000", repo: "app", tag: "latest", str: "docker-archive:a.tar:localhost:5000/app:latest", index: -1}},
		{"docker-archive:a.tar:@2", want{scheme: SchemeDockerArchive, path: "a.tar", str: "docker-archive:a.tar:@2", index: 2}},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			r, err := Parse(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			idx, hasIdx := r.SourceIndex()
			if !hasIdx {
				idx = -1
			}
			got := want{scheme: r.Scheme(), path: r.Path(), registry: r.Registry(), repo: r.Repository(), tag: r.Tag(), str: r.String(), digest: r.Digest(), index: idx}
			if got != tc.want {
				t.Errorf("Parse(%q)\n got %+v\nwant %+v", tc.in, got, tc.want)
			}
			if r.Repository() != "" && r.Name() != r.Registry()+"/"+r.Repository() {
				t.Errorf("Name() = %q", r.Name())
			}
			back, err := Parse(r.String())
			if err != nil || back != r {
				t.Errorf("Parse(String()) = %+v, %v; want %+v", back, err, r)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct{ in, msg string }{
		{"", "missing repository"},
		{"Busybox", "must be lowercase"},
		{"docker.io/Library/busybox", "must be lowercase"},
		{"busybox:", "invalid tag"},
		{"busybox:-x", "invalid tag"},
		{"busybox:" + strings.Repeat("a", 129), "invalid tag"},
		{"busybox@sha256:abc", "invalid digest"},
		{"busybox@md5:d41d8cd98f00b204e9800998ecf8427e", "invalid digest"},
		{"busybox@", "invalid digest"},
		{"a//b", "invalid repository"},
		{"a/b/", "invalid repository"},
		{"a_-b", "invalid repository"},
		{"a___b", "invalid repository"},
		{"-a", "invalid repository"},
		{"example.com/", "invalid repository"},
		{"exa_mple.com/a", "invalid registry"},
		{"-bad.com/a", "invalid registry"},
		{"host:port/a", "invalid registry"},
		{"[::1/a", "invalid registry"},
		{"docker://", "missing repository"},
		{"r.io/" + strings.Repeat("a", 260), "more than 255"},
		{"oci:", "missing oci path"},
		{"oci::latest", "missing oci path"},
		{"oci:/tmp/x:", "invalid tag"},
		{"oci:/tmp/x:bad!tag", "invalid tag"},
		{"oci:/tmp/x@sha256:abc", "invalid digest"},
		{"oci:/tmp/x@foo:bar", "invalid digest"},
		{"oci:/tmp/\x00x", "NUL"},
		{"oci-archive:", "missing oci-archive path"},
		{"docker-archive:", "missing docker-archive file"},
		{"docker-archive::busybox", "missing docker-archive file"},
		{"docker-archive:a.tar:busybox@" + dg, "cannot carry a digest"},
		{"docker-archive:a.tar:@x", "invalid image index"},
		{"docker-archive:a.tar:@-1", "invalid image index"},
		{"docker-archive:a.tar:@01", "invalid image index"},
		{"docker-archive:a.tar:", "missing repository"},
		{"exa_mple.com/a", "invalid registry"},
		{strings.Repeat("a", 64), "64-byte hexadecimal"},
		{"busybox@sha256:" + strings.Repeat("a", 63), "invalid digest"},
		{"busybox:v@sha256:" + strings.Repeat("a", 64) + "x", "invalid digest"},
		{"ghcr.io/org/App", "must be lowercase"},
		{"a b", "invalid"},
		{"./img", "oci:./img"},
		{"/srv/images/app:v1", "oci:/srv/images/app:v1"},
		{"../x", "oci:../x"},
		{".", "oci:."},
	}
	for _, tc := range tests {
		r, err := Parse(tc.in)
		if !errors.Is(err, errdef.ErrInvalid) {
			t.Errorf("Parse(%q) = %v, %v; want ErrInvalid", tc.in, r, err)
			continue
		}
		if !strings.Contains(err.Error(), tc.msg) || !strings.Contains(err.Error(), "reference \"") {
			t.Errorf("Parse(%q) error %q does not contain %q and the input", tc.in, err, tc.msg)
		}
	}
}

func TestWith(t *testing.T) {
	dg2 := digest.Digest("sha512:" + strings.Repeat("ab", 64))
	tests := []struct {
		in, tag     string
		dgst        digest.Digest
		want        string
		tagErr, dgE bool
	}{
		{in: "busybox", tag: "1.36", dgst: dg, want: "docker.io/library/busybox:1.36@" + dg},
		{in: "busybox@" + dg, tag: "v", dgst: dg2, want: "docker.io/library/busybox:v@" + string(dg2)},
		{in: "oci:/x", tag: "t", dgst: dg, want: "oci:/x:t@" + dg},
		{in: "oci:/a:b:c", tag: "d", dgst: dg, want: "oci:/a:d@" + dg},
		{in: "oci-archive:/x.tar", tag: "t", dgst: dg, want: "oci-archive:/x.tar:t@" + dg},
		{in: "docker-archive:a.tar:app", tag: "v2", dgE: true, want: "docker-archive:a.tar:docker.io/library/app:v2"},
		{in: "docker-archive:a.tar", tagErr: true, dgE: true},
		{in: "docker-archive:a.tar:@0", tagErr: true, dgE: true},
	}
	for _, tc := range tests {
		r, err := Parse(tc.in)
		if err != nil {
			t.Fatal(err)
		}
		tag := tc.tag
		if tag == "" {
			tag = "t"
		}
		r2, err := r.WithTag(tag)
		if tc.tagErr != (err != nil) {
			t.Errorf("%s.WithTag: %v", tc.in, err)
			continue
		}
		if err != nil {
			if !errors.Is(err, errdef.ErrInvalid) {
				t.Errorf("%s.WithTag error %v is not ErrInvalid", tc.in, err)
			}
			r2 = r
		}
		r3, err := r2.WithDigest(tc.dgst)
		if tc.dgE != (err != nil) {
			t.Errorf("%s.WithDigest: %v", tc.in, err)
			continue
		}
		if err != nil {
			r3 = r2
		}
		if tc.want != "" && r3.String() != tc.want {
			t.Errorf("%s: got %s, want %s", tc.in, r3, tc.want)
		}
		if back, err := Parse(r3.String()); err != nil || back != r3 {
			t.Errorf("%s: Parse(%s) = %+v, %v", tc.in, r3, back, err)
		}
	}
	r, _ := Parse("busybox")
	if _, err := r.WithTag("bad tag"); !errors.Is(err, errdef.ErrInvalid) {
		t.Errorf("WithTag(bad tag) = %v", err)
	}
	if _, err := r.WithDigest("sha256:short"); !errors.Is(err, errdef.ErrInvalid) {
		t.Errorf("WithDigest(short) = %v", err)
	}
	if _, err := (Reference{}).WithTag("x"); !errors.Is(err, errdef.ErrInvalid) {
		t.Errorf("zero WithTag = %v", err)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"busybox", "docker://ghcr.io/a/b:c@" + dg, "oci:/tmp/x:latest", "oci:/a:b/c", "oci-archive:x.tar@" + dg,
		"docker-archive:a.tar:b:c", "docker-archive:a.tar:@1", "localhost:5000/a", "[::1]:80/a", "Foo/bar", `oci:C:\x`, "oci:/a@b/c:d",
		"a_b.com/c", "./img", "[2001:db8::1]/x", "index.docker.io/a", "x:y@sha512:" + strings.Repeat("0", 128)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := Parse(s)
		if err != nil {
			if !errors.Is(err, errdef.ErrInvalid) {
				t.Fatalf("error does not match ErrInvalid: %v", err)
			}
			return
		}
		out := r.String()
		back, err := Parse(out)
		if err != nil {
			t.Fatalf("Parse(%q) -> %q, which does not parse: %v", s, out, err)
		}
		if back != r {
			t.Fatalf("Parse(%q) = %+v; Parse(%q) = %+v", s, r, out, back)
		}
		if back.String() != out {
			t.Fatalf("String not stable: %q then %q", out, back.String())
		}
		if r.Scheme() == SchemeRegistry {
			// The grammar is distribution/reference's: its parser agrees.
			named, err := reference.ParseNormalizedNamed(out)
			if err != nil {
				t.Fatalf("Parse(%q) -> %q, which distribution/reference refuses: %v", s, out, err)
			}
			if named.Name() != r.Name() {
				t.Fatalf("Parse(%q): name %q, distribution/reference says %q", s, r.Name(), named.Name())
			}
			if r.Registry() == "" || r.Repository() == "" {
				t.Fatalf("Parse(%q) = %+v: empty registry or repository", s, r)
			}
		}
	})
}

func TestHost(t *testing.T) {
	for in, want := range map[string]string{
		"alpine":                   "registry-1.docker.io",
		"docker.io/user/app":       "registry-1.docker.io",
		"index.docker.io/user/app": "registry-1.docker.io",
		"ghcr.io/a/b":              "ghcr.io",
		"localhost:5000/a":         "localhost:5000",
		"[::1]:5000/a":             "[::1]:5000",
	} {
		r, err := Parse(in)
		if err != nil {
			t.Fatal(err)
		}
		if got := r.Host(); got != want {
			t.Errorf("Parse(%q).Host() = %q, want %q", in, got, want)
		}
	}
	if r, _ := Parse("oci:/x"); r.Host() != "" {
		t.Errorf("layout reference has host %q", r.Host())
	}
}

func TestLayoutHint(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	if err := os.Mkdir("img", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile("app.tar", nil, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct{ in, want string }{
		{"img", "img is also a local directory: for an OCI image layout directory write oci:img"},
		{"app.tar", "oci-archive:app.tar or docker-archive:app.tar"},
		{"./img", "write oci:./img"},
		{"/abs/path", "write oci:/abs/path"},
		{"busybox", ""},
		{"oci:img", ""},
		{"docker://img", ""},
	}
	for _, tc := range tests {
		got := LayoutHint(tc.in)
		if tc.want == "" && got != "" || !strings.Contains(got, tc.want) {
			t.Errorf("LayoutHint(%q) = %q, want it to contain %q", tc.in, got, tc.want)
		}
	}
	// The bare name is still a valid registry reference: the hint is the
	// caller's to add when the registry fails.
	if r, err := Parse("img"); err != nil || r.Name() != "docker.io/library/img" {
		t.Errorf("Parse(img) = %v, %v", r, err)
	}
}

func TestValidLayoutTag(t *testing.T) {
	for s, want := range map[string]bool{
		"latest": true, "v1.2.3": true, "team/app": true, "a/b/c": true, "v1.0:debug": true, "1.0+build.5": true,
		"a--b": true, "a@b": true, "x_y-1.2": true, "A": true,
		"": false, "_foo": false, "-a": false, "a-": false, "a/": false, "/a": false, "a//b": false, "a---b": false,
		"a__b": false, "a.-b": false, "a b": false, "a\\b": false, "a/.b": false, strings.Repeat("a", 1025): false, strings.Repeat("a", 1024): true,
	} {
		if got := ValidLayoutTag(s); got != want {
			t.Errorf("ValidLayoutTag(%q) = %v, want %v", s, got, want)
		}
	}
}
