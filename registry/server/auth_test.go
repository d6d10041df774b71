package server

import (
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lading-oci/lading/registry/errcode"
	"golang.org/x/crypto/bcrypt"
)

func testUsers(t *testing.T) *Htpasswd {
	t.Helper()
	var lines []string
	for _, u := range [][2]string{{"alice", "wonderland"}, {"bob", "builder"}} {
		h, _ := bcrypt.GenerateFromPassword([]byte(u[1]), bcrypt.MinCost)
		lines = append(lines, u[0]+":"+string(h))
	}
	h, err := ParseHtpasswd(strings.NewReader(strings.Join(lines, "\n") + "\n# comment\n"))
	if err != nil {
		t.Fatal(err)
	}
	return h
}

var testPolicy = &Policy{Rules: []Rule{
	{Users: []string{"alice"}, Repositories: []string{"team/*"}, Actions: []string{"pull", "push", "delete"}},
	{Users: []string{"*"}, Repositories: []string{"*"}, Actions: []string{"pull"}},
}}

func TestBasicAuth(t *testing.T) {
	r := newTestRegistry(t, Options{Auth: &Auth{Users: testUsers(t), Policy: testPolicy, AnonymousPull: true}})
	expect(t, r.do("GET", "/v2/", nil, nil), 401, errcode.Unauthorized) // a challenge, so clients send credentials
	resp := r.do("POST", "/v2/team/a/blobs/uploads/", nil, nil)
	expect(t, resp, 401, errcode.Unauthorized)
	if !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Basic ") {
		t.Fatalf("challenge %q", resp.Header.Get("WWW-Authenticate"))
	}
	r.auth = [2]string{"alice", "wrong"}
	expect(t, r.do("POST", "/v2/team/a/blobs/uploads/", nil, nil), 401, errcode.Unauthorized)
	r.auth = [2]string{"nobody", "x"}
	expect(t, r.do("GET", "/v2/team/a/tags/list", nil, nil), 401, errcode.Unauthorized)
	r.auth = [2]string{"alice", "wonderland"}
	d := r.pushBlob("team/a", []byte("secret sauce"))
	expect(t, r.do("POST", "/v2/other/blobs/uploads/", nil, nil), 403, errcode.Denied)
	r.auth = [2]string{"bob", "builder"}
	expect(t, r.do("POST", "/v2/team/a/blobs/uploads/", nil, nil), 403, errcode.Denied)
	expect(t, r.do("DELETE", "/v2/team/a/blobs/"+string(d.Digest), nil, nil), 403, errcode.Denied)
	expect(t, r.do("GET", "/v2/team/a/blobs/"+string(d.Digest), nil, nil), 200, "")
	r.auth = [2]string{}
	expect(t, r.do("GET", "/v2/team/a/blobs/"+string(d.Digest), nil, nil), 200, "")
	expect(t, r.do("DELETE", "/v2/team/a/blobs/"+string(d.Digest), nil, nil), 401, errcode.Unauthorized)

	// Without anonymous pull, reading needs credentials too.
	r2 := newTestRegistry(t, Options{Auth: &Auth{Users: testUsers(t)}})
	expect(t, r2.do("GET", "/v2/", nil, nil), 401, errcode.Unauthorized)
	expect(t, r2.do("GET", "/v2/_catalog", nil, nil), 401, errcode.Unauthorized)
	r2.auth = [2]string{"bob", "builder"}
	expect(t, r2.do("GET", "/v2/", nil, nil), 200, "")
	r2.pushBlob("anything", []byte("x")) // no policy: users may do everything
}

func token(t *testing.T, r *testRegistry, user, pass, scope string) string {
	t.Helper()
	req, _ := http.NewRequest("GET", r.srv.URL+"/token?service=lading&scope="+scope, nil)
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tok struct {
		Token string `json:"token"`
	}
	if resp.StatusCode != 200 {
		return ""
	}
	json.NewDecoder(resp.Body).Decode(&tok)
	return tok.Token
}

