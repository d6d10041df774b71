package main

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lading-oci/lading/errdef"
)

// htpasswdRegistry starts distribution's registry (docker-registry) on a
// loopback port with basic authentication for user:password, and returns
// its host:port. It stops with the test.
func htpasswdRegistry(t *testing.T, user, password string) string {
	t.Helper()
	registry, err := exec.LookPath("docker-registry")
	if err != nil {
		t.Skip("docker-registry is not installed; skipping the login test against a registry")
	}
	htpasswd, err := exec.LookPath("htpasswd")
	if err != nil {
		t.Skip("htpasswd (apache2-utils) is not installed; skipping the login test against a registry")
	}
	dir := t.TempDir()
	out, err := exec.Command(htpasswd, "-Bbn", user, password).Output()
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "htpasswd"), out, 0o600)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	config := fmt.Sprintf(`version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: %s
http:
  addr: %s
auth:
  htpasswd:
    realm: lading-test
    path: %s
`, filepath.Join(dir, "data"), addr, filepath.Join(dir, "htpasswd"))
	os.WriteFile(filepath.Join(dir, "config.yml"), []byte(config), 0o600)
	cmd := exec.Command(registry, "serve", filepath.Join(dir, "config.yml"))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	for i := 0; ; i++ {
		resp, err := http.Get("http://" + addr + "/v2/")
		if err == nil {
			resp.Body.Close()
			break
		}
		if i > 100 {
			t.Fatalf("registry did not start on %s: %v", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return addr
}

func readConfig(t *testing.T, dir string) map[string]any {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]any
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestLoginLogoutRegistry(t *testing.T) {
	host := htpasswdRegistry(t, "alice", "s3cret")
	dir := t.TempDir()
	t.Setenv("DOCKER_CONFIG", dir)
	t.Setenv("DOCKER_AUTH_CONFIG", "")

	_, _, err := ladingErr(t, strings.NewReader("wrong\n"), "login", "--username", "alice", "--password-stdin", host)
	if !errors.Is(err, errdef.ErrUnauthorized) {
		t.Fatalf("login with a wrong password: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "config.json")); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("a failed login wrote config.json")
	}
	out, _, err := ladingErr(t, strings.NewReader("s3cret\n"), "login", "-u", "alice", "--password-stdin", host)
	if err != nil || !strings.Contains(out, "Login Succeeded") {
		t.Fatalf("login: %q %v", out, err)
	}
	auths := readConfig(t, dir)["auths"].(map[string]any)
	entry, ok := auths[host].(map[string]any)
	if !ok || entry["auth"] != base64.StdEncoding.EncodeToString([]byte("alice:s3cret")) {
		t.Fatalf("config.json auths: %v", auths)
	}
	if fi, _ := os.Stat(filepath.Join(dir, "config.json")); fi.Mode().Perm() != 0o600 {
		t.Fatalf("config.json mode %v", fi.Mode())
	}
	out = lading(t, "logout", host)
	if !strings.Contains(out, "Removing login credentials for "+host) {
		t.Fatalf("logout: %q", out)
	}
	if auths := readConfig(t, dir)["auths"].(map[string]any); len(auths) != 0 {
		t.Fatalf("after logout: %v", auths)
	}
	if _, _, err := ladingErr(t, nil, "logout", host); !errors.Is(err, errdef.ErrNotFound) {
		t.Fatalf("second logout: %v", err)
	}
	// Without a host, logout is from Docker Hub, under docker's key.
	os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"auths":{"https://index.docker.io/v1/":{"auth":"dTpw"}}}`), 0o600)
	if out := lading(t, "logout"); !strings.Contains(out, "docker.io") {
		t.Fatalf("logout: %q", out)
	}
	if auths := readConfig(t, dir)["auths"].(map[string]any); len(auths) != 0 {
		t.Fatalf("after logout from Docker Hub: %v", auths)
	}
}

func TestLoginBearerChallenge(t *testing.T) {
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v2/":
			if r.Header.Get("Authorization") == "Bearer abc" {
				return
			}
			w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="%s/token",service="test-registry"`, srv.URL))
			w.WriteHeader(http.StatusUnauthorized)
		case "/token":
			u, p, ok := r.BasicAuth()
			if !ok || u != "bob" || p != "tok3n" || r.URL.Query().Get("service") != "test-registry" {
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			fmt.Fprint(w, `{"token":"abc"}`)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	dir := t.TempDir()
	t.Setenv("DOCKER_CONFIG", dir)
	t.Setenv("DOCKER_AUTH_CONFIG", "")
	if _, _, err := ladingErr(t, strings.NewReader("nope"), "login", "-u", "bob", "--password-stdin", "--plain-http", host); !errors.Is(err, errdef.ErrUnauthorized) {
		t.Fatalf("wrong token password: %v", err)
	}
	if _, stderr, err := ladingErr(t, strings.NewReader("tok3n"), "login", "-u", "bob", "--password-stdin", "--plain-http", host); err != nil {
		t.Fatalf("login: %v %s", err, stderr)
	}
	auths := readConfig(t, dir)["auths"].(map[string]any)
	if _, ok := auths[host]; !ok {
		t.Fatalf("auths %v", auths)
	}
}

func TestLoginArguments(t *testing.T) {
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	for _, args := range [][]string{
		{"login", "--password-stdin", "example.com"},
		{"login", "-u", "x", "-p", "y", "--password-stdin", "example.com"},
		{"login", "-u", "x", "example.com"}, // no terminal to ask on
		{"login", "-u", "x", "--password-stdin", "https://"},
	} {
		if _, _, err := ladingErr(t, strings.NewReader("pw"), args...); !errors.Is(err, errdef.ErrInvalid) {
			t.Errorf("%v: %v", args, err)
		}
	}
	// A registry that cannot be reached is reported as such, and nothing is kept.
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l.Addr().String()
	l.Close()
	if _, _, err := ladingErr(t, strings.NewReader("pw"), "login", "-u", "x", "--password-stdin", addr); !errors.Is(err, errdef.ErrUnavailable) {
		t.Errorf("unreachable registry: %v", err)
	}
}
