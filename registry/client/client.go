// Package client is a registry client for the OCI distribution
// specification, behind the content roles: a Repository is a
// content.Fetcher, Pusher, Exister, Stater, Resolver, Tagger, Untagger,
// TagLister, Deleter, Ingester and ReferrerLister, so anything that copies
// between stores copies to and from registries too. Registry-only
// operations are methods of their own: Mount, FetchReference, PushManifest
// (with tags), DeleteManifest, and on the Client Ping and Catalog.
//
// A Client holds what is shared between repositories: one HTTP transport
// (HTTP/1.1 keep-alive, enough idle connections per host for concurrent
// blob transfers), per-host TLS and plain-HTTP settings, the credentials
// function, and the cache of bearer tokens. It is safe for concurrent use.
//
// # Transport
//
// Requests pass through a stack of http.RoundTrippers: a User-Agent, retries
// of idempotent requests on connection errors, 429 and 5xx (capped
// exponential backoff that honours Retry-After), authentication, and debug
// logging through log/slog.
//
// Hosts are contacted over HTTPS with the system roots, plus the CAs given
// with WithCA. WithPlainHTTP names hosts spoken to in plain HTTP, and
// WithInsecureSkipVerify hosts whose certificates are not checked. A
// loopback host (localhost, 127.0.0.0/8, ::1) is tried over HTTPS first and
// falls back to plain HTTP when the server answers the TLS handshake in
// plain HTTP (or, without a port, refuses connections on 443), as docker
// does: a loopback address may be the end of a tunnel to a remote registry,
// whose credentials must not travel in the clear, and the probe costs one
// handshake per Client and host.
//
// # Authentication
//
// Credentials come from WithCredentials (per registry) or
// WithCredentialLookup (per repository, saying where they came from, as
// credentials.Store.Lookup does). Anonymous access, basic authentication,
// and bearer tokens from the token server a WWW-Authenticate challenge
// names: the GET flow with basic
// credentials, the OAuth2 refresh_token grant for identity tokens, and,
// WithPasswordGrant, the password grant. Tokens are cached per host and
// scope set until shortly before they expire, and fetched anew when the
// registry answers 401 mid-transfer. Credentials reach a token server on
// another host than the registry's only when WithTokenRealms allows it
// (docker.io's auth.docker.io is allowed by default). Failures are
// *AuthError values that name the host, scopes, realm and credentials.
//
// # Integrity
//
// Manifests are hashed on every GET (Docker-Content-Digest is not trusted)
// and capped at 4 MiB; blob downloads are checked for size and digest as
// they stream, and resumed with Range requests when a connection breaks.
// Errors of the registry's wire format go through registry/errcode, so
// errors.Is(err, errdef.ErrNotFound) holds for a missing blob, manifest or
// tag alike.
package client

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/distribution/reference"

	"github.com/lading-oci/lading/content"
	"github.com/lading-oci/lading/errdef"
	"github.com/lading-oci/lading/image"
	"github.com/lading-oci/lading/ref"
	"github.com/lading-oci/lading/registry/credentials"
	"github.com/lading-oci/lading/registry/errcode"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Client talks to registries. Create one with New and share it.
type Client struct {
	cfg       config
	http      *http.Client // registry requests, through the whole stack
	tokenHTTP *http.Client // token server requests (no registry auth)
	tr        *transports
	tokens    tokenCache
	log       *slog.Logger

	mu     sync.Mutex
	hosts  map[string]*host
	warned sync.Map // warnings already logged
}

// config is what the options set.
type config struct {
	lookup        CredentialLookup
	perRepo       bool
	plain         map[string]bool
	insecure      map[string]bool
	roots         map[string]*x509.CertPool
	base          http.RoundTripper
	userAgent     string
	log           *slog.Logger
	retry         retryPolicy
	realms        map[string][]string
	anyRealm      bool
	passwordGrant bool
	clientID      string
	maxManifest   int64
	chunkSize     int64
	chunkedAbove  int64
	verifyFetch   bool
	accept        []string
	err           error
}

// Option configures a Client.
type Option func(*config)

// WithCredentials sets the function that finds the credentials for a
// registry; it is called once per registry. Without it (or
// WithCredentialLookup) every request is anonymous.
func WithCredentials(f CredentialFunc) Option {
	return func(c *config) {
		c.perRepo = false
		c.lookup = func(ctx context.Context, registry, _ string) (credentials.Credential, string, error) {
			cred, err := f(ctx, registry)
			return cred, "", err
		}
	}
}

