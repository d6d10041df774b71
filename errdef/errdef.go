// Package errdef holds the error categories that callers of lading branch on
// with errors.Is. Every package wraps these with context ("fetch sha256:…:
// not found"), so a caller can tell a missing blob from a corrupt one no
// matter which store or transport produced the error.
package errdef

import "errors"

var (
	// ErrNotFound means the named blob, manifest, tag or path does not exist.
	ErrNotFound = errors.New("not found")
	// ErrAlreadyExists means the object exists and was not replaced.
	ErrAlreadyExists = errors.New("already exists")
	// ErrDigestMismatch means content did not hash to the digest it was named by.
	ErrDigestMismatch = errors.New("digest mismatch")
	// ErrSizeMismatch means content was shorter or longer than its declared size.
	ErrSizeMismatch = errors.New("size mismatch")
	// ErrInvalid means a document, reference or argument broke a rule.
	ErrInvalid = errors.New("invalid")
	// ErrUnsupported means the input is well formed but lading does not handle it
	// (an unknown digest algorithm, a schema 1 manifest, an unknown media type).
	ErrUnsupported = errors.New("unsupported")
	// ErrUnavailable means a resource is temporarily unusable (a lock, a server).
	ErrUnavailable = errors.New("unavailable")
	// ErrTooLarge means input exceeded a size limit (metadata caps, bombs).
	ErrTooLarge = errors.New("too large")
	// ErrUnsafePath means an archive entry or path would reach outside its root.
	ErrUnsafePath = errors.New("unsafe path")
	// ErrUnauthorized means the request needs credentials, or the ones given
	// were not accepted (HTTP 401).
	ErrUnauthorized = errors.New("unauthorized")
	// ErrDenied means the credentials were accepted but do not grant the
	// access asked for (HTTP 403).
	ErrDenied = errors.New("denied")
	// ErrTooManyRequests means a server refused the request for its rate
	// (HTTP 429); retrying later may succeed.
	ErrTooManyRequests = errors.New("too many requests")
	// ErrClosed means an object was used after it was closed or ended (a
	// writer after Commit, Abort or Close).
	ErrClosed = errors.New("closed")
)

// What names the kind of object a NotFoundError is about.
type What string

// The kinds of objects lading reports missing.
const (
	WhatLayout     What = "layout"
	WhatTag        What = "tag"
	WhatBlob       What = "blob"
	WhatManifest   What = "manifest"
	WhatPlatform   What = "platform"
	WhatRepository What = "repository"
	WhatFile       What = "file"
)

// NotFoundError says what was not found, and where. It matches ErrNotFound
// with errors.Is; errors.As finds it for a caller that needs to know which
// kind of object was missing (a tag, not the layout).
type NotFoundError struct {
	What What
	// Name names the object: a tag, a digest, a path, a platform.
	Name string
	// In names where it was looked for (a layout directory, a repository);
	// it may be empty.
	In string
	// Detail adds what helps the user (the platforms an index offers).
	Detail string
}

// Error renders "tag "v1" not found in layout ./img: detail".
func (e *NotFoundError) Error() string {
	s := string(e.What)
	if e.Name != "" {
		s += " " + quoteName(e.What, e.Name)
	}
	s += " not found"
	if e.In != "" {
		s += " in " + e.In
	}
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	return s
}

// Is makes errors.Is(err, ErrNotFound) hold.
func (e *NotFoundError) Is(target error) bool { return target == ErrNotFound }

func quoteName(w What, name string) string {
	switch w {
	case WhatTag, WhatFile, WhatRepository:
		return `"` + name + `"`
	}
	return name
}
