// Package registrytest starts the registries that tests talk to: Debian's
// docker-registry (distribution 2.8) and distribution v3 (installed with go
// install into a cache under os.TempDir, keyed by version), on 127.0.0.1
// ports of their own, stopped when the test ends.
package registrytest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// Peers the tests run against: Debian's docker-registry (distribution 2.8)
// and distribution v3, installed with go install into a cache under
// os.TempDir keyed by version.

// DistributionV3Version is the distribution v3 release the tests use.
const DistributionV3Version = "v3.1.2"

// Distribution28 returns the path of Debian's docker-registry, skipping the
// test when it is not installed.
func Distribution28(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("docker-registry")
	if err != nil {
		t.Skip("docker-registry (Debian package docker-registry, distribution 2.8) is not installed")
	}
	return p
}

var v3Once struct {
	sync.Mutex
	path string
	err  error
}

// DistributionV3 installs distribution v3's registry with go install (once,
// cached under os.TempDir) and returns its path. It skips the test only
// when the install fails (offline).
func DistributionV3(t testing.TB) string {
	t.Helper()
	v3Once.Lock()
	defer v3Once.Unlock()
	if v3Once.path == "" && v3Once.err == nil {
		dir := filepath.Join(os.TempDir(), "lading-peers", "distribution-"+DistributionV3Version)
		bin := filepath.Join(dir, "registry")
		if _, err := os.Stat(bin); err != nil {
			// A cold build compiles the cloud storage drivers too: minutes.
			// Stay inside go test's own timeout.
			ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, "go", "install", "github.com/distribution/distribution/v3/cmd/registry@"+DistributionV3Version)
			cmd.Env = append(os.Environ(), "GOBIN="+dir, "GOFLAGS=-mod=mod")
			out, err := cmd.CombinedOutput()
			if err != nil {
				v3Once.err = fmt.Errorf("go install distribution %s (install it ahead with GOBIN=%s): %v\n%s", DistributionV3Version, dir, err, out)
			}
		}
		if v3Once.err == nil {
			v3Once.path = bin
		}
	}
	if v3Once.err != nil {
		t.Skipf("distribution v3 is not available: %v", v3Once.err)
	}
	return v3Once.path
}

// FreePort returns a port on 127.0.0.1 that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Registry is a registry process started for one test.
type Registry struct {
	Host string // 127.0.0.1:PORT
	Dir  string // its storage
}

// Start runs bin (a distribution registry) with filesystem storage
// in a temporary directory, deletes enabled, and authConfig (YAML under
// "auth:", or ""). It stops when the test ends.
func Start(t testing.TB, bin, authConfig string) *Registry {
	t.Helper()
	dir := t.TempDir()
attempts:
	for attempt := 0; ; attempt++ {
		port := FreePort(t)
		host := fmt.Sprintf("127.0.0.1:%d", port)
		cfg := fmt.Sprintf(`version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: %s
  secret: lading-test-secret
%s`, filepath.Join(dir, "data"), host, authConfig)
		cfgPath := filepath.Join(dir, "config.yml")
		if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
		logf, err := os.Create(filepath.Join(dir, "registry.log"))
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(bin, "serve", cfgPath)
		cmd.Stdout, cmd.Stderr = logf, logf
		cmd.Env = append(os.Environ(), "OTEL_TRACES_EXPORTER=none")
		if err := cmd.Start(); err != nil {
			t.Fatalf("start %s: %v", bin, err)
		}
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		t.Cleanup(func() {
			cmd.Process.Kill()
			<-done
			logf.Close()
		})
		deadline := time.Now().Add(20 * time.Second)
		for time.Now().Before(deadline) {
			select {
			case <-done:
				log, _ := os.ReadFile(logf.Name())
				if attempt < 2 && bytes.Contains(log, []byte("address already in use")) {
					continue attempts
				}
				t.Fatalf("%s exited: %s", bin, log)
			default:
			}
			if resp, err := http.Get("http://" + host + "/v2/"); err == nil {
				resp.Body.Close()
				return &Registry{Host: host, Dir: dir}
			}
			time.Sleep(30 * time.Millisecond)
		}
		t.Fatalf("%s did not answer on %s", bin, host)
	}
}

// HtpasswdConfig writes an htpasswd file for user:pass (with apache2-utils'
// htpasswd, bcrypt) and returns the auth config for it.
func HtpasswdConfig(t testing.TB, user, pass string) string {
	t.Helper()
	bin, err := exec.LookPath("htpasswd")
	if err != nil {
		t.Skip("htpasswd (Debian package apache2-utils) is not installed")
	}
	out, err := exec.Command(bin, "-Bbn", user, pass).Output()
	if err != nil {
		t.Fatalf("htpasswd: %v", err)
	}
	path := filepath.Join(t.TempDir(), "htpasswd")
	if err := os.WriteFile(path, bytes.TrimSpace(out), 0o600); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("auth:\n  htpasswd:\n    realm: lading-test\n    path: %s\n", path)
}