// WithCredentialLookup sets the function that finds the credentials for a
// repository of a registry and says where they came from (for messages);
// it is called once per registry and repository. credentials.Store's Lookup
// fits, with its Source's String.
func WithCredentialLookup(f CredentialLookup) Option {
	return func(c *config) { c.lookup, c.perRepo = f, true }
}

// WithPlainHTTP makes the client speak plain HTTP to these hosts
// ("host:port" as in references).
func WithPlainHTTP(hosts ...string) Option {
	return func(c *config) {
		for _, h := range hosts {
			c.plain[strings.ToLower(h)] = true
		}
	}
}

// WithInsecureSkipVerify makes the client accept any TLS certificate from
// these hosts. Traffic is still encrypted, but not authenticated.
func WithInsecureSkipVerify(hosts ...string) Option {
	return func(c *config) {
		for _, h := range hosts {
			c.insecure[strings.ToLower(h)] = true
		}
	}
}

// WithCA adds PEM-encoded CA certificates that host's TLS certificate may
// chain to, besides the system roots. Certificates that do not parse make
// New fail.
func WithCA(host string, pemCerts []byte) Option {
	return func(c *config) {
		host = strings.ToLower(host)
		pool, ok := c.roots[host]
		if !ok {
			sys, err := x509.SystemCertPool()
			if err != nil || sys == nil {
				sys = x509.NewCertPool()
			}
			pool = sys
			c.roots[host] = pool
		}
		if !pool.AppendCertsFromPEM(pemCerts) {
			c.err = fmt.Errorf("CA for %s: %w: no PEM certificate found", host, errdef.ErrInvalid)
		}
	}
}

// WithTransport sets the base transport under the client's own stack (for
// a proxy, a custom dialer, or tests). TLS options apply only when it is an
// *http.Transport.
func WithTransport(rt http.RoundTripper) Option {
	return func(c *config) { c.base = rt }
}

// WithUserAgent sets the User-Agent header.
func WithUserAgent(ua string) Option {
	return func(c *config) { c.userAgent = ua }
}

// WithLogger sets where requests, retries and warnings are logged (at debug
// and warning levels). The default discards.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) {
		if l != nil {
			c.log = l
		}
	}
}

// WithRetry sets how many times a request is tried in all (1: no retries)
// and the first and largest wait between tries. The default is 5 tries,
// 250 ms doubling up to 10 s. A Retry-After longer than a minute is not
// waited for: the error is returned.
func WithRetry(attempts int, first, largest time.Duration) Option {
	return func(c *config) {
		c.retry.attempts = max(attempts, 1)
		c.retry.base = max(first, 0)
		c.retry.max = max(largest, first)
	}
}

// WithTokenRealms allows the credentials of registry to be sent to token
// servers on these hosts ("*" for any). By default they go only to a realm
// on the registry's own host (and docker.io's to auth.docker.io).
func WithTokenRealms(registry string, realmHosts ...string) Option {
	return func(c *config) {
		registry = strings.ToLower(registry)
		c.realms[registry] = append(c.realms[registry], realmHosts...)
	}
}

// WithPasswordGrant makes bearer authentication with a username and
// password use the OAuth2 password grant (a POST) instead of the GET flow
// with basic credentials; token servers that do not take the POST get the
// GET. clientID names the client to the token server (default "lading").
func WithPasswordGrant(clientID string) Option {
	return func(c *config) {
		c.passwordGrant = true
		if clientID != "" {
			c.clientID = clientID
		}
	}
}

// WithMaxManifestBytes sets the largest manifest read or pushed (default
// content.DefaultMaxMetadataBytes, 4 MiB).
func WithMaxManifestBytes(n int64) Option {
	return func(c *config) {
		if n > 0 {
			c.maxManifest = n
		}
	}
}

// WithChunkSize sets the size of the chunks an Ingest writer uploads
// (default 8 MiB; raised to the registry's OCI-Chunk-Min-Length).
func WithChunkSize(n int64) Option {
	return func(c *config) {
		if n > 0 {
			c.chunkSize = n
		}
	}
}

