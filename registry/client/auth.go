package client

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/lading-oci/lading/errdef"
	"github.com/lading-oci/lading/registry/credentials"
	"github.com/lading-oci/lading/registry/errcode"
)

// AuthError is a failure to authenticate or to be authorised: which host,
// for which scopes, through which token realm, with which credentials, and
// why. errors.Is matches errdef.ErrUnauthorized or errdef.ErrDenied (and
// what Err wraps).
type AuthError struct {
	// Host is the registry host.
	Host string
	// Scopes are the access asked for ("repository:library/alpine:pull").
	Scopes []string
	// Realm is the token server's URL, for bearer authentication.
	Realm string
	// Source says which credentials were used: "anonymous", `user "bob"`,
	// "an identity token", "a registry token", and whether they were
	// withheld from the realm.
	Source string
	// Err is why, wrapping the errdef category.
	Err error
}

// Error renders "authenticate to HOST for SCOPES as SOURCE (token realm
// REALM): why".
func (e *AuthError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "authenticate to %s", e.Host)
	if len(e.Scopes) > 0 {
		fmt.Fprintf(&b, " for %s", strings.Join(e.Scopes, " "))
	}
	if e.Source != "" {
		fmt.Fprintf(&b, " as %s", e.Source)
	}
	if e.Realm != "" {
		fmt.Fprintf(&b, " (token realm %s)", e.Realm)
	}
	fmt.Fprintf(&b, ": %v", e.Err)
	return b.String()
}

// Unwrap returns Err.
func (e *AuthError) Unwrap() error { return e.Err }

// CredentialFunc returns the credentials for a registry, named as in image
// references ("docker.io", "ghcr.io", "localhost:5000"). The zero
// Credential means anonymous access.
type CredentialFunc func(ctx context.Context, registry string) (credentials.Credential, error)

// CredentialLookup returns the credentials for a repository of a registry
// ("" for the registry as a whole: catalog, ping), and a description of
// where they came from for messages (`auths["ghcr.io"]`, a helper's name),
// as credentials.Store.Lookup does.
type CredentialLookup func(ctx context.Context, registry, repository string) (cred credentials.Credential, source string, err error)

// credInfo is a credential and where it came from.
type credInfo struct {
	cred   credentials.Credential
	source string
}

// describe says which credentials these are and where they came from,
// without secrets.
func (ci credInfo) describe() string {
	d := describe(ci.cred)
	if ci.source != "" && !ci.cred.Empty() {
		d += " from " + ci.source
	}
	return d
}

// describe says which credentials c is, without its secrets.
func describe(c credentials.Credential) string {
	switch {
	case c.RegistryToken != "":
		return "a registry token"
	case c.IdentityToken != "":
		if c.Username != "" {
			return fmt.Sprintf("user %q with an identity token", c.Username)
		}
		return "an identity token"
	case c.Username != "":
		return fmt.Sprintf("user %q", c.Username)
	}
	return "anonymous"
}

// scope builds a repository scope.
func repoScope(name string, actions ...string) string {
	return "repository:" + name + ":" + strings.Join(actions, ",")
}

// mergeScopes returns the union of scope lists, with the actions of a
// resource merged ("repository:a:pull" and "repository:a:push" become
// "repository:a:pull,push"), sorted.
func mergeScopes(lists ...[]string) []string {
	type res struct {
		actions []string
	}
	byRes := map[string]*res{}
	var order []string
	for _, l := range lists {
		for _, s := range l {
			i := strings.LastIndexByte(s, ':')
			if i < 0 {
				continue
			}
			name, acts := s[:i], s[i+1:]
			r, ok := byRes[name]
			if !ok {
				r = &res{}
				byRes[name] = r
				order = append(order, name)
			}
			for _, a := range strings.Split(acts, ",") {
				if a != "" && !slices.Contains(r.actions, a) {
					r.actions = append(r.actions, a)
				}
			}
		}
	}
	out := make([]string, 0, len(order))
	for _, name := range order {
		r := byRes[name]
		slices.Sort(r.actions)
		out = append(out, name+":"+strings.Join(r.actions, ","))
	}
	slices.Sort(out)
	return out
}

