package credentials_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/lading-oci/lading/errdef"
	"github.com/lading-oci/lading/registry/credentials"
)

// fakeHelpers puts credential helpers on a fresh PATH:
// docker-credential-test keeps credentials in files beside it, -broken
// fails with a message on stderr, -garbage prints something that is not
// JSON. It returns the helpers' directory.
func fakeHelpers(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	scripts := map[string]string{
		"test": `#!/bin/sh
db="$(dirname "$0")/db"
mkdir -p "$db"
name() { printf %s "$1" | od -An -tx1 | tr -d ' \n'; }
case "$1" in
get)
	url=$(cat)
	f="$db/$(name "$url")"
	if [ -f "$f" ]; then cat "$f"; else echo "credentials not found in native keychain"; exit 1; fi ;;
store)
	json=$(cat)
	url=$(printf %s "$json" | sed -n 's/.*"ServerURL":"\([^"]*\)".*/\1/p')
	[ -n "$url" ] || { echo "no credentials server URL"; exit 1; }
	printf %s "$json" > "$db/$(name "$url")" ;;
erase)
	url=$(cat)
	f="$db/$(name "$url")"
	if [ -f "$f" ]; then rm "$f"; else echo "credentials not found in native keychain"; exit 1; fi ;;
list)
	printf '{'
	sep=
	for f in "$db"/*; do
		[ -f "$f" ] || continue
		url=$(sed -n 's/.*"ServerURL":"\([^"]*\)".*/\1/p' "$f")
		user=$(sed -n 's/.*"Username":"\([^"]*\)".*/\1/p' "$f")
		printf '%s"%s":"%s"' "$sep" "$url" "$user"
		sep=,
	done
	printf '}' ;;
*)
	echo "unknown action: $1"; exit 1 ;;
esac
`,
		"broken":  "#!/bin/sh\necho 'keychain locked' >&2\necho 'cannot reach the store'\nexit 3\n",
		"garbage": "#!/bin/sh\necho 'this is not json'\n",
	}
	for name, body := range scripts {
		if err := os.WriteFile(filepath.Join(dir, "docker-credential-"+name), []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	return dir
}

// newStore writes config (if not "") to a fresh config.json.
func newStore(t *testing.T, config string) *credentials.Store {
	t.Helper()
	t.Setenv(credentials.EnvAuthConfig, "")
	path := filepath.Join(t.TempDir(), "docker", "config.json")
	if config != "" {
		os.MkdirAll(filepath.Dir(path), 0o700)
		if err := os.WriteFile(path, []byte(config), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	s, err := credentials.NewStore(credentials.Options{ConfigPath: path})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func encode(s string) string {
	return base64.StdEncoding.EncodeToString([]byte(s))
}

func get(t *testing.T, s *credentials.Store, host, repo string) (credentials.Credential, credentials.Source) {
	t.Helper()
	c, src, err := s.Lookup(context.Background(), host, repo)
	if err != nil {
		t.Fatalf("lookup %s %s: %v", host, repo, err)
	}
	return c, src
}

func TestAuthsKeys(t *testing.T) {
	s := newStore(t, `{
		"auths": {
			"https://index.docker.io/v1/": {"auth": "`+encode("hubuser:hubpass")+`"},
			"ghcr.io": {"username": "gh", "password": "ghpass"},
			"https://quay.io/v2/": {"auth": "`+encode("quay:pw:with:colons")+`"},
			"quay.io/team": {"auth": "`+encode("team:teampw")+`"},
			"quay.io/team/app": {"auth": "`+encode("app:apppw")+`"},
			"localhost:5000": {"identitytoken": "refresh-me"},
			"http://legacy.example.com/v1/": {"auth": "`+encode("old:oldpw")+`"},
			"registry.example.com": {"registrytoken": "bearer-token", "email": "ignored@example.com"}
		},
		"psFormat": "table"
	}`)
	cases := []struct {
		host, repo string
		want       credentials.Credential
		key        string
	}{
		{"docker.io", "library/busybox", credentials.Credential{Username: "hubuser", Password: "hubpass"}, "https://index.docker.io/v1/"},
		{"index.docker.io", "", credentials.Credential{Username: "hubuser", Password: "hubpass"}, "https://index.docker.io/v1/"},
		{"https://index.docker.io/v1/", "", credentials.Credential{Username: "hubuser", Password: "hubpass"}, "https://index.docker.io/v1/"},
		{"ghcr.io", "org/app", credentials.Credential{Username: "gh", Password: "ghpass"}, "ghcr.io"},
		{"GHCR.io", "", credentials.Credential{Username: "gh", Password: "ghpass"}, "ghcr.io"},
		{"quay.io", "other/app", credentials.Credential{Username: "quay", Password: "pw:with:colons"}, "https://quay.io/v2/"},
		{"quay.io", "team/tool", credentials.Credential{Username: "team", Password: "teampw"}, "quay.io/team"},
		{"quay.io", "team/app", credentials.Credential{Username: "app", Password: "apppw"}, "quay.io/team/app"},
		{"quay.io", "", credentials.Credential{Username: "quay", Password: "pw:with:colons"}, "https://quay.io/v2/"},
		{"localhost:5000", "x", credentials.Credential{IdentityToken: "refresh-me"}, "localhost:5000"},
		{"legacy.example.com", "x", credentials.Credential{Username: "old", Password: "oldpw"}, "http://legacy.example.com/v1/"},
		{"registry.example.com", "", credentials.Credential{RegistryToken: "bearer-token"}, "registry.example.com"},
	}
	for _, c := range cases {
		got, src := get(t, s, c.host, c.repo)
		if got != c.want || src.Kind != "auths" || src.Key != c.key {
			t.Errorf("%s %s: got %+v from %s, want %+v from %q", c.host, c.repo, got, src, c.want, c.key)
		}
	}
	for _, host := range []string{"example.com", "quay.io.evil.com", "localhost:5001"} {
		if got, src := get(t, s, host, "team/app"); !got.Empty() || src.Kind != "" {
			t.Errorf("%s: got %+v from %s, want anonymous", host, got, src)
		}
	}
}

func TestHelperPrecedence(t *testing.T) {
	dir := fakeHelpers(t)
	ctx := context.Background()
	s := newStore(t, `{
		"auths": {"ghcr.io": {"auth": "`+encode("file:filepw")+`"}, "example.com": {"auth": "`+encode("file:filepw")+`"}},
		"credsStore": "test",
		"credHelpers": {"example.com": "broken", "docker.io": "test"}
	}`)
	// Seed the helper's store through its own protocol.
	if err := (credentials.Helper{Name: "test"}).Store(ctx, "ghcr.io", credentials.Credential{Username: "helper", Password: "helperpw"}); err != nil {
		t.Fatal(err)
	}
	if got, src := get(t, s, "ghcr.io", ""); got.Username != "helper" || src.Kind != "helper" || src.Helper != "docker-credential-test" {
		t.Fatalf("credsStore: %+v from %s", got, src)
	}
	// A store that holds nothing for the host means anonymous, even with
	// an auths entry (docker ignores it too).
	os.RemoveAll(filepath.Join(dir, "db"))
	if got, src := get(t, s, "ghcr.io", ""); !got.Empty() || src.Kind != "" {
		t.Fatalf("not in the store: %+v from %s", got, src)
	}
	// credHelpers wins over credsStore; its failure is reported with the
	// helper's words and the configuration that named it.
	_, err := s.Get(ctx, "example.com", "")
	if err == nil || !strings.Contains(err.Error(), "docker-credential-broken") || !strings.Contains(err.Error(), "keychain locked") ||
		!strings.Contains(err.Error(), "cannot reach the store") || !strings.Contains(err.Error(), "status 3") || !strings.Contains(err.Error(), `credHelpers["example.com"]`) {
		t.Fatalf("broken helper: %v", err)
	}
	// DOCKER_AUTH_CONFIG comes first.
	t.Setenv(credentials.EnvAuthConfig, `{"auths":{"example.com":{"auth":"`+encode("env:envpw")+`"}}}`)
	if got, src := get(t, s, "example.com", "x"); got.Username != "env" || src.Kind != "env" {
		t.Fatalf("env: %+v from %s", got, src)
	}
}

func TestHelperFailures(t *testing.T) {
	fakeHelpers(t)
	ctx := context.Background()
	s := newStore(t, `{"credHelpers": {"a.example.com": "missing", "b.example.com": "garbage"}}`)
	_, err := s.Get(ctx, "a.example.com", "")
	if !errors.Is(err, errdef.ErrUnavailable) || !strings.Contains(err.Error(), "docker-credential-missing") || !strings.Contains(err.Error(), s.ConfigPath()) {
		t.Fatalf("missing helper: %v", err)
	}
	_, err = s.Get(ctx, "b.example.com", "")
	if !errors.Is(err, errdef.ErrInvalid) || !strings.Contains(err.Error(), "docker-credential-garbage") {
		t.Fatalf("garbage helper: %v", err)
	}
	if err := (credentials.Helper{Name: "../evil"}).Erase(ctx, "x"); !errors.Is(err, errdef.ErrInvalid) {
		t.Fatalf("helper name with a slash: %v", err)
	}
	if _, err := (credentials.Helper{Name: "test"}).Get(ctx, "nothing.example.com"); !errors.Is(err, errdef.ErrNotFound) {
		t.Fatalf("helper get of nothing: %v", err)
	}
}

func TestMalformedConfig(t *testing.T) {
	ctx := context.Background()
	for name, c := range map[string]struct {
		config, naming string
		entryOnly      bool // a new login replaces the broken entry
	}{
		"not JSON":          {`{"auths":`, "config.json", false},
		"array":             {`[]`, "config.json", false},
		"auths not object":  {`{"auths": []}`, "auths", false},
		"bad base64":        {`{"auths": {"ghcr.io": {"auth": "%%%"}}}`, `auths["ghcr.io"]`, true},
		"no colon":          {`{"auths": {"ghcr.io": {"auth": "` + encode("nocolon") + `"}}}`, `auths["ghcr.io"]`, true},
		"credsStore number": {`{"credsStore": 3}`, "credsStore", false},
		"helper with path":  {`{"credHelpers": {"ghcr.io": "../../bin/sh"}}`, "credHelpers", false},
	} {
		t.Run(name, func(t *testing.T) {
			s := newStore(t, c.config)
			_, err := s.Get(ctx, "ghcr.io", "")
			if !errors.Is(err, errdef.ErrInvalid) || !strings.Contains(err.Error(), c.naming) {
				t.Fatalf("got %v, want invalid naming %q", err, c.naming)
			}
			if c.entryOnly {
				if err := s.Store(ctx, "ghcr.io", credentials.Credential{Username: "u", Password: "p"}); err != nil {
					t.Fatal(err)
				}
				if got, _ := get(t, s, "ghcr.io", ""); got.Username != "u" {
					t.Fatalf("after a new login: %+v", got)
				}
				return
			}
			// A store into a broken file refuses and leaves it alone.
			before, _ := os.ReadFile(s.ConfigPath())
			if err := s.Store(ctx, "ghcr.io", credentials.Credential{Username: "u", Password: "p"}); err == nil {
				t.Fatal("store into a malformed config succeeded")
			}
			after, _ := os.ReadFile(s.ConfigPath())
			if string(before) != string(after) {
				t.Fatal("malformed config was changed")
			}
		})
	}
	if _, err := credentials.NormalizeHost("https://"); !errors.Is(err, errdef.ErrInvalid) {
		t.Fatalf("empty host: %v", err)
	}
}

func TestStoreEraseFile(t *testing.T) {
	ctx := context.Background()
	s := newStore(t, `{
		"auths": {
			"quay.io/team": {"auth": "`+encode("team:pw")+`", "x-extra": 1},
			"https://ghcr.io/v1/": {"auth": "`+encode("old:old")+`"},
			"other.example.com": {"auth": "`+encode("o:o")+`", "unknown": {"kept": true}}
		},
		"psFormat": "table",
		"proxies": {"default": {"httpProxy": "http://proxy:3128"}},
		"plugins": {"x": {"y": "z"}}
	}`)
	for host, cred := range map[string]credentials.Credential{
		"ghcr.io":   {Username: "new", Password: "newpw"},
		"docker.io": {Username: "hub", Password: "hubpw"},
		"quay.io":   {IdentityToken: "tok"},
	} {
		if err := credentials.Login(ctx, s, host, cred, nil); err != nil {
			t.Fatal(err)
		}
		if got, _ := get(t, s, host, ""); got != cred {
			t.Fatalf("%s: stored %+v, got %+v", host, cred, got)
		}
	}
	fi, _ := os.Stat(s.ConfigPath())
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", fi.Mode())
	}
	var top map[string]any
	data, _ := os.ReadFile(s.ConfigPath())
	if err := json.Unmarshal(data, &top); err != nil {
		t.Fatal(err)
	}
	if top["psFormat"] != "table" || top["proxies"] == nil || top["plugins"] == nil {
		t.Fatalf("unknown fields lost: %s", data)
	}
	auths := top["auths"].(map[string]any)
	if _, ok := auths["https://index.docker.io/v1/"]; !ok {
		t.Fatalf("Docker Hub key: %s", data)
	}
	if auths["other.example.com"].(map[string]any)["unknown"] == nil || auths["quay.io/team"].(map[string]any)["x-extra"] == nil {
		t.Fatalf("unknown fields of other entries lost: %s", data)
	}
	// The new ghcr.io entry wins over the old spelling; erase removes both.
	if err := s.Erase(ctx, "ghcr.io"); err != nil {
		t.Fatal(err)
	}
	if got, _ := get(t, s, "ghcr.io", ""); !got.Empty() {
		t.Fatalf("after erase: %+v", got)
	}
	if err := s.Erase(ctx, "ghcr.io"); !errors.Is(err, errdef.ErrNotFound) {
		t.Fatalf("second erase: %v", err)
	}
	// Erasing a host keeps namespace entries.
	if err := s.Erase(ctx, "quay.io"); err != nil {
		t.Fatal(err)
	}
	if got, _ := get(t, s, "quay.io", "team/app"); got.Username != "team" {
		t.Fatalf("namespace entry lost: %+v", got)
	}
	if err := s.Store(ctx, "x.example.com", credentials.Credential{}); !errors.Is(err, errdef.ErrInvalid) {
		t.Fatalf("empty credential: %v", err)
	}
	entries, _ := os.ReadDir(filepath.Dir(s.ConfigPath()))
	if len(entries) != 1 {
		t.Fatalf("temporary files left: %v", entries)
	}
}

func TestStoreEraseHelper(t *testing.T) {
	dir := fakeHelpers(t)
	ctx := context.Background()
	s := newStore(t, `{"credsStore": "test", "auths": {"ghcr.io": {"auth": "`+encode("plain:text")+`"}}}`)
	for host, cred := range map[string]credentials.Credential{
		"ghcr.io":   {Username: "u", Password: "secret"},
		"docker.io": {IdentityToken: "refresh"},
	} {
		if err := s.Store(ctx, host, cred); err != nil {
			t.Fatal(err)
		}
		if got, src := get(t, s, host, ""); got != cred || src.Kind != "helper" {
			t.Fatalf("%s: %+v from %s", host, got, src)
		}
	}
	// The secret went to the helper; config.json keeps an empty entry.
	data, _ := os.ReadFile(s.ConfigPath())
	if strings.Contains(string(data), "secret") || strings.Contains(string(data), encode("plain:text")) || !strings.Contains(string(data), `"ghcr.io": {}`) {
		t.Fatalf("config.json: %s", data)
	}
	list, err := (credentials.Helper{Name: "test"}).List(ctx)
	if err != nil || list["ghcr.io"] != "u" || list["https://index.docker.io/v1/"] != "<token>" {
		t.Fatalf("helper list: %v %v", list, err)
	}
	if err := s.Erase(ctx, "ghcr.io"); err != nil {
		t.Fatal(err)
	}
	if got, _ := get(t, s, "ghcr.io", ""); !got.Empty() {
		t.Fatalf("after erase: %+v", got)
	}
	if err := s.Store(ctx, "ghcr.io", credentials.Credential{RegistryToken: "t"}); !errors.Is(err, errdef.ErrUnsupported) {
		t.Fatalf("registry token into a helper: %v", err)
	}
	_ = dir
}

func TestLoginVerifyFails(t *testing.T) {
	ctx := context.Background()
	s := newStore(t, "")
	verify := func(ctx context.Context, host string, cred credentials.Credential) error {
		if host != "docker.io" {
			t.Errorf("verify got host %q", host)
		}
		return fmt.Errorf("registry said no: %w", errdef.ErrUnauthorized)
	}
	err := credentials.Login(ctx, s, "index.docker.io", credentials.Credential{Username: "u", Password: "p"}, verify)
	if !errors.Is(err, errdef.ErrUnauthorized) {
		t.Fatalf("login: %v", err)
	}
	if _, err := os.Stat(s.ConfigPath()); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("failed login wrote config.json")
	}
}

func TestSymlinkedConfigAndConcurrentStores(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	real := filepath.Join(dir, "dotfiles", "docker.json")
	os.MkdirAll(filepath.Dir(real), 0o700)
	os.WriteFile(real, []byte(`{"psFormat":"x"}`), 0o600)
	link := filepath.Join(dir, "docker", "config.json")
	os.MkdirAll(filepath.Dir(link), 0o700)
	os.Symlink(real, link)
	t.Setenv(credentials.EnvAuthConfig, "")
	s, _ := credentials.NewStore(credentials.Options{ConfigPath: link})
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.Store(ctx, fmt.Sprintf("r%d.example.com", i), credentials.Credential{Username: "u", Password: "p"}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Fatal("config.json is no longer a symbolic link")
	}
	for i := 0; i < 8; i++ {
		if got, _ := get(t, s, fmt.Sprintf("r%d.example.com", i), ""); got.Username != "u" {
			t.Fatalf("store %d lost", i)
		}
	}
}

func TestDefaultPath(t *testing.T) {
	t.Setenv(credentials.EnvConfigDir, "/some/where")
	s, err := credentials.NewStore(credentials.Options{})
	if err != nil || s.ConfigPath() != "/some/where/config.json" {
		t.Fatalf("%v %v", s.ConfigPath(), err)
	}
	t.Setenv(credentials.EnvConfigDir, "")
	t.Setenv("HOME", "/home/x")
	s, _ = credentials.NewStore(credentials.Options{})
	if s.ConfigPath() != "/home/x/.docker/config.json" {
		t.Fatal(s.ConfigPath())
	}
}

func FuzzParseConfig(f *testing.F) {
	f.Add([]byte(`{"auths":{"https://index.docker.io/v1/":{"auth":"dTpw"}},"credsStore":"desktop","credHelpers":{"gcr.io":"gcloud"}}`))
	f.Add([]byte(`{"auths":{"quay.io/team":{"username":"a","password":"b","identitytoken":"c"}}}`))
	f.Add([]byte(``))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := credentials.ParseConfig(data)
		if err != nil {
			return
		}
		for k, e := range cfg.Auths {
			c, err := e.Credential()
			if err == nil && e.Auth != "" && (c.Username == "" || strings.Contains(c.Username, ":")) {
				t.Fatalf("auths[%q]: decoded user %q", k, c.Username)
			}
			credentials.NormalizeHost(k)
		}
		for _, h := range cfg.CredHelpers {
			if h == "" || strings.ContainsAny(h, `/\`) {
				t.Fatalf("accepted helper name %q", h)
			}
		}
	})
}
