package main

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/crypto/bcrypt"
)

// buildLading builds the lading binary for tests that run it as a child
// process.
func buildLading(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "lading-serve-test-")
		if err != nil {
			buildErr = err
			return
		}
		builtBin = filepath.Join(dir, "lading")
		if out, err := exec.Command("go", "build", "-o", builtBin, ".").CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	bin := filepath.Join(t.TempDir(), "lading")
	if err := os.Link(builtBin, bin); err != nil {
		data, _ := os.ReadFile(builtBin)
		os.WriteFile(bin, data, 0o755)
	}
	return bin
}

var (
	buildOnce sync.Once
	builtBin  string
	buildErr  error
)

// startServe runs `lading serve` on a free port and returns its base URL.
func startServe(t *testing.T, bin string, args ...string) (*exec.Cmd, string) {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"serve", "--addr", "127.0.0.1:0", "--log-level", "warn"}, args...)...)
	stdout, _ := cmd.StdoutPipe()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("lading serve did not start: %v\n%s", err, stderr.String())
	}
	url := strings.TrimSpace(strings.TrimPrefix(line, "listening on "))
	go io.Copy(io.Discard, stdout)
	return cmd, url
}

func httpDo(t *testing.T, method, url string, body []byte, h map[string]string) (*http.Response, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, _ := http.NewRequest(method, url, rd)
	for k, v := range h {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// TestServeCrash kills the server (SIGKILL) while clients push, starts it
// again on the same root, checks every repository with `lading verify`, and
// finishes the interrupted uploads where they stopped.
func TestServeCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildLading(t)
	root := filepath.Join(t.TempDir(), "root")
	cmd, url := startServe(t, bin, "--root", root)

	const clients = 4
	const chunk = 256 << 10
	type upload struct {
		repo, loc string
		data      []byte
	}
	var mu sync.Mutex
	var open []upload
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			repo := fmt.Sprintf("crash/c%d", c)
			for i := 0; ; i++ {
				data := make([]byte, 16*chunk)
				rand.Read(data)
				resp, _ := httpDo(t, "POST", url+"/v2/"+repo+"/blobs/uploads/", nil, nil)
				if resp == nil {
					return
				}
				u := upload{repo: repo, loc: resp.Header.Get("Location"), data: data}
				mu.Lock()
				open = append(open, u)
				mu.Unlock()
				for off := 0; off < len(data); off += chunk {
					select {
					case <-stop:
						return
					default:
					}
					resp, _ := httpDo(t, "PATCH", url+u.loc, data[off:off+chunk], map[string]string{"Content-Range": fmt.Sprintf("%d-%d", off, off+chunk-1)})
					if resp == nil {
						return
					}
				}
				resp, _ = httpDo(t, "PUT", url+u.loc+"?digest="+string(digest.FromBytes(data)), nil, nil)
				if resp == nil {
					return
				}
				mu.Lock()
				open = open[:len(open)-1]
				mu.Unlock()
				cfg := []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["` + string(digest.FromString("x")) + `"]}}`)
				resp, _ = httpDo(t, "POST", url+"/v2/"+repo+"/blobs/uploads/?digest="+string(digest.FromBytes(cfg)), cfg, nil)
				if resp == nil {
					return
				}
				m, _ := json.Marshal(ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest,
					Config: ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: digest.FromBytes(cfg), Size: int64(len(cfg))},
					Layers: []ocispec.Descriptor{{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: digest.FromBytes(data), Size: int64(len(data))}}})
				if resp, _ := httpDo(t, "PUT", url+"/v2/"+repo+"/manifests/v"+fmt.Sprint(i), m, map[string]string{"Content-Type": ocispec.MediaTypeImageManifest}); resp == nil {
					return
				}
			}
		}()
	}
	// One upload certainly in flight: three chunks sent, the rest to come.
	held := upload{repo: "crash/held", data: make([]byte, 8*chunk)}
	rand.Read(held.data)
	resp, _ := httpDo(t, "POST", url+"/v2/crash/held/blobs/uploads/", nil, nil)
	held.loc = resp.Header.Get("Location")
	for off := 0; off < 3*chunk; off += chunk {
		httpDo(t, "PATCH", url+held.loc, held.data[off:off+chunk], map[string]string{"Content-Range": fmt.Sprintf("%d-%d", off, off+chunk-1)})
	}
	mu.Lock()
	open = append(open, held)
	mu.Unlock()
	time.Sleep(1500 * time.Millisecond)
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	close(stop)
	wg.Wait()

	_, url = startServe(t, bin, "--root", root)
	ents, _ := filepath.Glob(filepath.Join(root, "crash", "*", "oci-layout"))
	if len(ents) == 0 {
		t.Fatal("no repository was created before the kill")
	}
	for _, e := range ents {
		dir := filepath.Dir(e)
		out, err := exec.Command(bin, "verify", dir).CombinedOutput()
		if err != nil {
			t.Fatalf("lading verify %s: %v\n%s", dir, err, out)
		}
	}
	if len(open) == 0 {
		t.Fatal("no upload was in flight at the kill")
	}
	for _, u := range open {
		blobURL := url + "/v2/" + u.repo + "/blobs/" + string(digest.FromBytes(u.data))
		resp, body := httpDo(t, "GET", url+u.loc, nil, nil)
		if resp != nil && resp.StatusCode == http.StatusNotFound {
			// The server finished this upload before the kill, but its
			// answer never reached the client: the blob must be whole.
			if _, got := httpDo(t, "GET", blobURL, nil, nil); !bytes.Equal(got, u.data) {
				t.Fatalf("upload %s is gone but its blob is not whole", u.loc)
			}
			continue
		}
		if resp == nil || resp.StatusCode != http.StatusNoContent {
			t.Fatalf("upload %s after restart: %v %s", u.loc, resp, body)
		}
		var end int64
		fmt.Sscanf(resp.Header.Get("Range"), "0-%d", &end)
		next := end + 1
		if resp.Header.Get("Range") == "0-0" {
			next = 0 // nothing arrived, or one byte: ask again from the start
		}
		if next%chunk != 0 && next != 0 {
			// A chunk cut off mid-way: the session kept what arrived.
			t.Logf("upload %s resumed mid-chunk at %d", u.loc, next)
		}
		h := map[string]string{"Content-Range": fmt.Sprintf("%d-%d", next, len(u.data)-1)}
		if next == int64(len(u.data)) {
			h = nil // every chunk arrived; only the PUT was lost
		}
		resp, body = httpDo(t, "PUT", url+u.loc+"?digest="+string(digest.FromBytes(u.data)), u.data[next:], h)
		if resp == nil || resp.StatusCode != http.StatusCreated {
			t.Fatalf("finishing %s from %d: %v %s", u.loc, next, resp, body)
		}
		_, got := httpDo(t, "GET", blobURL, nil, nil)
		if !bytes.Equal(got, u.data) {
			t.Fatalf("resumed blob differs")
		}
	}
	for _, e := range ents {
		if out, err := exec.Command(bin, "verify", filepath.Dir(e)).CombinedOutput(); err != nil {
			t.Fatalf("lading verify after resuming: %v\n%s", err, out)
		}
	}
}

// TestServeGCAndShutdown: `lading serve gc` goes through a running server;
// SIGTERM stops the server cleanly; afterwards gc runs on its own.
func TestServeGCAndShutdown(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildLading(t)
	root := filepath.Join(t.TempDir(), "root")
	cmd, url := startServe(t, bin, "--root", root)
	data := []byte("garbage soon")
	resp, _ := httpDo(t, "POST", url+"/v2/g/blobs/uploads/?digest="+string(digest.FromBytes(data)), data, nil)
	if resp == nil || resp.StatusCode != 201 {
		t.Fatalf("push: %v", resp)
	}
	out, err := exec.Command(bin, "serve", "gc", "--root", root, "--grace", "0", "--format", "json").CombinedOutput()
	if err != nil {
		t.Fatalf("serve gc beside a server: %v\n%s", err, out)
	}
	var rep struct{ Repositories, Kept int }
	json.Unmarshal(out, &rep)
	if rep.Repositories != 1 || rep.Kept != 1 { // the pushed blob is pinned
		t.Fatalf("gc report: %s", out)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("server exit after SIGTERM: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("server did not stop on SIGTERM")
	}
	out, err = exec.Command(bin, "serve", "gc", "--root", root, "--grace", "0").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "1 repositories") {
		t.Fatalf("serve gc alone: %v\n%s", err, out)
	}
}

func TestServeConfig(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	os.WriteFile(good, []byte("addr: 127.0.0.1:6000\nroot: /srv/reg\ngc:\n  interval: 1h\n  grace: 0s\nauth:\n  anonymousPull: true\n"), 0o644)
	c, err := loadServeConfig(good)
	if err != nil || c.Addr != "127.0.0.1:6000" || c.Root != "/srv/reg" || c.GC.Interval != time.Hour || c.GC.Grace != 0 || !c.Auth.AnonymousPull {
		t.Fatalf("config: %+v, %v", c, err)
	}
	if c.Limits.ReadHeaderTimeout == 0 {
		t.Fatal("defaults lost")
	}
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("adress: x\n"), 0o644)
	if _, err := loadServeConfig(bad); err == nil || !strings.Contains(err.Error(), "adress") {
		t.Fatalf("misspelt key: %v", err)
	}
	// Flags win over the file.
	cmd := newServeCmd(&rootOptions{})
	cmd.Flags().Parse([]string{"--addr", "127.0.0.1:7000"})
	var flags serveConfig
	flags.Addr = "127.0.0.1:7000"
	applyServeFlags(cmd, &c, &flags)
	if c.Addr != "127.0.0.1:7000" || c.Root != "/srv/reg" {
		t.Fatalf("after flags: %+v", c)
	}
}

// TestMain removes the binary the serve tests built.
func TestMain(m *testing.M) {
	code := m.Run()
	if builtBin != "" {
		os.RemoveAll(filepath.Dir(builtBin))
	}
	os.Exit(code)
}

// selfSigned writes a certificate and key for 127.0.0.1.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)
	return certFile, keyFile
}

// TestServeWithLadingClient: lading's own client pushes to and pulls from
// `lading serve` over TLS with basic auth; the storage is read back with
// lading ls and lading verify.
func TestServeWithLadingClient(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildLading(t)
	dir := t.TempDir()
	cert, key := selfSigned(t, dir)
	hash, _ := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	htpasswd := filepath.Join(dir, "htpasswd")
	os.WriteFile(htpasswd, []byte("ci:"+string(hash)+"\n"), 0o600)
	root := filepath.Join(dir, "root")
	_, url := startServe(t, bin, "--root", root, "--tls-cert", cert, "--tls-key", key, "--htpasswd", htpasswd, "--anonymous-pull")
	if !strings.HasPrefix(url, "https://") {
		t.Fatalf("served at %s", url)
	}
	host := strings.TrimPrefix(url, "https://")
	env := append(os.Environ(), "HOME="+dir, "DOCKER_CONFIG="+filepath.Join(dir, ".docker"))
	lad := func(stdin string, args ...string) (string, error) {
		cmd := exec.Command(bin, args...)
		cmd.Env = env
		cmd.Stdin = strings.NewReader(stdin)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	src := filepath.Join(dir, "src")
	os.MkdirAll(src, 0o755)
	os.WriteFile(filepath.Join(src, "hello"), []byte("hi\n"), 0o644)
	if out, err := lad("", "build", src, "-t", "oci:"+filepath.Join(dir, "layout")+":v1"); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	if out, err := lad("wrong", "copy", "--tls-skip-verify", "--username", "ci", "--password-stdin", "oci:"+filepath.Join(dir, "layout")+":v1", host+"/e2e/app:v1"); err == nil {
		t.Fatalf("push with a wrong password accepted: %s", out)
	}
	if out, err := lad("", "copy", "--tls-skip-verify", "oci:"+filepath.Join(dir, "layout")+":v1", host+"/e2e/app:v1"); err == nil {
		t.Fatalf("anonymous push accepted: %s", out)
	}
	if out, err := lad("pw", "copy", "--tls-skip-verify", "--username", "ci", "--password-stdin", "oci:"+filepath.Join(dir, "layout")+":v1", host+"/e2e/app:v1"); err != nil {
		t.Fatalf("push: %v\n%s", err, out)
	}
	if out, err := lad("", "copy", "--tls-skip-verify", host+"/e2e/app:v1", "oci:"+filepath.Join(dir, "pulled")+":v1"); err != nil {
		t.Fatalf("anonymous pull: %v\n%s", err, out)
	}
	if out, err := lad("pw", "catalog", "--tls-skip-verify", "--username", "ci", "--password-stdin", host); err != nil || !strings.Contains(out, "e2e/app") {
		t.Fatalf("catalog: %v\n%s", err, out)
	}
	if out, err := lad("", "ls", filepath.Join(root, "e2e/app")); err != nil || !strings.Contains(out, "v1") {
		t.Fatalf("lading ls on the storage: %v\n%s", err, out)
	}
	if out, err := lad("", "verify", filepath.Join(root, "e2e/app")); err != nil {
		t.Fatalf("lading verify on the storage: %v\n%s", err, out)
	}
}

// TestServeLongRoot: a root too deep for a unix socket's path still
// serves (without the admin socket).
func TestServeLongRoot(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildLading(t)
	root := filepath.Join(t.TempDir(), strings.Repeat("d", 60), strings.Repeat("e", 60))
	_, url := startServe(t, bin, "--root", root)
	if resp, _ := httpDo(t, "GET", url+"/v2/", nil, nil); resp == nil || resp.StatusCode != 200 {
		t.Fatalf("GET /v2/: %v", resp)
	}
}