// token is a bearer token and when to stop using it.
type token struct {
	value   string
	refresh string // a new refresh token the server handed out
	expires time.Time
}

func (t *token) valid(now time.Time) bool {
	return t != nil && t.value != "" && now.Before(t.expires)
}

// tokenCache holds bearer tokens per (host, scopes). Each entry has its own
// lock, so concurrent requests for the same scopes fetch one token.
type tokenCache struct {
	mu      sync.Mutex
	entries map[string]*tokenEntry
}

type tokenEntry struct {
	mu  sync.Mutex
	tok *token
}

func (c *tokenCache) entry(key string) *tokenEntry {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil {
		c.entries = map[string]*tokenEntry{}
	}
	e, ok := c.entries[key]
	if !ok {
		e = &tokenEntry{}
		c.entries[key] = e
	}
	return e
}

// authTransport authenticates requests to a registry host: it adds the
// credentials the host's last challenge asks for (a cached bearer token for
// the request's scopes, or basic credentials), and on a 401 it reads the new
// challenge, fetches a fresh token for the scopes asked for (merged with the
// challenge's), and sends the request again when its body can be replayed.
// Requests to other hosts (redirects to a CDN, upload locations elsewhere)
// never get credentials.
func (c *Client) authTransport(next http.RoundTripper) http.RoundTripper {
	return roundTripperFunc(func(req *http.Request) (*http.Response, error) {
		t, _ := req.Context().Value(keyTarget).(*target)
		if t == nil || req.URL.Host != t.host.api {
			return next.RoundTrip(req)
		}
		h := t.host
		sent := ""
		if ch := h.currentChallenge(); ch != nil && !t.noAuth {
			authz, err := c.authorization(req.Context(), t, *ch, t.scopes, false)
			if err != nil {
				return nil, err
			}
			sent = authz
		}
		out := req
		var tracked *trackingBody
		if req.Body != nil && req.Body != http.NoBody && req.GetBody == nil {
			tracked = &trackingBody{rc: req.Body}
		}
		if sent != "" || tracked != nil {
			out = req.Clone(req.Context())
			if sent != "" {
				out.Header.Set("Authorization", sent)
			}
			if tracked != nil {
				out.Body = tracked
			}
		}
		resp, err := next.RoundTrip(out)
		if err != nil || resp.StatusCode != http.StatusUnauthorized {
			return resp, err
		}
		ch := pickChallenge(ParseChallenges(resp.Header.Values("WWW-Authenticate")))
		if ch == nil {
			return resp, nil
		}
		h.setChallenge(ch)
		if t.noAuth {
			return resp, nil
		}
		scopes := t.scopes
		if ch.Scheme == "bearer" {
			scopes = mergeScopes(t.scopes, ch.Scopes())
		}
		var body io.ReadCloser
		switch {
		case req.Body == nil || req.Body == http.NoBody:
		case req.GetBody != nil:
			if body, err = req.GetBody(); err != nil {
				return resp, nil
			}
		case tracked != nil && !tracked.read():
			body = tracked.rc
		default:
			// The body was sent and cannot be sent again; the caller sees
			// the 401. The next request gets a fresh token.
			t.note("the request body could not be sent again after the registry asked for new credentials")
			if ch.Scheme == "bearer" {
				c.tokens.entry(tokenKey(h, t.scopes)).invalidate(sent)
				c.tokens.entry(tokenKey(h, scopes)).invalidate(sent)
			}
			return resp, nil
		}
		authz, aerr := c.authorization(req.Context(), t, *ch, scopes, sent != "")
		if aerr != nil {
			drain(resp.Body)
			return nil, aerr
		}
		if authz == "" || authz == sent {
			// Nothing new to offer: the 401 stands.
			if body != nil && body != tracked.rcOrNil() {
				body.Close()
			}
			return resp, nil
		}
		drain(resp.Body)
		again := req.Clone(req.Context())
		again.Header.Set("Authorization", authz)
		if body != nil {
			again.Body = body
		}
		return next.RoundTrip(again)
	})
}