// WithChunkedPush makes Push upload blobs larger than n bytes in chunks
// instead of one PUT, for registries behind proxies that limit request
// sizes. 0 (the default) always pushes in one request.
func WithChunkedPush(n int64) Option {
	return func(c *config) { c.chunkedAbove = max(n, 0) }
}

// WithVerifyOnFetch sets whether readers from Fetch check a blob's size
// and digest as they stream (the default). A caller that writes the blob
// into a store that verifies what it is given may turn it off to hash once.
// Sizes are always checked.
func WithVerifyOnFetch(v bool) Option {
	return func(c *config) { c.verifyFetch = v }
}

// WithManifestMediaTypes sets the Accept list for manifests (default: the
// OCI manifest and index, and Docker's schema 2 manifest and list). Schema 1
// is never asked for unless listed here.
func WithManifestMediaTypes(types ...string) Option {
	return func(c *config) { c.accept = append([]string(nil), types...) }
}

// DefaultManifestMediaTypes are the manifest types asked for by default.
var DefaultManifestMediaTypes = []string{
	ocispec.MediaTypeImageManifest,
	ocispec.MediaTypeImageIndex,
	image.MediaTypeDockerManifest,
	image.MediaTypeDockerManifestList,
}

// New returns a Client. It fails only for options that cannot be applied
// (a CA that does not parse).
func New(opts ...Option) (*Client, error) {
	cfg := config{
		plain:       map[string]bool{},
		insecure:    map[string]bool{},
		roots:       map[string]*x509.CertPool{},
		realms:      map[string][]string{"docker.io": {"auth.docker.io"}, ref.DockerHubHost: {"auth.docker.io"}},
		userAgent:   defaultUserAgent(),
		log:         slog.New(slog.DiscardHandler),
		retry:       retryPolicy{attempts: 5, base: 250 * time.Millisecond, max: 10 * time.Second, maxAfter: time.Minute},
		clientID:    "lading",
		maxManifest: content.DefaultMaxMetadataBytes,
		chunkSize:   8 << 20,
		verifyFetch: true,
		accept:      DefaultManifestMediaTypes,
	}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.err != nil {
		return nil, fmt.Errorf("registry client: %w", cfg.err)
	}
	c := &Client{cfg: cfg, log: cfg.log, hosts: map[string]*host{}}
	var base http.RoundTripper
	switch b := cfg.base.(type) {
	case nil:
		c.tr = &transports{base: newBaseTransport(), settings: c.tlsFor}
		base = c.tr
	case *http.Transport:
		c.tr = &transports{base: b, settings: c.tlsFor}
		base = c.tr
	default:
		base = b
	}
	logged := logging(base, cfg.log)
	c.tokenHTTP = &http.Client{Transport: userAgent(retrying(logged, cfg.retry, cfg.log), cfg.userAgent)}
	c.http = &http.Client{
		Transport: userAgent(retrying(c.authTransport(logged), cfg.retry, cfg.log), cfg.userAgent),
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 10 {
				return fmt.Errorf("%w: more than 10 redirects", errdef.ErrInvalid)
			}
			return nil
		},
	}
	return c, nil
}

func defaultUserAgent() string {
	v := "devel"
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Path == "github.com/lading-oci/lading" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v = bi.Main.Version
		}
	}
	return "lading/" + v
}

// Close closes idle connections.
func (c *Client) Close() error {
	if c.tr != nil {
		c.tr.closeIdle()
	}
	return nil
}

func (c *Client) tlsFor(hostport string) hostTLS {
	h := strings.ToLower(hostport)
	var s hostTLS
	for _, name := range c.namesOf(h) {
		s.insecure = s.insecure || c.cfg.insecure[name]
		if p := c.cfg.roots[name]; p != nil {
			s.roots = p
		}
	}
	return s
}

// namesOf returns the names a host's settings may be given under: the
// contacted host, and the registry name it serves.
func (c *Client) namesOf(api string) []string {
	if api == ref.DockerHubHost {
		return []string{api, ref.DefaultRegistry}
	}
	return []string{api}
}

// host is what the client knows of one registry host.
type host struct {
	name string // as in references: "docker.io", "localhost:5000"
	api  string // host[:port] contacted: "registry-1.docker.io"

	probeMu sync.Mutex // one probe at a time

	mu        sync.Mutex
	scheme    string // "https" or "http" once known
	challenge *Challenge
	refresh   string // the newest refresh token a token server handed out

	credMu sync.Mutex
	creds  map[string]credInfo // by repository ("" for the host)
}

