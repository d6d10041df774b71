package client

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// roundTripperFunc adapts a function to http.RoundTripper.
type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// userAgent sets the User-Agent header of requests that have none.
func userAgent(next http.RoundTripper, ua string) http.RoundTripper {
	return roundTripperFunc(func(req *http.Request) (*http.Response, error) {
		if req.Header.Get("User-Agent") == "" {
			req = req.Clone(req.Context())
			req.Header.Set("User-Agent", ua)
		}
		return next.RoundTrip(req)
	})
}

// logging logs each exchange at debug level: method, URL (without
// credentials or query secrets), status, and time taken.
func logging(next http.RoundTripper, log *slog.Logger) http.RoundTripper {
	return roundTripperFunc(func(req *http.Request) (*http.Response, error) {
		if !log.Enabled(req.Context(), slog.LevelDebug) {
			return next.RoundTrip(req)
		}
		start := time.Now()
		resp, err := next.RoundTrip(req)
		attrs := []any{"method", req.Method, "url", redact(req), "duration", time.Since(start)}
		if err != nil {
			log.DebugContext(req.Context(), "registry request failed", append(attrs, "error", err)...)
			return resp, err
		}
		attrs = append(attrs, "status", resp.StatusCode)
		if resp.ContentLength >= 0 {
			attrs = append(attrs, "length", resp.ContentLength)
		}
		log.DebugContext(req.Context(), "registry request", attrs...)
		return resp, err
	})
}

// redact returns the request URL without user information and query (which
// may carry signed-URL secrets).
func redact(req *http.Request) string {
	if req.URL == nil {
		return ""
	}
	u := *req.URL
	u.User = nil
	if u.RawQuery != "" {
		u.RawQuery = "…"
	}
	return u.String()
}

// retryPolicy says how often and how long to retry.
type retryPolicy struct {
	attempts int           // total tries, at least 1
	base     time.Duration // first backoff
	max      time.Duration // backoff cap
	maxAfter time.Duration // longest Retry-After honoured
}

type ctxKey int

const (
	// keyRetryable marks a request that may be retried although its method
	// is not idempotent (a POST starting an upload).
	keyRetryable ctxKey = iota
	// keyNoRetry marks a request that must not be retried.
	keyNoRetry
	// keyTarget carries the *target a request is for.
	keyTarget
)

func markRetryable(ctx context.Context) context.Context {
	return context.WithValue(ctx, keyRetryable, true)
}

// retrying retries idempotent requests on connection errors, 429 and 5xx,
// with capped exponential backoff and jitter, honouring Retry-After.
func retrying(next http.RoundTripper, p retryPolicy, log *slog.Logger) http.RoundTripper {
	return roundTripperFunc(func(req *http.Request) (*http.Response, error) {
		if !retryable(req) {
			return next.RoundTrip(req)
		}
		for attempt := 1; ; attempt++ {
			resp, err := next.RoundTrip(req)
			if attempt >= p.attempts || !shouldRetry(req, resp, err) {
				return resp, err
			}
			wait := backoff(p, attempt)
			if resp != nil {
				if ra, ok := retryAfter(resp.Header.Get("Retry-After"), time.Now()); ok {
					if ra > p.maxAfter {
						return resp, err // the server asks for longer than we wait: report it
					}
					wait = max(ra, wait/4)
				}
			}
			if req.Body != nil && req.Body != http.NoBody {
				body, gerr := req.GetBody()
				if gerr != nil {
					return resp, err
				}
				req = req.Clone(req.Context())
				req.Body = body
			}
			if resp != nil {
				drain(resp.Body)
			}
			log.DebugContext(req.Context(), "registry request retried", "method", req.Method, "url", redact(req),
				"attempt", attempt, "wait", wait, "status", status(resp), "error", err)
			t := time.NewTimer(wait)
			select {
			case <-req.Context().Done():
				t.Stop()
				return nil, req.Context().Err()
			case <-t.C:
			}
		}
	})
}

func status(resp *http.Response) int {
	if resp == nil {
		return 0
	}
	return resp.StatusCode
}

