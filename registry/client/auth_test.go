package client

import (
	"context"
	"errors"
	"github.com/lading-oci/lading/internal/registrytest"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/lading-oci/lading/errdef"
	"github.com/lading-oci/lading/registry/credentials"
)

func staticCreds(c credentials.Credential) CredentialFunc {
	return func(context.Context, string) (credentials.Credential, error) { return c, nil }
}

// tokenRegistry starts distribution 2.8 behind a token server whose realm
// is reached at realmHost ("" for the token server's own 127.0.0.1 host).
func tokenRegistry(t *testing.T, realmHost string) (*registrytest.Registry, *tokenServer) {
	ts := newTokenServer(t)
	ts.Users["alice"] = "s3cret"
	ts.RefreshTokens["refresh-alice"] = "alice"
	reg := registrytest.Start(t, registrytest.Distribution28(t), ts.Config(realmHost))
	return reg, ts
}

func TestTokenAuth(t *testing.T) {
	reg, ts := tokenRegistry(t, "")
	ctx := context.Background()
	// The realm is on the token server's port, another host than the
	// registry's: allowed explicitly.
	realm := strings.TrimPrefix(ts.URL, "http://")
	c := newTestClient(t, WithCredentials(staticCreds(credentials.Credential{Username: "alice", Password: "s3cret"})),
		WithTokenRealms(reg.Host, realm))
	img := pushPull(t, c, reg.Host, "team/app")

	// One token per scope set, reused: the push scope for the pushes and
	// the pull scope for the reads.
	reqs := ts.requests()
	perScope := map[string]int{}
	for _, r := range reqs {
		if r.User != "alice" || r.Method != http.MethodGet {
			t.Errorf("token request %+v: want alice's GET", r)
		}
		perScope[strings.Join(r.Scopes, " ")]++
	}
	for s, n := range perScope {
		if n > 1 {
			t.Errorf("scope %q fetched %d times; tokens are cached", s, n)
		}
	}

	// A mount asks for both repositories in one token.
	other, _ := c.Repository(reg.Host, "team/other")
	if err := other.Mount(ctx, img.Layers[0], "team/app", nil); err != nil {
		t.Fatalf("mount: %v", err)
	}
	found := false
	for _, r := range ts.requests()[len(reqs):] {
		if slices.Contains(r.Scopes, "repository:team/app:pull") && slices.Contains(r.Scopes, "repository:team/other:pull,push") {
			found = true
		}
	}
	if !found {
		t.Errorf("no token request asked for both mount scopes: %+v", ts.requests()[len(reqs):])
	}
	if err := c.Ping(ctx, reg.Host); err != nil {
		t.Fatalf("ping: %v", err)
	}
	var repos []string
	if err := c.Catalog(ctx, reg.Host, func(p []string) error { repos = append(repos, p...); return nil }); err != nil {
		t.Fatalf("catalog: %v", err)
	}
	if !slices.Contains(repos, "team/app") {
		t.Fatalf("catalog = %v", repos)
	}
}

func TestTokenAuthIdentityToken(t *testing.T) {
	reg, ts := tokenRegistry(t, "")
	realm := strings.TrimPrefix(ts.URL, "http://")
	c := newTestClient(t, WithCredentials(staticCreds(credentials.Credential{IdentityToken: "refresh-alice"})), WithTokenRealms(reg.Host, realm))
	pushPull(t, c, reg.Host, "team/app")
	for _, r := range ts.requests() {
		if r.Method != http.MethodPost || r.Grant != "refresh_token" || r.User != "alice" {
			t.Errorf("token request %+v: want a refresh_token grant for alice", r)
		}
	}
}

func TestTokenAuthPasswordGrant(t *testing.T) {
	reg, ts := tokenRegistry(t, "")
	realm := strings.TrimPrefix(ts.URL, "http://")
	c := newTestClient(t, WithCredentials(staticCreds(credentials.Credential{Username: "alice", Password: "s3cret"})),
		WithTokenRealms(reg.Host, realm), WithPasswordGrant(""))
	pushPull(t, c, reg.Host, "team/app")
	reqs := ts.requests()
	if len(reqs) == 0 {
		t.Fatal("no token requests")
	}
	for _, r := range reqs {
		if r.Method != http.MethodPost || r.Grant != "password" || r.User != "alice" {
			t.Errorf("token request %+v: want a password grant for alice", r)
		}
	}
}