func (h *host) currentChallenge() *Challenge {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.challenge
}

func (h *host) setChallenge(ch *Challenge) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.challenge = ch
}

func (h *host) getScheme() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.scheme
}

func (h *host) setRefreshToken(r string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.refresh = r
}

func (h *host) getRefreshToken() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.refresh
}

// checkRegistry validates a registry host name: host[:port], an IPv4
// address, or a bracketed IPv6 address, as the reference grammar has it.
func checkRegistry(name string) error {
	named, err := reference.WithName(name + "/x")
	if err != nil || reference.Domain(named) != name {
		return fmt.Errorf("registry %q: %w: want host[:port]", name, errdef.ErrInvalid)
	}
	return nil
}

// host returns the state of registry name, creating it.
func (c *Client) host(name string) (*host, error) {
	if err := checkRegistry(name); err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if h, ok := c.hosts[name]; ok {
		return h, nil
	}
	h := &host{name: name, api: ref.RegistryHost(name)}
	c.hosts[name] = h
	return h, nil
}

func (c *Client) isPlain(h *host) bool {
	return c.cfg.plain[strings.ToLower(h.name)] || c.cfg.plain[strings.ToLower(h.api)]
}

// target is what one request is for: its registry host and the scopes it
// needs. The auth transport records on it what it did, for error messages.
type target struct {
	host   *host
	repo   string // the repository, for credentials kept per repository
	scopes []string
	noAuth bool // probe: learn the challenge, do not answer it

	mu         sync.Mutex
	authScopes []string
	realm      string
	source     string
	notes      string
}

func (t *target) setAuth(scopes []string, realm, source string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.authScopes, t.realm, t.source = scopes, realm, source
}

func (t *target) note(s string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.notes = s
}

func (t *target) authInfo() (scopes []string, realm, source, note string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	scopes = t.authScopes
	if scopes == nil {
		scopes = t.scopes
	}
	source = t.source
	if source == "" {
		source = "anonymous"
	}
	return scopes, t.realm, source, t.notes
}

// request is one exchange with a registry.
type request struct {
	method string
	path   string   // below /v2/, when u is nil
	u      *url.URL // an absolute URL (upload locations, next pages)
	query  url.Values
	header http.Header
	body   io.Reader
	length int64 // of body; -1 unknown
	// getBody, when set, opens the body again for a retry or redirect.
	getBody   func() (io.ReadCloser, error)
	scopes    []string
	repo      string // the repository the request is for
	retryable bool   // a POST that may be sent again
	noRetry   bool
	noAuth    bool
}

// do sends r to h and returns the response whatever its status, with the
// target the request was sent for.
func (c *Client) do(ctx context.Context, h *host, r request) (*http.Response, *target, error) {
	if err := c.prepare(ctx, h); err != nil {
		if cl, ok := r.body.(io.Closer); ok {
			cl.Close() // the request would have closed it
		}
		return nil, nil, err
	}
	return c.send(ctx, h, h.getScheme(), r)
}

func (c *Client) send(ctx context.Context, h *host, scheme string, r request) (*http.Response, *target, error) {
	u := r.u
	if u == nil {
		u = &url.URL{Scheme: scheme, Host: h.api, Path: "/v2/" + r.path}
	}
	if len(r.query) > 0 {
		u2 := *u
		q := u2.Query()
		for k, vs := range r.query {
			for _, v := range vs {
				q.Add(k, v)
			}
		}
		u2.RawQuery = q.Encode()
		u = &u2
	}
	t := &target{host: h, repo: r.repo, scopes: r.scopes, noAuth: r.noAuth}
	ctx = context.WithValue(ctx, keyTarget, t)
	if r.retryable {
		ctx = markRetryable(ctx)
	}
	if r.noRetry {
		ctx = context.WithValue(ctx, keyNoRetry, true)
	}
	var body io.Reader = http.NoBody
	if r.body != nil {
		body = r.body
	}
	req, err := http.NewRequestWithContext(ctx, r.method, u.String(), body)
	if err != nil {
		if cl, ok := r.body.(io.Closer); ok {
			cl.Close()
		}
		return nil, t, fmt.Errorf("%w: %v", errdef.ErrInvalid, err)
	}
	for k, vs := range r.header {
		req.Header[k] = vs
	}
	if r.body != nil {
		req.ContentLength = r.length
		if r.length == 0 {
			if cl, ok := r.body.(io.Closer); ok && r.body != http.NoBody {
				cl.Close() // nothing to send; the request would have closed it
			}
			req.Body = http.NoBody
		}
		req.GetBody = r.getBody
		if r.getBody == nil && r.length != 0 {
			// A stream cannot be sent twice. Ask the registry to look at
			// the headers first, so a 401 (a token that ran out mid-transfer)
			// comes before the body is read and the request can be sent
			// again with a fresh token.
			req.Header.Set("Expect", "100-continue")
		}
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, t, err
	}
	c.warnings(ctx, h, resp.Header.Values("Warning"))
	return resp, t, nil
}