func retryable(req *http.Request) bool {
	ctx := req.Context()
	if ctx.Value(keyNoRetry) != nil {
		return false
	}
	if req.Body != nil && req.Body != http.NoBody && req.GetBody == nil {
		return false
	}
	switch req.Method {
	case http.MethodGet, http.MethodHead, http.MethodPut, http.MethodDelete, http.MethodOptions:
		return true
	}
	return ctx.Value(keyRetryable) != nil
}

func shouldRetry(req *http.Request, resp *http.Response, err error) bool {
	if req.Context().Err() != nil {
		return false
	}
	if err != nil {
		var ae *AuthError
		var ue x509.UnknownAuthorityError
		var he x509.HostnameError
		var ce *tls.CertificateVerificationError
		var re tls.RecordHeaderError
		switch {
		case errors.As(err, &ae), errors.As(err, &ue), errors.As(err, &he), errors.As(err, &ce),
			errors.As(err, &re), errors.Is(err, http.ErrSchemeMismatch):
			return false
		}
		var dnsErr *net.DNSError
		if errors.As(err, &dnsErr) && dnsErr.IsNotFound {
			return false
		}
		return true
	}
	switch resp.StatusCode {
	case http.StatusTooManyRequests, http.StatusInternalServerError, http.StatusBadGateway,
		http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// backoff is base·2^(attempt-1), capped, with up to 25% jitter.
func backoff(p retryPolicy, attempt int) time.Duration {
	d := p.base
	for i := 1; i < attempt && d < p.max; i++ {
		d *= 2
	}
	d = min(d, p.max)
	if d > 0 {
		d -= time.Duration(rand.Int64N(int64(d)/4 + 1))
	}
	return d
}

// retryAfter parses a Retry-After value: delay-seconds or an HTTP date.
func retryAfter(v string, now time.Time) (time.Duration, bool) {
	if v == "" {
		return 0, false
	}
	if s, err := strconv.ParseInt(v, 10, 64); err == nil {
		if s < 0 {
			return 0, false
		}
		if s > 1<<31 {
			s = 1 << 31
		}
		return time.Duration(s) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

// drain reads a little of a body we are done with so the connection can be
// reused, and closes it.
func drain(body io.ReadCloser) {
	if body == nil {
		return
	}
	_, _ = io.CopyN(io.Discard, body, 64<<10)
	body.Close()
}

// transports routes each request to the http.Transport for its host: the
// shared one, or one with the host's own TLS settings.
type transports struct {
	base     *http.Transport
	mu       sync.Mutex
	perHost  map[string]*http.Transport
	settings func(host string) hostTLS
}

// hostTLS is what a host's TLS needs beyond the shared transport.
type hostTLS struct {
	insecure bool
	roots    *x509.CertPool
}

func (t *transports) RoundTrip(req *http.Request) (*http.Response, error) {
	return t.forHost(req.URL.Host).RoundTrip(req)
}

func (t *transports) forHost(host string) http.RoundTripper {
	s := t.settings(host)
	if !s.insecure && s.roots == nil {
		return t.base
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if tr, ok := t.perHost[host]; ok {
		return tr
	}
	tr := t.base.Clone()
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if tr.TLSClientConfig != nil {
		cfg = tr.TLSClientConfig.Clone()
	}
	cfg.InsecureSkipVerify = s.insecure
	if s.roots != nil {
		cfg.RootCAs = s.roots
	}
	tr.TLSClientConfig = cfg
	if t.perHost == nil {
		t.perHost = map[string]*http.Transport{}
	}
	t.perHost[host] = tr
	return tr
}

func (t *transports) closeIdle() {
	t.base.CloseIdleConnections()
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, tr := range t.perHost {
		tr.CloseIdleConnections()
	}
}

// newBaseTransport is HTTP/1.1 with keep-alive, enough idle connections per
// host for concurrent blob transfers, and large buffers.
func newBaseTransport() *http.Transport {
	return &http.Transport{
		Proxy: http.ProxyFromEnvironment,
		DialContext: (&net.Dialer{
			Timeout:   30 * time.Second,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		TLSClientConfig:       &tls.Config{MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout:   15 * time.Second,
		ResponseHeaderTimeout: 5 * time.Minute,
		ExpectContinueTimeout: time.Second,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   32,
		IdleConnTimeout:       90 * time.Second,
		WriteBufferSize:       256 << 10,
		ReadBufferSize:        256 << 10,
		ForceAttemptHTTP2:     false,
	}
}
