// Package errcode holds the error codes of the OCI distribution
// specification and their wire form, shared by lading's registry client and
// server so both sides speak the same codes.
//
// A server answers a failed request with Write(w, err); a client turns a
// failed response into an error with FromResponse. Either way errors.Is
// matches the errdef category of the code (BLOB_UNKNOWN is
// errdef.ErrNotFound, UNAUTHORIZED errdef.ErrUnauthorized, ...), so callers
// branch the same way whether an error came from a layout on disk or from a
// registry.
package errcode

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/lading-oci/lading/errdef"
)

// Code is an error identifier from the distribution specification's table
// of error codes (uppercase letters and underscores).
type Code string

// The codes of the distribution specification, in its order (code-1 to
// code-14).
const (
	BlobUnknown         Code = "BLOB_UNKNOWN"
	BlobUploadInvalid   Code = "BLOB_UPLOAD_INVALID"
	BlobUploadUnknown   Code = "BLOB_UPLOAD_UNKNOWN"
	DigestInvalid       Code = "DIGEST_INVALID"
	ManifestBlobUnknown Code = "MANIFEST_BLOB_UNKNOWN"
	ManifestInvalid     Code = "MANIFEST_INVALID"
	ManifestUnknown     Code = "MANIFEST_UNKNOWN"
	NameInvalid         Code = "NAME_INVALID"
	NameUnknown         Code = "NAME_UNKNOWN"
	SizeInvalid         Code = "SIZE_INVALID"
	Unauthorized        Code = "UNAUTHORIZED"
	Denied              Code = "DENIED"
	Unsupported         Code = "UNSUPPORTED"
	TooManyRequests     Code = "TOOMANYREQUESTS"
)

// info is what lading knows of a code: its default message, the HTTP status
// a server answers with, and the errdef category a client maps it to.
type info struct {
	message  string
	status   int
	category error
}

var codes = map[Code]info{
	BlobUnknown:         {"blob unknown to registry", http.StatusNotFound, errdef.ErrNotFound},
	BlobUploadInvalid:   {"blob upload invalid", http.StatusBadRequest, errdef.ErrInvalid},
	BlobUploadUnknown:   {"blob upload unknown to registry", http.StatusNotFound, errdef.ErrNotFound},
	DigestInvalid:       {"provided digest did not match uploaded content", http.StatusBadRequest, errdef.ErrDigestMismatch},
	ManifestBlobUnknown: {"manifest references a manifest or blob unknown to registry", http.StatusBadRequest, errdef.ErrNotFound},
	ManifestInvalid:     {"manifest invalid", http.StatusBadRequest, errdef.ErrInvalid},
	ManifestUnknown:     {"manifest unknown to registry", http.StatusNotFound, errdef.ErrNotFound},
	NameInvalid:         {"invalid repository name", http.StatusBadRequest, errdef.ErrInvalid},
	NameUnknown:         {"repository name not known to registry", http.StatusNotFound, errdef.ErrNotFound},
	SizeInvalid:         {"provided length did not match content length", http.StatusBadRequest, errdef.ErrSizeMismatch},
	Unauthorized:        {"authentication required", http.StatusUnauthorized, errdef.ErrUnauthorized},
	Denied:              {"requested access to the resource is denied", http.StatusForbidden, errdef.ErrDenied},
	Unsupported:         {"the operation is unsupported", http.StatusMethodNotAllowed, errdef.ErrUnsupported},
	TooManyRequests:     {"too many requests", http.StatusTooManyRequests, errdef.ErrTooManyRequests},
}

// Known reports whether c is one of the specification's codes.
func (c Code) Known() bool {
	_, ok := codes[c]
	return ok
}

// Message is the specification's description of c ("" for an unknown code).
func (c Code) Message() string { return codes[c].message }

// Status is the HTTP status a server answers c with (500 for an unknown
// code). Handlers that need another status the specification allows (416
// for an out-of-order chunk, 413 for a manifest over the size limit) pass
// it to WriteStatus.
func (c Code) Status() int {
	if i, ok := codes[c]; ok {
		return i.status
	}
	return http.StatusInternalServerError
}

// Category is the errdef sentinel c maps to (nil for an unknown code).
func (c Code) Category() error { return codes[c].category }