// trackingBody records whether the transport read any of a request body, so
// a request refused before its body was read can be sent again.
type trackingBody struct {
	rc     io.ReadCloser
	mu     sync.Mutex
	n      int64
	closed bool
}

func (b *trackingBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	b.mu.Lock()
	b.n += int64(n)
	b.mu.Unlock()
	return n, err
}

// Close does not close the underlying body, which may be sent again; the
// transport closes the copy it holds, and the caller's own reference keeps
// the original until its request ends.
func (b *trackingBody) Close() error {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	return nil
}

func (b *trackingBody) read() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.n > 0
}

func (b *trackingBody) rcOrNil() io.ReadCloser {
	if b == nil {
		return nil
	}
	return b.rc
}

func (e *tokenEntry) invalidate(sent string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.tok != nil && "Bearer "+e.tok.value == sent {
		e.tok = nil
	}
}

// pickChallenge prefers bearer to basic; other schemes are not supported.
func pickChallenge(chs []Challenge) *Challenge {
	var basic *Challenge
	for i := range chs {
		switch chs[i].Scheme {
		case "bearer":
			if chs[i].Params["realm"] != "" {
				return &chs[i]
			}
		case "basic":
			if basic == nil {
				basic = &chs[i]
			}
		}
	}
	return basic
}

func tokenKey(h *host, scopes []string) string {
	return h.api + "|" + strings.Join(mergeScopes(scopes), " ")
}

// authorization returns the Authorization header value for a request to
// t's host under challenge ch, or "" to go anonymously. fresh skips the
// cached token (it was just refused).
func (c *Client) authorization(ctx context.Context, t *target, ch Challenge, scopes []string, fresh bool) (string, error) {
	h := t.host
	ci, err := c.credential(ctx, h, t.repo)
	if err != nil {
		return "", &AuthError{Host: h.name, Scopes: scopes, Source: "the credential lookup", Err: fmt.Errorf("%w: %v", errdef.ErrUnauthorized, err)}
	}
	cred := ci.cred
	switch ch.Scheme {
	case "basic":
		if cred.Username == "" && cred.Password == "" {
			t.setAuth(scopes, "", "anonymous")
			return "", nil
		}
		t.setAuth(scopes, "", ci.describe())
		return "Basic " + base64.StdEncoding.EncodeToString([]byte(cred.Username+":"+cred.Password)), nil
	case "bearer":
		if cred.RegistryToken != "" {
			t.setAuth(scopes, "", ci.describe())
			return "Bearer " + cred.RegistryToken, nil
		}
		e := c.tokens.entry(tokenKey(h, scopes))
		e.mu.Lock()
		defer e.mu.Unlock()
		if !fresh && e.tok.valid(time.Now()) {
			t.setAuth(scopes, ch.Params["realm"], ci.describe())
			return "Bearer " + e.tok.value, nil
		}
		tok, source, err := c.fetchToken(ctx, h, ch, scopes, ci)
		t.setAuth(scopes, ch.Params["realm"], source)
		if err != nil {
			return "", err
		}
		e.tok = tok
		if tok.refresh != "" {
			h.setRefreshToken(tok.refresh)
		}
		return "Bearer " + tok.value, nil
	}
	return "", nil
}