// warnings logs the registry's Warning headers (code 299) once each, as the
// specification asks clients to report them.
func (c *Client) warnings(ctx context.Context, h *host, values []string) {
	for _, v := range values {
		code, rest, ok := strings.Cut(strings.TrimSpace(v), " ")
		if !ok || code != "299" {
			continue
		}
		_, text, _ := strings.Cut(strings.TrimSpace(rest), " ")
		text = strings.Trim(strings.TrimSpace(text), `"`)
		if len(text) > 4096 {
			text = text[:4096]
		}
		if _, seen := c.warned.LoadOrStore(h.name+"\x00"+text, true); !seen {
			c.log.WarnContext(ctx, "registry warning", "registry", h.name, "warning", text)
		}
	}
}

// failure turns an unsuccessful response into an error, closing its body:
// a *errcode.ResponseError, inside an *AuthError for 401 and 403.
func failure(t *target, resp *http.Response) error {
	re := errcode.FromResponse(resp)
	resp.Body.Close()
	if t != nil && (resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden) {
		return authFailure(t, re)
	}
	return re
}

// prepare finds out how to speak to h (HTTPS or plain HTTP) with one GET
// /v2/, which also tells which authentication it wants.
func (c *Client) prepare(ctx context.Context, h *host) error {
	if h.getScheme() != "" {
		return nil
	}
	h.probeMu.Lock()
	defer h.probeMu.Unlock()
	if h.getScheme() != "" {
		return nil
	}
	schemes := []string{"https"}
	switch {
	case c.isPlain(h):
		schemes = []string{"http"}
	case isLoopback(h.api):
		schemes = []string{"https", "http"}
	}
	var lastErr error
	for i, scheme := range schemes {
		resp, _, err := c.send(ctx, h, scheme, request{method: http.MethodGet, noAuth: true})
		if err != nil {
			lastErr = err
			if i+1 < len(schemes) && fallBackToPlain(err, h.api) {
				c.log.DebugContext(ctx, "registry speaks plain HTTP", "host", h.api)
				continue
			}
			break
		}
		drain(resp.Body)
		if ch := pickChallenge(ParseChallenges(resp.Header.Values("WWW-Authenticate"))); ch != nil {
			h.setChallenge(ch)
		}
		h.mu.Lock()
		h.scheme = scheme
		h.mu.Unlock()
		return nil
	}
	return fmt.Errorf("registry %s: %w", h.name, unavailable(lastErr))
}

// fallBackToPlain reports whether an HTTPS attempt failed in a way that
// shows the loopback server speaks plain HTTP.
func fallBackToPlain(err error, api string) bool {
	if strings.Contains(err.Error(), http.ErrSchemeMismatch.Error()) {
		return true
	}
	if !strings.Contains(api, ":") || strings.HasSuffix(api, "]") {
		// No port: HTTPS went to 443, plain HTTP would go to 80.
		return strings.Contains(err.Error(), "connection refused")
	}
	return false
}

// unavailable marks a transport failure as errdef.ErrUnavailable, keeping
// errors that already have a category (auth, context).
func unavailable(err error) error {
	if err == nil {
		return errdef.ErrUnavailable
	}
	for _, cat := range []error{errdef.ErrUnauthorized, errdef.ErrDenied, errdef.ErrTooManyRequests, context.Canceled, context.DeadlineExceeded} {
		if errors.Is(err, cat) {
			return err
		}
	}
	return fmt.Errorf("%w: %w", errdef.ErrUnavailable, err)
}