// Error makes an error of code c with the default message.
func (c Code) Error() string { return string(c) + ": " + c.Message() }

// Is makes errors.Is(c, errdef.ErrX) follow the code's category.
func (c Code) Is(target error) bool {
	cat := c.Category()
	return cat != nil && cat == target
}

// WithMessage returns an Error of code c with message m.
func (c Code) WithMessage(format string, args ...any) Error {
	return Error{Code: c, Message: fmt.Sprintf(format, args...)}
}

// WithDetail returns an Error of code c with the default message and detail
// (any value that marshals to JSON).
func (c Code) WithDetail(detail any) Error {
	return Error{Code: c, Message: c.Message(), Detail: detail}
}

// Error is one entry of an error response body.
type Error struct {
	Code    Code   `json:"code"`
	Message string `json:"message,omitempty"`
	// Detail is unstructured JSON: decoded as a json.RawMessage, encoded as
	// whatever value it holds.
	Detail any `json:"detail,omitempty"`
}

// Error renders "CODE: message" (and the detail when it is a string).
func (e Error) Error() string {
	msg := e.Message
	if msg == "" {
		msg = e.Code.Message()
	}
	s := string(e.Code)
	if msg != "" {
		s += ": " + msg
	}
	switch d := e.Detail.(type) {
	case string:
		if d != "" {
			s += " (" + d + ")"
		}
	case json.RawMessage:
		if len(d) > 0 && len(d) <= 200 && string(d) != "null" {
			s += " (" + string(d) + ")"
		}
	}
	return s
}

// Is matches the errdef category of the code, and an Error of the same code.
func (e Error) Is(target error) bool {
	if t, ok := target.(Error); ok {
		return t.Code == e.Code
	}
	if t, ok := target.(Code); ok {
		return t == e.Code
	}
	return e.Code.Is(target)
}

// Errors is the body of an error response: {"errors": [...]}.
type Errors []Error

// Error joins the entries with "; ".
func (es Errors) Error() string {
	parts := make([]string, len(es))
	for i, e := range es {
		parts[i] = e.Error()
	}
	return strings.Join(parts, "; ")
}

// Unwrap returns the entries, so errors.Is and errors.As look at each.
func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// MarshalJSON writes the specification's envelope.
func (es Errors) MarshalJSON() ([]byte, error) {
	list := []Error(es)
	if list == nil {
		list = []Error{}
	}
	return json.Marshal(struct {
		Errors []Error `json:"errors"`
	}{list})
}

// UnmarshalJSON reads the specification's envelope.
func (es *Errors) UnmarshalJSON(data []byte) error {
	var env struct {
		Errors []struct {
			Code    Code            `json:"code"`
			Message string          `json:"message"`
			Detail  json.RawMessage `json:"detail"`
		} `json:"errors"`
	}
	if err := json.Unmarshal(data, &env); err != nil {
		return err
	}
	out := make(Errors, 0, len(env.Errors))
	for _, e := range env.Errors {
		var d any
		if len(e.Detail) > 0 && string(e.Detail) != "null" {
			d = e.Detail
		}
		out = append(out, Error{Code: e.Code, Message: e.Message, Detail: d})
	}
	*es = out
	return nil
}

// Unknown is the code of a server-side failure that none of the
// specification's codes describes. It is not one of the specification's
// codes; it is only sent with a 5xx status, whose body the specification
// leaves free.
const Unknown Code = "UNKNOWN"

// Write answers a request with err as an error response: the entries From
// finds, with the status of the first. The body is JSON.
func Write(w http.ResponseWriter, err error) {
	es := From(err)
	status := es[0].Code.Status()
	if es[0].Code == Unknown && errors.Is(err, errdef.ErrUnavailable) {
		status = http.StatusServiceUnavailable
	}
	WriteStatus(w, status, es)
}