// credential returns the credentials for repository on h, looked up once
// per Client (per host, unless the lookup distinguishes repositories).
func (c *Client) credential(ctx context.Context, h *host, repository string) (credInfo, error) {
	if c.cfg.lookup == nil {
		return credInfo{}, nil
	}
	if !c.cfg.perRepo {
		repository = ""
	}
	h.credMu.Lock()
	defer h.credMu.Unlock()
	if ci, ok := h.creds[repository]; ok {
		return ci, nil
	}
	cred, source, err := c.cfg.lookup(ctx, h.name, repository)
	if err != nil {
		return credInfo{}, fmt.Errorf("credentials for %s: %w", h.name, err)
	}
	if h.creds == nil {
		h.creds = map[string]credInfo{}
	}
	ci := credInfo{cred: cred, source: source}
	h.creds[repository] = ci
	return ci, nil
}

// maxTokenBytes caps a token server's answer.
const maxTokenBytes = 1 << 20

// fetchToken asks the token server of challenge ch for a token granting
// scopes on h. Credentials go to the realm only when it is h itself, a host
// allowed with WithTokenRealms, or a known pair (docker.io's auth.docker.io);
// otherwise the token is asked for anonymously and the source says so.
func (c *Client) fetchToken(ctx context.Context, h *host, ch Challenge, scopes []string, ci credInfo) (*token, string, error) {
	realm := ch.Params["realm"]
	cred := ci.cred
	source := ci.describe()
	fail := func(cat error, format string, args ...any) (*token, string, error) {
		return nil, source, &AuthError{Host: h.name, Scopes: scopes, Realm: realm, Source: source,
			Err: fmt.Errorf("%w: %s", cat, fmt.Sprintf(format, args...))}
	}
	ru, err := url.Parse(realm)
	if err != nil || ru.Host == "" || (ru.Scheme != "https" && ru.Scheme != "http") {
		return fail(errdef.ErrUnauthorized, "the registry's bearer challenge names an unusable realm %q", realm)
	}
	hasCred := cred.Username != "" || cred.Password != "" || cred.IdentityToken != ""
	send := hasCred && c.realmAllowed(h, ru.Host)
	if hasCred && !send {
		source = fmt.Sprintf("anonymous (the credentials of %s, %s, are not sent to the token realm on another host, %s; allow it with WithTokenRealms)",
			h.name, ci.describe(), ru.Host)
	}
	if send && ru.Scheme == "http" && !isLoopback(ru.Host) && h.getScheme() != "http" {
		send = false
		source = fmt.Sprintf("anonymous (the credentials of %s, %s, are not sent to a token realm over plain HTTP)", h.name, ci.describe())
	}
	service := ch.Params["service"]
	refresh := cred.IdentityToken
	if r := h.getRefreshToken(); r != "" {
		refresh = r
	}
	var resp *http.Response
	switch {
	case send && refresh != "":
		resp, err = c.postToken(ctx, ru, url.Values{
			"grant_type": {"refresh_token"}, "refresh_token": {refresh},
			"service": {service}, "scope": {strings.Join(scopes, " ")}, "client_id": {c.cfg.clientID},
		})
	case send && cred.Username != "" && c.cfg.passwordGrant:
		resp, err = c.postToken(ctx, ru, url.Values{
			"grant_type": {"password"}, "username": {cred.Username}, "password": {cred.Password},
			"service": {service}, "scope": {strings.Join(scopes, " ")}, "client_id": {c.cfg.clientID},
		})
		if err == nil && (resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusMethodNotAllowed) {
			// A token server without OAuth2 POST support: the GET flow.
			drain(resp.Body)
			resp, err = c.getToken(ctx, ru, service, scopes, cred, true)
		}
	default:
		resp, err = c.getToken(ctx, ru, service, scopes, cred, send)
	}
	if err != nil {
		return fail(errdef.ErrUnauthorized, "token request failed: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		re := errcode.FromResponse(resp)
		cat := errdef.ErrUnauthorized
		switch resp.StatusCode {
		case http.StatusForbidden:
			cat = errdef.ErrDenied
		case http.StatusTooManyRequests:
			cat = errdef.ErrTooManyRequests
		}
		if resp.StatusCode >= 500 {
			cat = errdef.ErrUnavailable
		}
		return fail(cat, "the token server refused: %v", re)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxTokenBytes+1))
	if err != nil {
		return fail(errdef.ErrUnauthorized, "reading the token server's answer: %v", err)
	}
	if len(body) > maxTokenBytes {
		return fail(errdef.ErrUnauthorized, "the token server's answer is over %d bytes", maxTokenBytes)
	}
	var tr struct {
		Token        string `json:"token"`
		AccessToken  string `json:"access_token"`
		ExpiresIn    int64  `json:"expires_in"`
		IssuedAt     string `json:"issued_at"`
		RefreshToken string `json:"refresh_token"`
	}
	if err := json.Unmarshal(body, &tr); err != nil {
		return fail(errdef.ErrUnauthorized, "the token server's answer is not JSON: %v", err)
	}
	tok := &token{value: tr.Token, refresh: tr.RefreshToken}
	if tok.value == "" {
		tok.value = tr.AccessToken
	}
	if tok.value == "" {
		return fail(errdef.ErrUnauthorized, "the token server's answer holds no token")
	}
	ttl := time.Duration(tr.ExpiresIn) * time.Second
	if ttl < time.Minute {
		ttl = time.Minute // the token specification's default and minimum
	}
	issued := time.Now()
	if t, err := time.Parse(time.RFC3339, tr.IssuedAt); err == nil && t.Before(issued) && issued.Sub(t) < ttl {
		issued = t
	}
	// Refresh before the end, so a token does not expire mid-request.
	tok.expires = issued.Add(ttl - min(ttl/10, 30*time.Second))
	return tok, source, nil
}

