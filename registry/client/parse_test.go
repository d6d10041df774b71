package client

import (
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
)

func TestParseChallenges(t *testing.T) {
	tests := []struct {
		in   []string
		want []Challenge
	}{
		{[]string{`Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull"`},
			[]Challenge{{"bearer", map[string]string{"realm": "https://auth.docker.io/token", "service": "registry.docker.io", "scope": "repository:library/alpine:pull"}}}},
		// Multi-scope, quoted commas, escaped quotes, odd spacing and case.
		{[]string{`BEARER Realm = "https://r/t?a=1,b=2" , scope="repository:a:pull,push repository:b:pull", error="insufficient_scope", note="say \"hi\""`},
			[]Challenge{{"bearer", map[string]string{"realm": "https://r/t?a=1,b=2", "scope": "repository:a:pull,push repository:b:pull", "error": "insufficient_scope", "note": `say "hi"`}}}},
		// Several challenges in one header and across headers.
		{[]string{`Basic realm="Registry Realm", Bearer realm="https://x/token",service=x`, `Negotiate abc==`},
			[]Challenge{
				{"basic", map[string]string{"realm": "Registry Realm"}},
				{"bearer", map[string]string{"realm": "https://x/token", "service": "x"}},
				{"negotiate", map[string]string{"abc": ""}},
			}},
		{[]string{`Basic`}, []Challenge{{"basic", map[string]string{}}}},
		{[]string{``, `,,,`}, nil},
		// An unterminated quote ends the parse.
		{[]string{`Bearer realm="https://x`}, []Challenge{{"bearer", map[string]string{}}}},
	}
	for _, tc := range tests {
		got := ParseChallenges(tc.in)
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ParseChallenges(%q)\n got %+v\nwant %+v", tc.in, got, tc.want)
		}
	}
	ch := ParseChallenges([]string{`Bearer realm="r",scope="repository:a:pull repository:b:push"`})[0]
	if got := ch.Scopes(); !slices.Equal(got, []string{"repository:a:pull", "repository:b:push"}) {
		t.Errorf("Scopes() = %q", got)
	}
	if pickChallenge(ParseChallenges([]string{`Basic realm=x, Bearer realm="y"`})).Scheme != "bearer" {
		t.Error("bearer not preferred to basic")
	}
	if pickChallenge(ParseChallenges([]string{`Negotiate x`})) != nil {
		t.Error("an unsupported scheme picked")
	}
}

func TestMergeScopes(t *testing.T) {
	got := mergeScopes([]string{"repository:b:push", "repository:a:pull"}, []string{"repository:b:pull", "registry:catalog:*", "repository:b:push"})
	want := []string{"registry:catalog:*", "repository:a:pull", "repository:b:pull,push"}
	if !slices.Equal(got, want) {
		t.Errorf("mergeScopes = %q, want %q", got, want)
	}
}

func TestNextLink(t *testing.T) {
	base, _ := url.Parse("https://r.example/v2/a/tags/list?n=2")
	tests := []struct {
		in   []string
		want string
	}{
		{[]string{`</v2/a/tags/list?n=2&last=b>; rel="next"`}, "https://r.example/v2/a/tags/list?n=2&last=b"},
		{[]string{`<https://other/v2/x?last=1>; rel=next`}, "https://other/v2/x?last=1"},
		{[]string{`</prev>; rel="prev", </next?a=1,2>; rel="next"; title="page, 2"`}, "https://r.example/next?a=1,2"},
		{[]string{`</a>; rel="prev"`, `</b>; rel="first next"`}, "https://r.example/b"},
		{[]string{`</a>; rel="prev"`}, ""},
		{[]string{`garbage`, ``}, ""},
		{[]string{`</a>; title="unterminated`}, ""},
	}
	for _, tc := range tests {
		got := NextLink(base, tc.in)
		s := ""
		if got != nil {
			s = got.String()
		}
		if s != tc.want {
			t.Errorf("NextLink(%q) = %q, want %q", tc.in, s, tc.want)
		}
	}
}

