package client

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// tokenServer is a token server for a registry's auth.token config: it
// signs ES256 JWTs with a certificate the registry trusts (x5c header).
type tokenServer struct {
	*httptest.Server
	Service, Issuer string
	CertPath        string

	key  *ecdsa.PrivateKey
	cert []byte // DER

	mu sync.Mutex
	// Users maps user to password; RefreshTokens maps identity tokens to
	// users.
	Users         map[string]string
	RefreshTokens map[string]string
	// Grant decides the actions granted to user ("" anonymous) on a
	// repository; nil grants everything asked to users and pull to
	// anonymous.
	Grant func(user, repo string, asked []string) []string
	// Requests records each token request: method, user, scopes.
	Requests []tokenRequest
	// TTL is the expires_in handed out (seconds).
	TTL int
}

type tokenRequest struct {
	Method, Grant, User string
	Scopes              []string
}

func newTokenServer(t testing.TB) *tokenServer {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "lading test token signer"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	certPath := filepath.Join(t.TempDir(), "token.crt")
	if err := os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	ts := &tokenServer{Service: "lading-test-registry", Issuer: "lading-test-issuer", CertPath: certPath,
		key: key, cert: der, Users: map[string]string{}, RefreshTokens: map[string]string{}, TTL: 300}
	ts.Server = httptest.NewServer(http.HandlerFunc(ts.serve))
	t.Cleanup(ts.Close)
	return ts
}

// Config returns the registry's auth config for this token server, whose
// realm is reached at realmHost (the server's own host by default).
func (ts *tokenServer) Config(realmHost string) string {
	if realmHost == "" {
		realmHost = strings.TrimPrefix(ts.URL, "http://")
	}
	return fmt.Sprintf("auth:\n  token:\n    realm: http://%s/token\n    service: %s\n    issuer: %s\n    rootcertbundle: %s\n",
		realmHost, ts.Service, ts.Issuer, ts.CertPath)
}

func (ts *tokenServer) requests() []tokenRequest {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return append([]tokenRequest(nil), ts.Requests...)
}

