package credentials

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"sort"
	"strings"

	"github.com/lading-oci/lading/errdef"
)

// MaxConfigBytes caps the size of config.json.
const MaxConfigBytes = 16 << 20

// dockerHubKey is the key docker keeps Docker Hub's credentials under.
const dockerHubKey = "https://index.docker.io/v1/"

// dockerHub is the canonical name of Docker Hub.
const dockerHub = "docker.io"

// AuthEntry is one entry of the "auths" object of config.json.
type AuthEntry struct {
	// Auth is base64("username:password").
	Auth          string `json:"auth,omitempty"`
	Username      string `json:"username,omitempty"`
	Password      string `json:"password,omitempty"`
	IdentityToken string `json:"identitytoken,omitempty"`
	RegistryToken string `json:"registrytoken,omitempty"`
}

// Config is what lading reads from a docker config.json. Fields it does not
// know are kept by the Store when it writes the file.
type Config struct {
	Auths       map[string]AuthEntry
	CredsStore  string
	CredHelpers map[string]string
}

// ParseConfig parses a docker config.json. An empty document is an empty
// config. Errors match errdef.ErrInvalid (or errdef.ErrTooLarge) and name
// the key at fault.
func ParseConfig(data []byte) (*Config, error) {
	if len(data) > MaxConfigBytes {
		return nil, fmt.Errorf("%w: %d bytes, the limit is %d", errdef.ErrTooLarge, len(data), MaxConfigBytes)
	}
	cfg := &Config{Auths: map[string]AuthEntry{}, CredHelpers: map[string]string{}}
	if len(bytes.TrimSpace(data)) == 0 {
		return cfg, nil
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		return nil, fmt.Errorf("%w: not a JSON object: %v", errdef.ErrInvalid, err)
	}
	if raw, ok := top["auths"]; ok && !isNull(raw) {
		if err := json.Unmarshal(raw, &cfg.Auths); err != nil {
			return nil, fmt.Errorf("auths: %w: %v", errdef.ErrInvalid, err)
		}
		if cfg.Auths == nil {
			cfg.Auths = map[string]AuthEntry{}
		}
	}
	if raw, ok := top["credsStore"]; ok && !isNull(raw) {
		if err := json.Unmarshal(raw, &cfg.CredsStore); err != nil {
			return nil, fmt.Errorf("credsStore: %w: %v", errdef.ErrInvalid, err)
		}
	}
	if raw, ok := top["credHelpers"]; ok && !isNull(raw) {
		if err := json.Unmarshal(raw, &cfg.CredHelpers); err != nil {
			return nil, fmt.Errorf("credHelpers: %w: %v", errdef.ErrInvalid, err)
		}
		if cfg.CredHelpers == nil {
			cfg.CredHelpers = map[string]string{}
		}
	}
	for k, h := range cfg.CredHelpers {
		if h == "" || strings.ContainsAny(h, `/\`) {
			return nil, fmt.Errorf("credHelpers[%q]: %w: helper name %q", k, errdef.ErrInvalid, h)
		}
	}
	if strings.ContainsAny(cfg.CredsStore, `/\`) {
		return nil, fmt.Errorf("credsStore: %w: helper name %q", errdef.ErrInvalid, cfg.CredsStore)
	}
	return cfg, nil
}

func isNull(raw json.RawMessage) bool {
	return bytes.Equal(bytes.TrimSpace(raw), []byte("null"))
}

// Credential decodes an auths entry: "auth" (base64 of user:password) wins
// over "username" and "password", as in docker.
func (e AuthEntry) Credential() (Credential, error) {
	c := Credential{Username: e.Username, Password: e.Password, IdentityToken: e.IdentityToken, RegistryToken: e.RegistryToken}
	if e.Auth != "" {
		raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(e.Auth))
		if err != nil {
			return Credential{}, fmt.Errorf("%w: auth is not base64: %v", errdef.ErrInvalid, err)
		}
		user, pass, ok := strings.Cut(string(raw), ":")
		if !ok || user == "" {
			return Credential{}, fmt.Errorf("%w: auth does not decode to username:password", errdef.ErrInvalid)
		}
		c.Username, c.Password = user, strings.Trim(pass, "\x00")
	}
	return c, nil
}

// NormalizeHost turns what a user or a config key names a registry by into
// its host (with port): a scheme and a path are removed, the host is
// lowercased, and Docker Hub's names (index.docker.io, registry-1.docker.io,
// https://index.docker.io/v1/) become docker.io.
func NormalizeHost(s string) (string, error) {
	h := strings.TrimSpace(s)
	if h == "" {
		return "", fmt.Errorf("registry host %q: %w: empty", s, errdef.ErrInvalid)
	}
	if i := strings.Index(h, "://"); i >= 0 {
		if u, err := url.Parse(h); err == nil && u.Host != "" {
			h = u.Host
		} else {
			h = h[i+3:]
		}
	}
	h, _, _ = strings.Cut(h, "/")
	h = strings.ToLower(h)
	if h == "" || strings.ContainsAny(h, " \t@?#") {
		return "", fmt.Errorf("registry host %q: %w", s, errdef.ErrInvalid)
	}
	if host, port, err := net.SplitHostPort(h); err == nil && (host == "" || port == "") {
		return "", fmt.Errorf("registry host %q: %w", s, errdef.ErrInvalid)
	}
	switch h {
	case "index.docker.io", "registry-1.docker.io":
		h = dockerHub
	}
	return h, nil
}

// ServerKey is the key docker stores a host's credentials under, in auths
// and in helpers: https://index.docker.io/v1/ for Docker Hub, the host
// itself otherwise.
func ServerKey(host string) string {
	if host == dockerHub {
		return dockerHubKey
	}
	return host
}

// hostKeys lists the keys that name host exactly, best first.
func hostKeys(host string) []string {
	if host == dockerHub {
		return []string{dockerHubKey, "docker.io", "index.docker.io", "registry-1.docker.io", "https://index.docker.io", "https://registry-1.docker.io"}
	}
	return []string{host, "https://" + host, "http://" + host}
}

// keyHost returns the host a config key names when it names a whole host:
// a bare host, or any URL (whose path docker ignores), or a host followed by
// an API path (/v1/, /v2/). A key with another path names a namespace (a
// podman extension) and yields "".
func keyHost(key string) string {
	k := key
	hasScheme := strings.HasPrefix(k, "https://") || strings.HasPrefix(k, "http://")
	if hasScheme {
		k = k[strings.Index(k, "://")+3:]
	}
	h, path, hasPath := strings.Cut(k, "/")
	if hasPath && !hasScheme {
		switch strings.TrimSuffix(path, "/") {
		case "v1", "v2", "":
		default:
			return ""
		}
	}
	n, err := NormalizeHost(h)
	if err != nil {
		return ""
	}
	return n
}

// findAuth finds the auths entry for host and repository: the longest
// namespace key (host/a/b/repo, host/a/b, host/a), then the exact host keys,
// then any key that names the host in another spelling (https://host/v1/).
func (c *Config) findAuth(host, repository string) (string, AuthEntry, bool) {
	if repository != "" {
		parts := strings.Split(repository, "/")
		names := []string{host}
		if host == dockerHub {
			names = hostKeys(host)[1:4]
		}
		for n := len(parts); n >= 1; n-- {
			for _, h := range names {
				k := h + "/" + strings.Join(parts[:n], "/")
				if e, ok := c.Auths[k]; ok {
					return k, e, true
				}
			}
		}
	}
	for _, k := range hostKeys(host) {
		if e, ok := c.Auths[k]; ok {
			return k, e, true
		}
	}
	var keys []string
	for k := range c.Auths {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if keyHost(k) == host {
			return k, c.Auths[k], true
		}
	}
	return "", AuthEntry{}, false
}

// helperFor returns the helper configured for host: its credHelpers entry,
// else credsStore; "" for none.
func (c *Config) helperFor(host string) (name, source string) {
	for _, k := range hostKeys(host) {
		if h, ok := c.CredHelpers[k]; ok {
			return h, fmt.Sprintf("credHelpers[%q]", k)
		}
	}
	if c.CredsStore != "" {
		return c.CredsStore, "credsStore"
	}
	return "", ""
}
