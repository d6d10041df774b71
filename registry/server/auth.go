package server

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/lading-oci/lading/errdef"
	"github.com/lading-oci/lading/registry/errcode"
	"golang.org/x/crypto/bcrypt"
)

// Actions a client may be granted on a repository.
const (
	actionPull   = "pull"
	actionPush   = "push"
	actionDelete = "delete"
)

// tokenPath is where the built-in token endpoint answers.
const tokenPath = "/token"

// Auth decides who may do what. Without Users nobody can log in, so only
// what AnonymousPull and the Policy's anonymous rules allow works.
//
// With TokenKey set the registry speaks the bearer token protocol of
// Docker clients: a request without a valid token is answered 401 with a
// challenge naming the built-in token endpoint (/token), which checks the
// client's basic credentials (if any) against Users and issues a token,
// signed with TokenKey, that grants what the Policy allows of the scopes
// asked for. Without TokenKey, clients send basic credentials with every
// request.
type Auth struct {
	// Users checks passwords.
	Users *Htpasswd
	// Policy grants actions per user and repository. Without one, every
	// authenticated user may pull, push and delete everywhere.
	Policy *Policy
	// AnonymousPull lets clients without credentials pull from every
	// repository.
	AnonymousPull bool
	// TokenKey signs bearer tokens (HMAC-SHA256); empty means basic auth.
	TokenKey []byte
	// TokenTTL is how long a token is valid (default 5 minutes).
	TokenTTL time.Duration
	// Service names the registry in challenges and tokens (default
	// "lading").
	Service string
	// Realm is the token endpoint's URL as clients reach it; empty means
	// derived from each request's Host (https when it came over TLS).
	Realm string
}

// Rule grants Actions on the repositories matching any of Repositories to
// the users listed. A user "*" is any authenticated user and "anonymous" a
// client without credentials. In a repository pattern, "*" matches any run
// of characters, slashes included ("team/*", "*").
type Rule struct {
	Users        []string `yaml:"users" json:"users"`
	Repositories []string `yaml:"repositories" json:"repositories"`
	Actions      []string `yaml:"actions" json:"actions"`
}

// Policy is a list of rules; what any rule grants is granted.
type Policy struct {
	Rules []Rule `yaml:"rules" json:"rules"`
}

// Check validates the policy's actions.
func (p *Policy) Check() error {
	for i, r := range p.Rules {
		for _, a := range r.Actions {
			if a != actionPull && a != actionPush && a != actionDelete && a != "*" {
				return fmt.Errorf("policy rule %d: %w: action %q (pull, push, delete or *)", i+1, errdef.ErrInvalid, a)
			}
		}
		if len(r.Users) == 0 || len(r.Repositories) == 0 {
			return fmt.Errorf("policy rule %d: %w: needs users and repositories", i+1, errdef.ErrInvalid)
		}
	}
	return nil
}

// globMatch matches name against pattern, where "*" matches any run of
// characters.
func globMatch(pattern, name string) bool {
	star := strings.IndexByte(pattern, '*')
	if star < 0 {
		return pattern == name
	}
	if !strings.HasPrefix(name, pattern[:star]) {
		return false
	}
	name, pattern = name[star:], pattern[star+1:]
	if pattern == "" {
		return true
	}
	for i := 0; i <= len(name); i++ {
		if globMatch(pattern, name[i:]) {
			return true
		}
	}
	return false
}

// grants reports whether user ("" for anonymous) may do action on repo.
func (a *Auth) grants(user, repo, action string) bool {
	if user == "" && a.AnonymousPull && action == actionPull {
		return true
	}
	if a.Policy == nil {
		return user != ""
	}
	for _, r := range a.Policy.Rules {
		if !slices.Contains(r.Actions, action) && !slices.Contains(r.Actions, "*") {
			continue
		}
		userOK := false
		for _, u := range r.Users {
			if u == user && user != "" || u == "*" && user != "" || u == "anonymous" && user == "" {
				userOK = true
				break
			}
		}
		if !userOK {
			continue
		}
		for _, p := range r.Repositories {
			if globMatch(p, repo) {
				return true
			}
		}
	}
	return false
}

// Htpasswd holds bcrypt password hashes by user, as written by
// `htpasswd -B`. Successful checks are remembered for a minute (by a hash
// of the password) so a client sending basic credentials with every
// request does not pay bcrypt each time.
type Htpasswd struct {
	hashes map[string][]byte
	dummy  []byte // checked for unknown users, at the file's cost
	mu     sync.Mutex
	ok     map[string]verified
}

type verified struct {
	sum [32]byte
	at  time.Time
}

// LoadHtpasswd reads an htpasswd file of bcrypt entries ("user:$2y$…").
// Entries of another scheme are refused with errdef.ErrUnsupported.
func LoadHtpasswd(path string) (*Htpasswd, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("htpasswd: %w", err)
	}
	return ParseHtpasswd(bytes.NewReader(data))
}

