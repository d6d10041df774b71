package credentials

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/lading-oci/lading/internal/atomicfile"

	"github.com/lading-oci/lading/errdef"
)

// EnvConfigDir names the directory of config.json, as for docker.
const EnvConfigDir = "DOCKER_CONFIG"

// EnvAuthConfig holds credentials as JSON ({"auths":{HOST:{"auth":…}}}),
// consulted before config.json, as by docker.
const EnvAuthConfig = "DOCKER_AUTH_CONFIG"

// Store finds, keeps and removes registry credentials the way the docker
// CLI does, in a docker config.json and the credential helpers it names.
// Every call reads the file afresh; changes are written atomically under a
// lock, keeping every field lading does not know.
type Store struct {
	path string
}

// Options configures NewStore.
type Options struct {
	// ConfigPath is the config.json to use; "" means
	// $DOCKER_CONFIG/config.json, or ~/.docker/config.json.
	ConfigPath string
}

// NewStore returns a Store over the config file opts names. The file need
// not exist.
func NewStore(opts Options) (*Store, error) {
	p := opts.ConfigPath
	if p == "" {
		dir := os.Getenv(EnvConfigDir)
		if dir == "" {
			home, err := os.UserHomeDir()
			if err != nil {
				return nil, fmt.Errorf("credentials: %w: no home directory for ~/.docker/config.json (set %s): %v", errdef.ErrUnavailable, EnvConfigDir, err)
			}
			dir = filepath.Join(home, ".docker")
		}
		p = filepath.Join(dir, "config.json")
	}
	return &Store{path: p}, nil
}

// ConfigPath returns the config.json the Store uses.
func (s *Store) ConfigPath() string { return s.path }

// readRaw reads config.json; a missing file is empty.
func (s *Store) readRaw() ([]byte, error) {
	f, err := os.Open(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", s.path, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxConfigBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", s.path, err)
	}
	return data, nil
}

// Load reads and parses config.json (an absent file is an empty config).
func (s *Store) Load(ctx context.Context) (*Config, error) {
	data, err := s.readRaw()
	if err != nil {
		return nil, err
	}
	cfg, err := ParseConfig(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.path, err)
	}
	return cfg, nil
}

// Source tells where a credential was found.
type Source struct {
	// Kind is "env" (DOCKER_AUTH_CONFIG), "helper", "auths" or "" (none:
	// anonymous).
	Kind string
	// Helper is the helper's program for Kind "helper".
	Helper string
	// Key is the key the credential was found under.
	Key string
}

// String describes the source for messages.
func (src Source) String() string {
	switch src.Kind {
	case "env":
		return fmt.Sprintf("%s[%q]", EnvAuthConfig, src.Key)
	case "helper":
		return fmt.Sprintf("%s (%s)", src.Helper, src.Key)
	case "auths":
		return fmt.Sprintf("auths[%q]", src.Key)
	}
	return "none"
}

// Get returns the credential for repository (such as "library/busybox",
// or "" for the host as a whole) on host, normalised with NormalizeHost.
// The zero Credential (and no error) means none is configured: access is
// anonymous. A failing helper is an error naming the helper and why.
func (s *Store) Get(ctx context.Context, host, repository string) (Credential, error) {
	c, _, err := s.Lookup(ctx, host, repository)
	return c, err
}

// Lookup is Get, also telling where the credential came from. The order is
// docker's: DOCKER_AUTH_CONFIG; then the credHelpers entry for the host, or
// else credsStore, whose answer is final (a helper that holds nothing means
// anonymous, whatever auths says); then auths, where a key
// "host/namespace[/repo]" (a podman extension) for the repository wins over
// the host's own key, which may be spelt host, https://host,
// https://host/v1/ and, for Docker Hub, https://index.docker.io/v1/.
func (s *Store) Lookup(ctx context.Context, host, repository string) (Credential, Source, error) {
	h, err := NormalizeHost(host)
	if err != nil {
		return Credential{}, Source{}, err
	}
	repository = strings.Trim(repository, "/")
	if env := os.Getenv(EnvAuthConfig); env != "" {
		cfg, err := ParseConfig([]byte(env))
		if err != nil {
			return Credential{}, Source{}, fmt.Errorf("%s: %w", EnvAuthConfig, err)
		}
		if k, e, ok := cfg.findAuth(h, repository); ok {
			c, err := e.Credential()
			if err != nil {
				return Credential{}, Source{}, fmt.Errorf("%s[%q]: %w", EnvAuthConfig, k, err)
			}
			return c, Source{Kind: "env", Key: k}, nil
		}
	}
	cfg, err := s.Load(ctx)
	if err != nil {
		return Credential{}, Source{}, err
	}
	if name, where := cfg.helperFor(h); name != "" {
		helper := Helper{Name: name, Source: where + " in " + s.path}
		key := ServerKey(h)
		c, err := helper.Get(ctx, key)
		if errors.Is(err, errdef.ErrNotFound) {
			return Credential{}, Source{}, nil
		}
		if err != nil {
			return Credential{}, Source{}, err
		}
		return c, Source{Kind: "helper", Helper: helper.Program(), Key: key}, nil
	}
	k, e, ok := cfg.findAuth(h, repository)
	if !ok {
		return Credential{}, Source{}, nil
	}
	c, err := e.Credential()
	if err != nil {
		return Credential{}, Source{}, fmt.Errorf("%s: auths[%q]: %w", s.path, k, err)
	}
	return c, Source{Kind: "auths", Key: k}, nil
}