func (c *Client) getToken(ctx context.Context, realm *url.URL, service string, scopes []string, cred credentials.Credential, send bool) (*http.Response, error) {
	u := *realm
	q := u.Query()
	if service != "" {
		q.Set("service", service)
	}
	for _, s := range scopes {
		q.Add("scope", s)
	}
	if send && cred.Username != "" {
		q.Set("account", cred.Username)
	}
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	if send && (cred.Username != "" || cred.Password != "") {
		req.SetBasicAuth(cred.Username, cred.Password)
	}
	return c.tokenHTTP.Do(req)
}

func (c *Client) postToken(ctx context.Context, realm *url.URL, form url.Values) (*http.Response, error) {
	body := form.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, realm.String(), strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return c.tokenHTTP.Do(req.WithContext(markRetryable(ctx)))
}

// realmAllowed reports whether credentials for h may go to a token realm on
// realmHost.
func (c *Client) realmAllowed(h *host, realmHost string) bool {
	rh := hostOnly(realmHost)
	if rh == hostOnly(h.api) || rh == hostOnly(h.name) {
		return true
	}
	if c.cfg.anyRealm {
		return true
	}
	for _, a := range c.cfg.realms[h.name] {
		if a == "*" || strings.EqualFold(a, realmHost) || strings.EqualFold(a, rh) {
			return true
		}
	}
	return false
}

// hostOnly strips the port from host[:port], and lowercases it.
func hostOnly(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return strings.ToLower(h)
	}
	return strings.ToLower(strings.Trim(hostport, "[]"))
}

// isLoopback reports whether host[:port] is localhost or a loopback address.
func isLoopback(hostport string) bool {
	h := hostOnly(hostport)
	if h == "localhost" || strings.HasSuffix(h, ".localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// authFailure turns a 401 or 403 answer into an AuthError naming what was
// asked for and as whom.
func authFailure(t *target, re *errcode.ResponseError) error {
	cat := errdef.ErrUnauthorized
	if re.StatusCode == http.StatusForbidden {
		cat = errdef.ErrDenied
	}
	scopes, realm, source, note := t.authInfo()
	why := fmt.Errorf("%w: the registry answered %w", cat, re)
	if note != "" {
		why = fmt.Errorf("%w (%s)", why, note)
	}
	return &AuthError{Host: t.host.name, Scopes: scopes, Realm: realm, Source: source, Err: why}
}