// ParseHtpasswd reads htpasswd entries from r.
func ParseHtpasswd(r io.Reader) (*Htpasswd, error) {
	h := &Htpasswd{hashes: map[string][]byte{}, ok: map[string]verified{}}
	sc := bufio.NewScanner(r)
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		user, hash, ok := strings.Cut(text, ":")
		if !ok || user == "" {
			return nil, fmt.Errorf("htpasswd line %d: %w: want user:hash", line, errdef.ErrInvalid)
		}
		if !strings.HasPrefix(hash, "$2a$") && !strings.HasPrefix(hash, "$2b$") && !strings.HasPrefix(hash, "$2y$") {
			return nil, fmt.Errorf("htpasswd line %d (user %s): %w: only bcrypt hashes are accepted (htpasswd -B)", line, user, errdef.ErrUnsupported)
		}
		h.hashes[user] = []byte(hash)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("htpasswd: %w", err)
	}
	cost := bcrypt.MinCost
	for _, hash := range h.hashes {
		if c, err := bcrypt.Cost(hash); err == nil {
			cost = c
			break
		}
	}
	h.dummy, _ = bcrypt.GenerateFromPassword([]byte("no such user"), cost)
	return h, nil
}

// Verify reports whether password is user's.
func (h *Htpasswd) Verify(user, password string) bool {
	if h == nil {
		return false
	}
	hash, ok := h.hashes[user]
	if !ok {
		// Spend the time a real check would, so timing does not tell
		// which users exist.
		_ = bcrypt.CompareHashAndPassword(h.dummy, []byte(password))
		return false
	}
	sum := sha256.Sum256([]byte(user + "\x00" + password))
	h.mu.Lock()
	v, seen := h.ok[user]
	h.mu.Unlock()
	if seen && time.Since(v.at) < time.Minute && subtle.ConstantTimeCompare(v.sum[:], sum[:]) == 1 {
		return true
	}
	if bcrypt.CompareHashAndPassword(hash, []byte(password)) != nil {
		return false
	}
	h.mu.Lock()
	h.ok[user] = verified{sum: sum, at: time.Now()}
	h.mu.Unlock()
	return true
}

// tokenClaims is what a token says.
type tokenClaims struct {
	Subject string        `json:"sub"`
	Service string        `json:"aud"`
	Expires int64         `json:"exp"`
	Access  []tokenAccess `json:"access"`
}

type tokenAccess struct {
	Type    string   `json:"type"`
	Name    string   `json:"name"`
	Actions []string `json:"actions"`
}

func (c *tokenClaims) grants(repo, action string) bool {
	for _, a := range c.Access {
		if a.Type == "repository" && a.Name == repo && slices.Contains(a.Actions, action) {
			return true
		}
	}
	return false
}

var b64 = base64.RawURLEncoding

func (a *Auth) sign(c tokenClaims) string {
	payload, _ := json.Marshal(c)
	mac := hmac.New(sha256.New, a.TokenKey)
	mac.Write(payload)
	return b64.EncodeToString(payload) + "." + b64.EncodeToString(mac.Sum(nil))
}

func (a *Auth) parseToken(tok string) (*tokenClaims, bool) {
	p, s, ok := strings.Cut(tok, ".")
	if !ok {
		return nil, false
	}
	payload, err1 := b64.DecodeString(p)
	sig, err2 := b64.DecodeString(s)
	if err1 != nil || err2 != nil {
		return nil, false
	}
	mac := hmac.New(sha256.New, a.TokenKey)
	mac.Write(payload)
	if !hmac.Equal(sig, mac.Sum(nil)) {
		return nil, false
	}
	var c tokenClaims
	if json.Unmarshal(payload, &c) != nil || time.Now().Unix() > c.Expires || c.Service != a.service() {
		return nil, false
	}
	return &c, true
}

func (a *Auth) service() string {
	if a.Service == "" {
		return "lading"
	}
	return a.Service
}

// identity is who made a request.
type identity struct {
	user   string // "" when anonymous
	claims *tokenClaims
}

// identify reads a request's credentials; bad ones are reported as !ok.
func (a *Auth) identify(r *http.Request) (identity, bool) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return identity{}, true
	}
	scheme, cred, _ := strings.Cut(h, " ")
	switch {
	case strings.EqualFold(scheme, "bearer") && a.TokenKey != nil:
		c, ok := a.parseToken(strings.TrimSpace(cred))
		if !ok {
			return identity{}, false
		}
		return identity{user: c.Subject, claims: c}, true
	case strings.EqualFold(scheme, "basic"):
		user, pass, ok := r.BasicAuth()
		if ok && user == "" && pass == "" {
			return identity{}, true // empty credentials: anonymous
		}
		if !ok || !a.Users.Verify(user, pass) {
			return identity{}, false
		}
		return identity{user: user}, true
	}
	return identity{}, false
}

// can reports whether id may do action on repo.
func (a *Auth) can(id identity, repo, action string) bool {
	if id.claims != nil {
		return id.claims.grants(repo, action)
	}
	if a.TokenKey != nil && id.user == "" {
		return false // token mode: even anonymous clients come with a token
	}
	return a.grants(id.user, repo, action)
}