// Store keeps cred for host, as docker login does: in the host's
// credHelpers helper or credsStore if one is configured (leaving an empty
// auths entry, as docker does, so that logout finds it), else in auths
// under ServerKey(host) with the password base64-encoded beside the user
// name. config.json is replaced atomically with mode 0600, keeping every
// other field and entry as it was.
func (s *Store) Store(ctx context.Context, host string, cred Credential) error {
	h, err := NormalizeHost(host)
	if err != nil {
		return err
	}
	if cred.Empty() {
		return fmt.Errorf("store credentials for %s: %w: empty credential", h, errdef.ErrInvalid)
	}
	if strings.Contains(cred.Username, ":") {
		return fmt.Errorf("store credentials for %s: %w: the user name contains ':'", h, errdef.ErrInvalid)
	}
	key := ServerKey(h)
	return s.update(ctx, func(cfg *Config, auths map[string]json.RawMessage) error {
		if name, where := cfg.helperFor(h); name != "" {
			helper := Helper{Name: name, Source: where + " in " + s.path}
			if err := helper.Store(ctx, key, cred); err != nil {
				return err
			}
			auths[key] = json.RawMessage(`{}`)
			return nil
		}
		e := AuthEntry{IdentityToken: cred.IdentityToken, RegistryToken: cred.RegistryToken}
		if cred.Username != "" || cred.Password != "" {
			e.Auth = base64.StdEncoding.EncodeToString([]byte(cred.Username + ":" + cred.Password))
		}
		raw, err := json.Marshal(e)
		if err != nil {
			return err
		}
		auths[key] = raw
		return nil
	})
}

// Erase removes the credentials for host, as docker logout does: from its
// helper if one is configured, and every auths entry that names the host
// (in any spelling; "host/namespace" entries are kept). Nothing to erase
// anywhere matches errdef.ErrNotFound.
func (s *Store) Erase(ctx context.Context, host string) error {
	h, err := NormalizeHost(host)
	if err != nil {
		return err
	}
	key := ServerKey(h)
	return s.update(ctx, func(cfg *Config, auths map[string]json.RawMessage) error {
		found := false
		if name, where := cfg.helperFor(h); name != "" {
			helper := Helper{Name: name, Source: where + " in " + s.path}
			err := helper.Erase(ctx, key)
			switch {
			case err == nil:
				found = true
			case !errors.Is(err, errdef.ErrNotFound):
				return err
			}
		}
		for k := range auths {
			if keyHost(k) == h {
				delete(auths, k)
				found = true
			}
		}
		if !found {
			return fmt.Errorf("erase credentials for %s: %w in %s", h, errdef.ErrNotFound, s.path)
		}
		return nil
	})
}

// update changes config.json under the lock: fn gets the parsed config and
// the raw auths entries (which it edits); the file is then rewritten with
// every other field kept.
func (s *Store) update(ctx context.Context, fn func(cfg *Config, auths map[string]json.RawMessage) error) error {
	dir := filepath.Dir(s.path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("update %s: %w", s.path, err)
	}
	unlock, err := lockDir(ctx, dir)
	if err != nil {
		return fmt.Errorf("update %s: lock: %w", s.path, err)
	}
	defer unlock()
	data, err := s.readRaw()
	if err != nil {
		return err
	}
	cfg, err := ParseConfig(data)
	if err != nil {
		return fmt.Errorf("%s: %w", s.path, err)
	}
	top := map[string]json.RawMessage{}
	if len(strings.TrimSpace(string(data))) > 0 {
		if err := json.Unmarshal(data, &top); err != nil {
			return fmt.Errorf("%s: %w: %v", s.path, errdef.ErrInvalid, err)
		}
	}
	auths := map[string]json.RawMessage{}
	if raw, ok := top["auths"]; ok && !isNull(raw) {
		if err := json.Unmarshal(raw, &auths); err != nil {
			return fmt.Errorf("%s: auths: %w: %v", s.path, errdef.ErrInvalid, err)
		}
	}
	if err := fn(cfg, auths); err != nil {
		return err
	}
	rawAuths, err := json.Marshal(auths)
	if err != nil {
		return err
	}
	top["auths"] = rawAuths
	out, err := json.MarshalIndent(top, "", "\t")
	if err != nil {
		return err
	}
	return writeAtomic(s.path, append(out, '\n'))
}

// writeAtomic replaces path (or the file its symbolic link points at) with
// data through a synced temporary file, mode 0600.
func writeAtomic(path string, data []byte) error {
	target := path
	if t, err := filepath.EvalSymlinks(path); err == nil {
		target = t
	}
	if err := atomicfile.Write(target, data, 0o600, true); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// VerifyFunc checks a credential against a registry before it is stored;
// the registry client provides one.
type VerifyFunc func(ctx context.Context, host string, cred Credential) error

// Login verifies cred for host with verify (when not nil) and then stores
// it. Nothing is stored when verification fails.
func Login(ctx context.Context, s *Store, host string, cred Credential, verify VerifyFunc) error {
	h, err := NormalizeHost(host)
	if err != nil {
		return err
	}
	if verify != nil {
		if err := verify(ctx, h, cred); err != nil {
			return fmt.Errorf("login to %s: %w", h, err)
		}
	}
	if err := s.Store(ctx, h, cred); err != nil {
		return fmt.Errorf("login to %s: %w", h, err)
	}
	return nil
}