func (ts *tokenServer) serve(w http.ResponseWriter, r *http.Request) {
	var user, grant string
	var scopes []string
	authenticated := false
	ts.mu.Lock()
	switch r.Method {
	case http.MethodGet:
		grant = "get"
		scopes = r.URL.Query()["scope"]
		if u, p, ok := r.BasicAuth(); ok {
			user = u
			if ts.Users[u] != p || p == "" {
				ts.mu.Unlock()
				http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]}`, http.StatusUnauthorized)
				return
			}
			authenticated = true
		}
	case http.MethodPost:
		if err := r.ParseForm(); err != nil {
			ts.mu.Unlock()
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		grant = r.PostForm.Get("grant_type")
		scopes = strings.Fields(r.PostForm.Get("scope"))
		switch grant {
		case "refresh_token":
			u, ok := ts.RefreshTokens[r.PostForm.Get("refresh_token")]
			if !ok {
				ts.mu.Unlock()
				http.Error(w, `{"error":"invalid_grant"}`, http.StatusUnauthorized)
				return
			}
			user, authenticated = u, true
		case "password":
			user = r.PostForm.Get("username")
			if ts.Users[user] != r.PostForm.Get("password") || user == "" {
				ts.mu.Unlock()
				http.Error(w, `{"error":"invalid_grant"}`, http.StatusUnauthorized)
				return
			}
			authenticated = true
		default:
			ts.mu.Unlock()
			http.Error(w, "unsupported grant", http.StatusBadRequest)
			return
		}
	}
	if !authenticated {
		user = ""
	}
	ts.Requests = append(ts.Requests, tokenRequest{Method: r.Method, Grant: grant, User: user, Scopes: scopes})
	grantFn, ttl := ts.Grant, ts.TTL
	ts.mu.Unlock()

	type access struct {
		Type    string   `json:"type"`
		Name    string   `json:"name"`
		Actions []string `json:"actions"`
	}
	accesses := []access{}
	for _, s := range scopes {
		parts := strings.Split(s, ":")
		if len(parts) < 3 {
			continue
		}
		typ, name, acts := parts[0], strings.Join(parts[1:len(parts)-1], ":"), strings.Split(parts[len(parts)-1], ",")
		var granted []string
		switch {
		case grantFn != nil:
			granted = grantFn(user, name, acts)
		case user != "":
			granted = acts
		default:
			for _, a := range acts {
				if a == "pull" {
					granted = append(granted, a)
				}
			}
		}
		accesses = append(accesses, access{Type: typ, Name: name, Actions: append([]string{}, granted...)})
	}
	now := time.Now()
	claims := map[string]any{
		"iss": ts.Issuer, "sub": user, "aud": ts.Service,
		"exp": now.Add(time.Duration(ttl) * time.Second).Unix(), "nbf": now.Add(-time.Minute).Unix(), "iat": now.Unix(),
		"jti": fmt.Sprint(now.UnixNano()), "access": accesses,
	}
	tok := ts.sign(claims)
	resp := map[string]any{"token": tok, "access_token": tok, "expires_in": ttl, "issued_at": now.UTC().Format(time.RFC3339)}
	if grant == "refresh_token" || grant == "password" {
		resp["refresh_token"] = r.PostForm.Get("refresh_token")
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(resp)
}

// sign makes an ES256 JWS with the certificate in x5c.
func (ts *tokenServer) sign(claims map[string]any) string {
	enc := base64.RawURLEncoding
	header, _ := json.Marshal(map[string]any{"typ": "JWT", "alg": "ES256", "x5c": []string{base64.StdEncoding.EncodeToString(ts.cert)}})
	body, _ := json.Marshal(claims)
	signing := enc.EncodeToString(header) + "." + enc.EncodeToString(body)
	sum := sha256.Sum256([]byte(signing))
	r, s, err := ecdsa.Sign(rand.Reader, ts.key, sum[:])
	if err != nil {
		panic(err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return signing + "." + enc.EncodeToString(sig)
}

// testImage is an image built in memory: an OCI manifest, its config and
// gzip tar layers.
type testImage struct {
	Manifest     ocispec.Descriptor
	ManifestData []byte
	Config       ocispec.Descriptor
	Layers       []ocispec.Descriptor
	Blobs        map[digest.Digest][]byte
}

// newTestImage builds an image of n layers, each a gzip tar holding one
// file of size random bytes.
func newTestImage(t testing.TB, n, size int) *testImage {
	t.Helper()
	img := &testImage{Blobs: map[digest.Digest][]byte{}}
	var diffIDs []digest.Digest
	for i := range n {
		data := make([]byte, size)
		rand.Read(data)
		var tarBuf bytes.Buffer
		tw := tar.NewWriter(&tarBuf)
		tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("file%d", i), Mode: 0o644, Size: int64(size), ModTime: time.Unix(0, 0), Typeflag: tar.TypeReg})
		tw.Write(data)
		tw.Close()
		diffIDs = append(diffIDs, digest.FromBytes(tarBuf.Bytes()))
		var gz bytes.Buffer
		zw := gzip.NewWriter(&gz)
		zw.Write(tarBuf.Bytes())
		zw.Close()
		img.Layers = append(img.Layers, img.add(ocispec.MediaTypeImageLayerGzip, gz.Bytes()))
	}
	cfg := ocispec.Image{Platform: ocispec.Platform{OS: "linux", Architecture: runtime.GOARCH},
		RootFS: ocispec.RootFS{Type: "layers", DiffIDs: diffIDs}}
	cfgData, _ := json.Marshal(cfg)
	img.Config = img.add(ocispec.MediaTypeImageConfig, cfgData)
	m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest, Config: img.Config, Layers: img.Layers}
	m.SchemaVersion = 2
	img.ManifestData, _ = json.Marshal(m)
	img.Manifest = ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromBytes(img.ManifestData), Size: int64(len(img.ManifestData))}
	return img
}

func (img *testImage) add(mt string, data []byte) ocispec.Descriptor {
	d := ocispec.Descriptor{MediaType: mt, Digest: digest.FromBytes(data), Size: int64(len(data))}
	img.Blobs[d.Digest] = data
	return d
}

// push uploads the image's blobs and manifest with tag.
func (img *testImage) push(t testing.TB, repo *Repository, tags ...string) {
	t.Helper()
	ctx := context.Background()
	for _, d := range append([]ocispec.Descriptor{img.Config}, img.Layers...) {
		if err := repo.Push(ctx, d, bytes.NewReader(img.Blobs[d.Digest])); err != nil {
			t.Fatalf("push %s: %v", d.Digest, err)
		}
	}
	if err := repo.PushManifest(ctx, img.Manifest, img.ManifestData, tags...); err != nil {
		t.Fatalf("push manifest: %v", err)
	}
}

// writeLayout writes the image as an OCI image layout in dir, tagged tag.
func (img *testImage) writeLayout(t testing.TB, dir, tag string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(dir, "blobs", "sha256"), 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(name string, data []byte) {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for d, data := range img.Blobs {
		write(filepath.Join("blobs", "sha256", d.Encoded()), data)
	}
	write(filepath.Join("blobs", "sha256", img.Manifest.Digest.Encoded()), img.ManifestData)
	m := img.Manifest
	m.Annotations = map[string]string{ocispec.AnnotationRefName: tag}
	idx := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{m}}
	idx.SchemaVersion = 2
	data, _ := json.Marshal(idx)
	write("index.json", data)
	write("oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`))
}

// newPlainClient is a client for loopback registries in plain HTTP.
func newTestClient(t testing.TB, opts ...Option) *Client {
	t.Helper()
	c, err := New(append([]Option{WithRetry(3, 10*time.Millisecond, 50*time.Millisecond)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func readAll(t testing.TB, f func() (io.ReadCloser, error)) []byte {
	t.Helper()
	rc, err := f()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func pemOf(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}