func TestTokenAuthFailures(t *testing.T) {
	reg, ts := tokenRegistry(t, "")
	realm := strings.TrimPrefix(ts.URL, "http://")
	ctx := context.Background()
	seed := newTestClient(t, WithCredentials(staticCreds(credentials.Credential{Username: "alice", Password: "s3cret"})), WithTokenRealms(reg.Host, realm))
	pushPull(t, seed, reg.Host, "team/app")

	t.Run("wrong password", func(t *testing.T) {
		c := newTestClient(t, WithCredentials(staticCreds(credentials.Credential{Username: "alice", Password: "nope"})), WithTokenRealms(reg.Host, realm))
		repo, _ := c.Repository(reg.Host, "team/app")
		_, err := repo.Resolve(ctx, "v1")
		var ae *AuthError
		if !errors.As(err, &ae) || !errors.Is(err, errdef.ErrUnauthorized) {
			t.Fatalf("resolve = %v, want an AuthError", err)
		}
		for _, want := range []string{reg.Host, "repository:team/app:pull", `user "alice"`, ts.URL + "/token", "bad credentials"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not say %q", err, want)
			}
		}
		if strings.Contains(err.Error(), "nope") {
			t.Errorf("error %q leaks the password", err)
		}
	})

	t.Run("realm on another host withheld", func(t *testing.T) {
		// The realm is named localhost, another host than 127.0.0.1:
		// without WithTokenRealms it does not get alice's password, and
		// the anonymous token is good for pulls only.
		ts2 := newTokenServer(t)
		ts2.Users["alice"] = "s3cret"
		port := ts2.URL[strings.LastIndexByte(ts2.URL, ':')+1:]
		reg2 := registrytest.Start(t, registrytest.Distribution28(t), ts2.Config("localhost:"+port))
		seed := newTestClient(t, WithCredentials(staticCreds(credentials.Credential{Username: "alice", Password: "s3cret"})),
			WithTokenRealms(reg2.Host, "localhost:"+port))
		pushPull(t, seed, reg2.Host, "team/app")
		seen := len(ts2.requests())

		c := newTestClient(t, WithCredentials(staticCreds(credentials.Credential{Username: "alice", Password: "s3cret"})))
		repo, _ := c.Repository(reg2.Host, "team/app")
		if _, err := repo.Resolve(ctx, "v1"); err != nil {
			t.Fatalf("anonymous pull: %v", err)
		}
		img := newTestImage(t, 1, 10)
		err := repo.Push(ctx, img.Layers[0], strings.NewReader(string(img.Blobs[img.Layers[0].Digest])))
		if !errors.Is(err, errdef.ErrUnauthorized) && !errors.Is(err, errdef.ErrDenied) {
			t.Fatalf("push with withheld credentials = %v, want an auth failure", err)
		}
		if !strings.Contains(err.Error(), "not sent to the token realm") || !strings.Contains(err.Error(), "WithTokenRealms") {
			t.Errorf("error %q does not say the credentials were withheld and how to allow them", err)
		}
		for _, r := range ts2.requests()[seen:] {
			if r.User != "" {
				t.Errorf("token request %+v carried credentials", r)
			}
		}
	})

	t.Run("denied", func(t *testing.T) {
		ts.mu.Lock()
		ts.Grant = func(user, repo string, asked []string) []string {
			if repo == "team/app" {
				return []string{"pull"}
			}
			return asked
		}
		ts.mu.Unlock()
		defer func() { ts.mu.Lock(); ts.Grant = nil; ts.mu.Unlock() }()
		c := newTestClient(t, WithCredentials(staticCreds(credentials.Credential{Username: "alice", Password: "s3cret"})), WithTokenRealms(reg.Host, realm))
		repo, _ := c.Repository(reg.Host, "team/app")
		img := newTestImage(t, 1, 10)
		err := repo.Push(ctx, img.Layers[0], strings.NewReader(string(img.Blobs[img.Layers[0].Digest])))
		var ae *AuthError
		if !errors.As(err, &ae) {
			t.Fatalf("push without push access = %v, want an AuthError", err)
		}
		if !strings.Contains(err.Error(), "repository:team/app:pull,push") {
			t.Errorf("error %q does not name the scope asked for", err)
		}
	})
}