func TestRangeHeaders(t *testing.T) {
	if n, ok := rangeEnd("0-99"); !ok || n != 99 {
		t.Errorf("rangeEnd(0-99) = %d, %v", n, ok)
	}
	if n, ok := rangeEnd("bytes=0-5"); !ok || n != 5 {
		t.Errorf("rangeEnd(bytes=0-5) = %d, %v", n, ok)
	}
	if _, ok := rangeEnd("nonsense"); ok {
		t.Error("rangeEnd accepted nonsense")
	}
	if n, ok := rangeStart("bytes 100-199/200"); !ok || n != 100 {
		t.Errorf("rangeStart = %d, %v", n, ok)
	}
}

func FuzzParseChallenges(f *testing.F) {
	for _, s := range []string{
		`Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull"`,
		`Basic realm="x", Bearer realm=y,scope="a b"`, `Negotiate abc==`, `Bearer realm="\"q\\"`, `,=,"`, `Bearer realm="x`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		chs := ParseChallenges([]string{s})
		for _, ch := range chs {
			if ch.Scheme == "" || strings.ToLower(ch.Scheme) != ch.Scheme {
				t.Fatalf("scheme %q", ch.Scheme)
			}
			for k := range ch.Params {
				if k == "" || strings.ToLower(k) != k {
					t.Fatalf("param name %q", k)
				}
			}
		}
		// Re-serialised, a parsed challenge parses the same.
		for _, ch := range chs {
			var b strings.Builder
			b.WriteString(ch.Scheme)
			keys := make([]string, 0, len(ch.Params))
			for k := range ch.Params {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			for i, k := range keys {
				if i == 0 {
					b.WriteString(" ")
				} else {
					b.WriteString(", ")
				}
				b.WriteString(k + `="` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(ch.Params[k]) + `"`)
			}
			again := ParseChallenges([]string{b.String()})
			if len(again) != 1 || !reflect.DeepEqual(again[0], ch) {
				t.Fatalf("%q: parsed %+v, re-serialised %q, parsed %+v", s, ch, b.String(), again)
			}
		}
	})
}

func FuzzNextLink(f *testing.F) {
	for _, s := range []string{`</v2/a/tags/list?n=2&last=b>; rel="next"`, `</a>; rel="prev", </b>; rel=next`, `<>; rel="next"`, `<x`, `;;,<`} {
		f.Add(s)
	}
	base, _ := url.Parse("https://r.example/v2/a/tags/list")
	f.Fuzz(func(t *testing.T, s string) {
		u := NextLink(base, []string{s})
		if u == nil {
			return
		}
		if u.Scheme == "" && u.Host == "" && !strings.HasPrefix(u.Path, "/") && u.Path != "" {
			t.Fatalf("%q: resolved link %q is not absolute", s, u)
		}
		// The link is one of the header's <...> targets.
		if !strings.Contains(s, "<") {
			t.Fatalf("%q: link %q from a header without a target", s, u)
		}
	})
}

// FuzzSmallHeaders covers the other header parsers: Retry-After, Range and
// Content-Range, and the referrers tag of any digest string.
func FuzzSmallHeaders(f *testing.F) {
	for _, s := range []string{"0", "120", "Wed, 21 Oct 2015 07:28:00 GMT", "0-99", "bytes=0-5", "bytes 100-199/200", "-1", "sha256:abc", "a+b:c=d"} {
		f.Add(s)
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		if d, ok := retryAfter(s, now); ok && d < 0 {
			t.Fatalf("retryAfter(%q) = %v", s, d)
		}
		if n, ok := rangeEnd(s); ok && n < 0 {
			t.Fatalf("rangeEnd(%q) = %d", s, n)
		}
		if n, ok := rangeStart(s); ok && n < 0 && !strings.HasPrefix(strings.TrimSpace(s), "bytes -") {
			t.Fatalf("rangeStart(%q) = %d", s, n)
		}
		tag := ReferrersTag(digest.Digest(s))
		if len(tag) > 32+1+64 {
			t.Fatalf("ReferrersTag(%q) = %q: longer than the schema allows", s, tag)
		}
		if digest.Digest(s).Validate() == nil && !anchoredTag.MatchString(tag) {
			t.Fatalf("ReferrersTag(%q) = %q: not a valid tag", s, tag)
		}
	})
}