// WriteStatus answers with status and the error entries es.
func WriteStatus(w http.ResponseWriter, status int, es Errors) {
	body, _ := json.Marshal(es)
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Content-Length", fmt.Sprint(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// From turns any error into error entries: the Errors, Error or Code it
// wraps; else one entry whose code follows err's errdef category
// (UNAUTHORIZED, DENIED, TOOMANYREQUESTS, DIGEST_INVALID, SIZE_INVALID,
// UNSUPPORTED); else one Unknown entry. The message is err's text. Handlers
// attach the specific code (BLOB_UNKNOWN or MANIFEST_UNKNOWN for a missing
// object) themselves, since a category alone cannot tell which applies.
func From(err error) Errors {
	var es Errors
	if errors.As(err, &es) && len(es) > 0 {
		return es
	}
	var e Error
	if errors.As(err, &e) {
		return Errors{e}
	}
	var c Code
	if errors.As(err, &c) {
		return Errors{{Code: c, Message: err.Error()}}
	}
	code := Unknown
	switch {
	case errors.Is(err, errdef.ErrUnauthorized):
		code = Unauthorized
	case errors.Is(err, errdef.ErrDenied):
		code = Denied
	case errors.Is(err, errdef.ErrTooManyRequests):
		code = TooManyRequests
	case errors.Is(err, errdef.ErrDigestMismatch):
		code = DigestInvalid
	case errors.Is(err, errdef.ErrSizeMismatch):
		code = SizeInvalid
	case errors.Is(err, errdef.ErrUnsupported):
		code = Unsupported
	}
	return Errors{{Code: code, Message: err.Error()}}
}

// MaxBodyBytes caps how much of an error response body FromResponse reads.
const MaxBodyBytes = 64 << 10

// ResponseError is a failed HTTP exchange with a registry: the request, the
// status, and the error entries the body carried (if it was the
// specification's JSON).
type ResponseError struct {
	Method     string
	URL        string
	StatusCode int
	Errors     Errors
	// Body is the start of a body that was not the specification's JSON.
	Body string
}

// Error renders "GET https://…: 404 Not Found: MANIFEST_UNKNOWN: …".
func (e *ResponseError) Error() string {
	s := fmt.Sprintf("%s %s: %d %s", e.Method, e.URL, e.StatusCode, http.StatusText(e.StatusCode))
	if len(e.Errors) > 0 {
		return s + ": " + e.Errors.Error()
	}
	if e.Body != "" {
		return s + ": " + e.Body
	}
	return s
}

// Unwrap returns the error entries.
func (e *ResponseError) Unwrap() []error { return e.Errors.Unwrap() }

// Is maps the status to an errdef category when no entry decides: 401
// ErrUnauthorized, 403 ErrDenied, 404 ErrNotFound, 413 ErrTooLarge, 429
// ErrTooManyRequests, 5xx ErrUnavailable; 400, 405 and 415 carry nothing
// beyond their entries.
func (e *ResponseError) Is(target error) bool {
	var cat error
	switch s := e.StatusCode; {
	case s == http.StatusUnauthorized:
		cat = errdef.ErrUnauthorized
	case s == http.StatusForbidden:
		cat = errdef.ErrDenied
	case s == http.StatusNotFound:
		cat = errdef.ErrNotFound
	case s == http.StatusRequestEntityTooLarge:
		cat = errdef.ErrTooLarge
	case s == http.StatusTooManyRequests:
		cat = errdef.ErrTooManyRequests
	case s == http.StatusMethodNotAllowed:
		cat = errdef.ErrUnsupported
	case s >= 500:
		cat = errdef.ErrUnavailable
	}
	return cat != nil && cat == target
}

// FromResponse reads a failed response's body (up to MaxBodyBytes) and
// returns a *ResponseError describing it. It does not close the body.
func FromResponse(resp *http.Response) *ResponseError {
	e := &ResponseError{StatusCode: resp.StatusCode}
	if resp.Request != nil {
		e.Method = resp.Request.Method
		if resp.Request.URL != nil {
			u := *resp.Request.URL
			u.User = nil
			e.URL = u.Redacted()
		}
	}
	if resp.Body == nil {
		return e
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, MaxBodyBytes))
	var es Errors
	if json.Unmarshal(body, &es) == nil && len(es) > 0 {
		e.Errors = es
		return e
	}
	text := strings.TrimSpace(string(body))
	if len(text) > 200 {
		text = text[:200] + "…"
	}
	if strings.Contains(resp.Header.Get("Content-Type"), "html") {
		text = ""
	}
	e.Body = text
	return e
}