func TestTokenAuth(t *testing.T) {
	r := newTestRegistry(t, Options{Auth: &Auth{Users: testUsers(t), Policy: testPolicy, AnonymousPull: true, TokenKey: []byte("k3y")}})
	resp := r.do("GET", "/v2/", nil, nil)
	expect(t, resp, 401, errcode.Unauthorized)
	ch := resp.Header.Get("WWW-Authenticate")
	if !strings.HasPrefix(ch, `Bearer realm="`+r.srv.URL+`/token",service="lading"`) {
		t.Fatalf("challenge %q", ch)
	}
	resp = r.do("POST", "/v2/team/a/blobs/uploads/", nil, nil)
	if ch := resp.Header.Get("WWW-Authenticate"); !strings.Contains(ch, `scope="repository:team/a:pull,push"`) {
		t.Fatalf("challenge %q", ch)
	}
	if tok := token(t, r, "alice", "bad", "repository:team/a:push"); tok != "" {
		t.Fatal("token issued for a wrong password")
	}
	tok := token(t, r, "alice", "wonderland", "repository:team/a:pull,push")
	bearer := hdr{"Authorization": "Bearer " + tok}
	expect(t, r.do("POST", "/v2/team/a/blobs/uploads/", nil, bearer), 202, "")
	// The token is for team/a only.
	expect(t, r.do("POST", "/v2/team/b/blobs/uploads/", nil, bearer), 401, errcode.Unauthorized)
	// bob's token carries no push: the policy does not grant it.
	btok := token(t, r, "bob", "builder", "repository:team/a:pull,push")
	expect(t, r.do("POST", "/v2/team/a/blobs/uploads/", nil, hdr{"Authorization": "Bearer " + btok}), 401, errcode.Unauthorized)
	expect(t, r.do("GET", "/v2/team/a/tags/list", nil, hdr{"Authorization": "Bearer " + btok}), 404, errcode.NameUnknown)
	// An anonymous token pulls.
	atok := token(t, r, "", "", "repository:team/a:pull,push")
	expect(t, r.do("GET", "/v2/team/a/tags/list", nil, hdr{"Authorization": "Bearer " + atok}), 404, "")
	expect(t, r.do("POST", "/v2/team/a/blobs/uploads/", nil, hdr{"Authorization": "Bearer " + atok}), 401, errcode.Unauthorized)
	// A forged token is refused.
	forged := tok[:len(tok)-2] + "xx"
	expect(t, r.do("POST", "/v2/team/a/blobs/uploads/", nil, hdr{"Authorization": "Bearer " + forged}), 401, errcode.Unauthorized)
}

// TestHtpasswdFromApache reads a file written by Apache's htpasswd -B, when
// it is installed.
func TestHtpasswdFromApache(t *testing.T) {
	bin, err := exec.LookPath("htpasswd")
	if err != nil {
		t.Skip("htpasswd (apache2-utils) is not installed")
	}
	path := filepath.Join(t.TempDir(), "htpasswd")
	if out, err := exec.Command(bin, "-Bbc", path, "carol", "s3cret").CombinedOutput(); err != nil {
		t.Fatalf("htpasswd: %v: %s", err, out)
	}
	h, err := LoadHtpasswd(path)
	if err != nil {
		t.Fatal(err)
	}
	if !h.Verify("carol", "s3cret") || h.Verify("carol", "S3cret") || h.Verify("dave", "s3cret") {
		t.Fatal("verification wrong")
	}
	// A file with another scheme is refused, naming the line.
	md5 := filepath.Join(t.TempDir(), "md5")
	exec.Command(bin, "-mbc", md5, "carol", "x").Run()
	if _, err := LoadHtpasswd(md5); err == nil || !strings.Contains(err.Error(), "bcrypt") {
		t.Fatalf("md5 htpasswd: %v", err)
	}
	os.Remove(md5)
}

func TestGlobMatch(t *testing.T) {
	for _, c := range []struct {
		p, n string
		ok   bool
	}{{"*", "a/b", true}, {"team/*", "team/a/b", true}, {"team/*", "teams/a", false}, {"a", "a", true}, {"a", "ab", false}, {"*/x", "a/b/x", true}, {"a*c", "abbbc", true}, {"a*c", "abbb", false}} {
		if globMatch(c.p, c.n) != c.ok {
			t.Errorf("globMatch(%q, %q) != %v", c.p, c.n, c.ok)
		}
	}
}

func FuzzHtpasswd(f *testing.F) {
	f.Add("alice:$2y$05$abcdefghijklmnopqrstuuu\n")
	f.Add("bad line\n")
	f.Fuzz(func(t *testing.T, data string) {
		h, err := ParseHtpasswd(strings.NewReader(data))
		if err != nil {
			return
		}
		for u, hash := range h.hashes {
			if u == "" || !strings.HasPrefix(string(hash), "$2") {
				t.Fatalf("accepted %q:%q", u, hash)
			}
		}
	})
}

func FuzzToken(f *testing.F) {
	a := &Auth{TokenKey: []byte("k")}
	f.Add(a.sign(tokenClaims{Subject: "x", Service: "lading", Expires: 1 << 40}))
	f.Add("e30.AAAA")
	f.Fuzz(func(t *testing.T, tok string) {
		c, ok := a.parseToken(tok)
		if ok && a.sign(*c) == "" {
			t.Fatal("accepted a token that does not re-sign")
		}
	})
}