// Ping checks that registry implements the distribution API (GET /v2/
// answers 200) and that the client's credentials are accepted there.
func (c *Client) Ping(ctx context.Context, registry string) error {
	h, err := c.host(registry)
	if err != nil {
		return err
	}
	resp, t, err := c.do(ctx, h, request{method: http.MethodGet})
	if err != nil {
		return fmt.Errorf("ping %s: %w", registry, unavailable(err))
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusOK:
		return nil
	case resp.StatusCode == http.StatusNotFound:
		drain(resp.Body)
		return fmt.Errorf("ping %s: %w: GET /v2/ answered 404: not a registry of the distribution API", registry, errdef.ErrUnsupported)
	}
	return fmt.Errorf("ping %s: %w", registry, failure(t, resp))
}

// Catalog lists the repositories of registry, in pages passed to fn (the
// registry's pages, following its Link headers). Many registries restrict
// or disable the catalog; their refusal is returned.
func (c *Client) Catalog(ctx context.Context, registry string, fn func(repos []string) error) error {
	h, err := c.host(registry)
	if err != nil {
		return err
	}
	return c.paginate(ctx, h, "catalog of "+registry, request{
		method: http.MethodGet, path: "_catalog", query: url.Values{"n": {fmt.Sprint(content.TagPageSize)}},
		scopes: []string{"registry:catalog:*"},
	}, func(data []byte) (string, int, error) {
		var page struct {
			Repositories []string `json:"repositories"`
		}
		if err := json.Unmarshal(data, &page); err != nil {
			return "", 0, fmt.Errorf("catalog of %s: %w: %v", registry, errdef.ErrInvalid, err)
		}
		if len(page.Repositories) == 0 {
			return "", 0, nil
		}
		return page.Repositories[len(page.Repositories)-1], len(page.Repositories), fn(page.Repositories)
	})
}

// maxPageBytes caps one page of a tag list or catalog.
const maxPageBytes = 8 << 20

// paginate fetches a listing and its following pages: by Link header, or,
// when a full page came without one, by last=. page decodes one body,
// passes it on, and returns the last entry ("" when the page was empty) and
// the number of entries.
func (c *Client) paginate(ctx context.Context, h *host, what string, r request, page func(data []byte) (string, int, error)) error {
	n := 0
	if v := r.query.Get("n"); v != "" {
		fmt.Sscan(v, &n)
	}
	prevLast := ""
	for pages := 0; ; pages++ {
		if pages > 100000 {
			return fmt.Errorf("%s: %w: more than 100000 pages", what, errdef.ErrInvalid)
		}
		resp, t, err := c.do(ctx, h, r)
		if err != nil {
			return fmt.Errorf("%s: %w", what, unavailable(err))
		}
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s: %w", what, failure(t, resp))
		}
		data, err := readCapped(resp, maxPageBytes)
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		last, count, err := page(data)
		if err != nil {
			return err
		}
		if last == "" || (prevLast != "" && last <= prevLast) {
			return nil // empty, or a registry that ignores last= and repeats itself
		}
		prevLast = last
		if next := NextLink(resp.Request.URL, resp.Header.Values("Link")); next != nil {
			if next.Host != "" && next.Host != h.api {
				return fmt.Errorf("%s: %w: the next page is on another host, %s", what, errdef.ErrInvalid, next.Host)
			}
			r.u, r.path, r.query = next, "", nil
			continue
		}
		if n == 0 || count < n {
			return nil
		}
		// A full page without a Link header: ask for what follows last.
		q := url.Values{"n": {fmt.Sprint(n)}, "last": {last}}
		if r.u != nil {
			u := *r.u
			u.RawQuery = ""
			r.u = &u
		}
		r.query = q
	}
}

// readCapped reads a response body of at most max bytes, refusing a longer
// one (by its Content-Length before reading, when it has one) with
// errdef.ErrTooLarge. It closes the body.
func readCapped(resp *http.Response, max int64) ([]byte, error) {
	defer resp.Body.Close()
	if resp.ContentLength > max {
		return nil, fmt.Errorf("%w: %d bytes exceeds the %d-byte limit", errdef.ErrTooLarge, resp.ContentLength, max)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, max+1))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errdef.ErrUnavailable, err)
	}
	if int64(len(data)) > max {
		return nil, fmt.Errorf("%w: more than the %d-byte limit", errdef.ErrTooLarge, max)
	}
	return data, nil
}