// challenge answers 401 with the challenge for scope.
func (a *Auth) challenge(w http.ResponseWriter, r *http.Request, repo string, actions []string, msg string) {
	if a.TokenKey != nil {
		realm := a.Realm
		if realm == "" {
			scheme := "http"
			if r.TLS != nil {
				scheme = "https"
			}
			realm = scheme + "://" + r.Host + tokenPath
		}
		c := fmt.Sprintf(`Bearer realm=%q,service=%q`, realm, a.service())
		if repo != "" {
			c += fmt.Sprintf(`,scope="repository:%s:%s"`, repo, strings.Join(actions, ","))
		}
		w.Header().Set("WWW-Authenticate", c)
	} else {
		w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Basic realm=%q`, a.service()))
	}
	writeError(w, http.StatusUnauthorized, errcode.Unauthorized.WithMessage("%s", msg))
}

// serveToken is the token endpoint: it returns the user it issued a token
// to.
func (a *Auth) serveToken(w http.ResponseWriter, r *http.Request) string {
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		methodNotAllowed(w, r, "GET, POST")
		return ""
	}
	user := ""
	if _, _, has := r.BasicAuth(); has || r.Header.Get("Authorization") != "" {
		u, p, ok := r.BasicAuth()
		if !ok || !a.Users.Verify(u, p) {
			w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Basic realm=%q`, a.service()))
			writeError(w, http.StatusUnauthorized, errcode.Unauthorized.WithMessage("wrong user name or password"))
			return u
		}
		user = u
	}
	ttl := a.TokenTTL
	if ttl <= 0 {
		ttl = 5 * time.Minute
	}
	now := time.Now()
	c := tokenClaims{Subject: user, Service: a.service(), Expires: now.Add(ttl).Unix()}
	for _, scope := range r.URL.Query()["scope"] {
		for sc := range strings.FieldsSeq(scope) {
			parts := strings.Split(sc, ":")
			if len(parts) < 3 || parts[0] != "repository" {
				continue
			}
			name := strings.Join(parts[1:len(parts)-1], ":")
			var granted []string
			for act := range strings.SplitSeq(parts[len(parts)-1], ",") {
				if act == "*" {
					for _, x := range []string{actionPull, actionPush, actionDelete} {
						if a.grants(user, name, x) {
							granted = append(granted, x)
						}
					}
				} else if a.grants(user, name, act) {
					granted = append(granted, act)
				}
			}
			c.Access = append(c.Access, tokenAccess{Type: "repository", Name: name, Actions: granted})
		}
	}
	tok := a.sign(c)
	writeJSON(w, r, "application/json", map[string]any{
		"token": tok, "access_token": tok, "expires_in": int(ttl.Seconds()), "issued_at": now.UTC().Format(time.RFC3339),
	})
	return user
}

// needs returns the actions a request needs on its repository.
func needs(r *http.Request, req request) []string {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		return []string{actionPull}
	case http.MethodDelete:
		if req.route == routeUploadID {
			return []string{actionPush}
		}
		return []string{actionDelete}
	}
	return []string{actionPull, actionPush}
}

// authorize checks a request's credentials and what they allow; it
// reports whether the request may go on, having answered it otherwise.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request, req *request) (string, bool) {
	a := s.opts.Auth
	if a == nil {
		return "", true
	}
	id, ok := a.identify(r)
	if !ok {
		s.opts.Auth.challenge(w, r, req.name, needs(r, *req), "the credentials were not accepted")
		return "", false
	}
	req.id = id
	switch req.route {
	case routeBase:
		// Clients decide from this answer whether to send credentials at
		// all, so it challenges anyone without them, even where anonymous
		// pulls are allowed.
		if id.user == "" && id.claims == nil {
			a.challenge(w, r, "", nil, "authentication required")
			return "", false
		}
		return id.user, true
	case routeCatalog:
		if id.user == "" && id.claims == nil && !a.AnonymousPull {
			a.challenge(w, r, "", nil, "authentication required")
			return "", false
		}
		return id.user, true
	}
	acts := needs(r, *req)
	for _, act := range acts {
		if act == actionPull && r.Method != http.MethodGet && r.Method != http.MethodHead {
			continue // pushing needs push; pull is asked for only in the scope
		}
		if !a.can(id, req.name, act) {
			if id.user == "" {
				a.challenge(w, r, req.name, acts, "authentication required")
			} else {
				if a.TokenKey != nil {
					// The token may just lack the scope: let the client ask
					// for another.
					a.challenge(w, r, req.name, acts, fmt.Sprintf("%s may not %s %s with this token", id.user, act, req.name))
					return id.user, false
				}
				writeError(w, http.StatusForbidden, errcode.Denied.WithMessage("%s may not %s %s", id.user, act, req.name))
			}
			return id.user, false
		}
	}
	return id.user, true
}

// allowed reports whether the request's client may do action on repo
// (another repository than the one in its path: a mount's source, the
// catalog's entries).
func (s *Server) allowed(r *http.Request, req request, repo, action string) bool {
	a := s.opts.Auth
	if a == nil {
		return true
	}
	if req.id.claims != nil && req.route == routeCatalog {
		return a.grants(req.id.claims.Subject, repo, action)
	}
	return a.can(req.id, repo, action)
}
