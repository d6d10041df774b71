// Package ref parses and formats image references: where an image lives and
// which one it is.
//
// Four forms are understood, with the prefixes of skopeo's transports:
//
//	oci:DIR[:TAG][@DIGEST]            an OCI image layout directory
//	oci-archive:FILE[:TAG][@DIGEST]   a tar archive of an OCI image layout
//	docker-archive:FILE[:REF|:@N]     a `docker save` archive, optionally naming
//	                                  an image by reference or by index
//	[docker://][REGISTRY/]REPO[:TAG][@DIGEST]
//	                                  an image in a registry, normalised as the
//	                                  docker CLI does
//
// A prefix always wins: "oci:foo" is the layout directory foo, never the
// Docker Hub image "oci" with tag "foo" (write docker.io/library/oci:foo or
// docker://oci:foo for that).
//
// # Layout paths, tags and digests
//
// For oci: and oci-archive:, a trailing "@algorithm:encoded" is a digest, and
// then the text after the last colon is a tag unless it contains '/' or '\',
// in which case it is part of the path ("oci:C:\images\x" and
// "oci:/mnt/a:b/c" are plain paths). A tag must match
// [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}. A directory whose name itself ends in
// ":word" can be named by giving a tag as well: "oci:./data:v1:latest" is the
// directory ./data:v1 with tag latest.
//
// For docker-archive:, the file name ends at the first colon (a reference
// such as busybox:1.36 contains colons of its own), so the file name cannot
// contain one.
//
// # Registry references
//
// The registry is the first path component when it contains '.' or ':', is
// "localhost", or has an uppercase letter; otherwise it is docker.io, where
// single-component names gain the "library/" prefix. index.docker.io is
// written docker.io. Repository components must match the distribution
// specification's grammar (lowercase). A reference with neither tag nor
// digest gets the tag "latest". String returns the fully qualified form
// ("docker.io/library/busybox:latest"), without the docker:// prefix.
package ref

import (
	// Register the hashes go-digest validates digests of.
	_ "crypto/sha256"
	_ "crypto/sha512"
	"fmt"
	"strconv"
	"strings"

	"github.com/opencontainers/go-digest"

	"github.com/lading-oci/lading/errdef"
)

// Scheme says where an image lives.
type Scheme string

// Schemes.
const (
	// SchemeRegistry is an image in a registry: [docker://]registry/repo.
	SchemeRegistry Scheme = "docker"
	// SchemeOCI is an OCI image layout directory: oci:DIR.
	SchemeOCI Scheme = "oci"
	// SchemeOCIArchive is a tar archive of an OCI image layout: oci-archive:FILE.
	SchemeOCIArchive Scheme = "oci-archive"
	// SchemeDockerArchive is a `docker save` archive: docker-archive:FILE.
	SchemeDockerArchive Scheme = "docker-archive"
)

// Defaults applied to registry references.
const (
	DefaultRegistry = "docker.io"
	DefaultTag      = "latest"
)

const (
	maxTagLength  = 128
	maxNameLength = 255
)

// Reference is a parsed image reference. The zero value is not a valid
// reference; obtain one from Parse. References are comparable with ==.
type Reference struct {
	scheme Scheme
	// path is the directory or file of the layout and archive schemes.
	path string
	// registry and repository name a registry image, or the image named
	// inside a docker-archive.
	registry   string
	repository string
	tag        string
	digest     digest.Digest
	// index is the image's position in a docker-archive, plus one; 0 when
	// absent.
	index int
}

// Scheme returns where the image lives.
func (r Reference) Scheme() Scheme { return r.scheme }

// Path returns the layout directory or archive file of the oci, oci-archive
// and docker-archive schemes, "" for a registry reference.
func (r Reference) Path() string { return r.path }

// Registry returns the registry host (with port, if any) of a registry
// reference, or of the image named in a docker-archive reference; "" when
// there is none.
func (r Reference) Registry() string { return r.registry }

// Repository returns the repository of a registry reference ("library/busybox"),
// or of the image named in a docker-archive reference; "" when there is none.
func (r Reference) Repository() string { return r.repository }

// Name returns registry/repository, or "" when the reference names no
// repository.
func (r Reference) Name() string {
	if r.repository == "" {
		return ""
	}
	return r.registry + "/" + r.repository
}

// Tag returns the tag, "" when there is none. For the layout schemes the tag
// is the org.opencontainers.image.ref.name annotation of an index.json entry.
func (r Reference) Tag() string { return r.tag }

// Digest returns the digest, "" when there is none.
func (r Reference) Digest() digest.Digest { return r.digest }

// SourceIndex returns the position of the image in a docker-archive given as
// docker-archive:FILE:@N.
func (r Reference) SourceIndex() (int, bool) { return r.index - 1, r.index > 0 }

// String formats the reference so that Parse returns it unchanged.
func (r Reference) String() string {
	switch r.scheme {
	case SchemeRegistry:
		return r.registryString()
	case SchemeOCI, SchemeOCIArchive:
		s := string(r.scheme) + ":" + r.path
		if r.tag != "" {
			s += ":" + r.tag
		}
		if r.digest != "" {
			s += "@" + string(r.digest)
		}
		return s
	case SchemeDockerArchive:
		s := string(r.scheme) + ":" + r.path
		switch {
		case r.repository != "":
			s += ":" + r.registryString()
		case r.index > 0:
			s += ":@" + strconv.Itoa(r.index-1)
		}
		return s
	}
	return ""
}

func (r Reference) registryString() string {
	s := r.registry + "/" + r.repository
	if r.tag != "" {
		s += ":" + r.tag
	}
	if r.digest != "" {
		s += "@" + string(r.digest)
	}
	return s
}

// WithTag returns a copy of r with its tag replaced; a digest is kept. A
// docker-archive reference must name an image to take a tag.
func (r Reference) WithTag(tag string) (Reference, error) {
	if !validTag(tag) {
		return Reference{}, fmt.Errorf("reference %s: tag %q: %w: want [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}", r, tag, errdef.ErrInvalid)
	}
	switch r.scheme {
	case SchemeRegistry, SchemeOCI, SchemeOCIArchive:
	case SchemeDockerArchive:
		if r.repository == "" {
			return Reference{}, fmt.Errorf("reference %s: %w: a tag needs an image name in a docker-archive reference", r, errdef.ErrInvalid)
		}
	default:
		return Reference{}, fmt.Errorf("reference: %w: zero Reference", errdef.ErrInvalid)
	}
	r.tag = tag
	return r, nil
}

// WithDigest returns a copy of r pinned to d; a tag is kept. docker-archive
// references cannot carry a digest.
func (r Reference) WithDigest(d digest.Digest) (Reference, error) {
	if err := d.Validate(); err != nil {
		return Reference{}, fmt.Errorf("reference %s: digest %q: %w: %v", r, d, errdef.ErrInvalid, err)
	}
	switch r.scheme {
	case SchemeRegistry, SchemeOCI, SchemeOCIArchive:
	case SchemeDockerArchive:
		return Reference{}, fmt.Errorf("reference %s: %w: docker-archive references cannot carry a digest", r, errdef.ErrInvalid)
	default:
		return Reference{}, fmt.Errorf("reference: %w: zero Reference", errdef.ErrInvalid)
	}
	r.digest = d
	return r, nil
}

// Parse parses a reference in one of the forms described in the package
// documentation. Errors match errdef.ErrInvalid and quote the input.
func Parse(s string) (Reference, error) {
	var r Reference
	var err error
	switch {
	case strings.HasPrefix(s, "docker://"):
		r, err = parseRegistry(strings.TrimPrefix(s, "docker://"))
	case strings.HasPrefix(s, "oci:"):
		r, err = parseLayout(SchemeOCI, strings.TrimPrefix(s, "oci:"))
	case strings.HasPrefix(s, "oci-archive:"):
		r, err = parseLayout(SchemeOCIArchive, strings.TrimPrefix(s, "oci-archive:"))
	case strings.HasPrefix(s, "docker-archive:"):
		r, err = parseDockerArchive(strings.TrimPrefix(s, "docker-archive:"))
	default:
		r, err = parseRegistry(s)
	}
	if err != nil {
		return Reference{}, fmt.Errorf("reference %q: %w: %s", s, errdef.ErrInvalid, err.Error())
	}
	return r, nil
}

// problem is a parse failure; Parse wraps it with the input and ErrInvalid.
type problem string

func (p problem) Error() string { return string(p) }

func problemf(format string, args ...any) error { return problem(fmt.Sprintf(format, args...)) }

// parseLayout parses DIR[:TAG][@DIGEST].
func parseLayout(scheme Scheme, s string) (Reference, error) {
	r := Reference{scheme: scheme}
	if i := strings.LastIndexByte(s, '@'); i >= 0 && looksLikeDigest(s[i+1:]) {
		d, err := parseDigest(s[i+1:])
		if err != nil {
			return Reference{}, err
		}
		r.digest = d
		s = s[:i]
	}
	// As skopeo does, the first colon ends the path: the tag may hold
	// colons and slashes (the ref.name grammar), the path may not hold a
	// colon.
	skip := 0
	if len(s) >= 3 && s[1] == ':' && (s[2] == '\\' || s[2] == '/') && ('a' <= s[0]|0x20 && s[0]|0x20 <= 'z') {
		skip = 2 // a Windows drive letter
	}
	if i := strings.IndexByte(s[skip:], ':'); i >= 0 {
		i += skip
		tag := s[i+1:]
		if !ValidLayoutTag(tag) {
			return Reference{}, problemf("invalid tag %q: a layout tag is an org.opencontainers.image.ref.name: letters and digits, joined by single separators -._:@+ (or --) and /, such as v1.2, team/app or 1.0-debug", tag)
		}
		r.tag = tag
		s = s[:i]
	}
	if s == "" {
		return Reference{}, problemf("missing %s path", scheme)
	}
	if strings.IndexByte(s, 0) >= 0 {
		return Reference{}, problemf("path contains a NUL byte")
	}
	r.path = s
	return r, nil
}

// parseDockerArchive parses FILE[:REF] or FILE:@N.
func parseDockerArchive(s string) (Reference, error) {
	file, rest, hasRest := strings.Cut(s, ":")
	if file == "" {
		return Reference{}, problemf("missing docker-archive file")
	}
	if strings.IndexByte(file, 0) >= 0 {
		return Reference{}, problemf("path contains a NUL byte")
	}
	r := Reference{scheme: SchemeDockerArchive, path: file}
	switch {
	case !hasRest:
	case strings.HasPrefix(rest, "@"):
		n := rest[1:]
		i, err := strconv.Atoi(n)
		if err != nil || i < 0 || n != strconv.Itoa(i) {
			return Reference{}, problemf("invalid image index %q: want a non-negative decimal number", n)
		}
		r.index = i + 1
	default:
		named, err := parseRegistry(rest)
		if err != nil {
			return Reference{}, err
		}
		if named.digest != "" {
			return Reference{}, problemf("docker-archive references cannot carry a digest")
		}
		r.registry, r.repository, r.tag = named.registry, named.repository, named.tag
	}
	return r, nil
}

// parseRegistry parses [REGISTRY/]REPO[:TAG][@DIGEST] with docker's
// normalisation.
func parseRegistry(s string) (Reference, error) {
	r := Reference{scheme: SchemeRegistry}
	name := s
	if i := strings.IndexByte(name, '@'); i >= 0 {
		d, err := parseDigest(name[i+1:])
		if err != nil {
			return Reference{}, err
		}
		r.digest = d
		name = name[:i]
	}
	if i := strings.LastIndexByte(name, ':'); i >= 0 && i > strings.LastIndexByte(name, '/') {
		tag := name[i+1:]
		if !validTag(tag) {
			return Reference{}, problemf("invalid tag %q: want [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}", tag)
		}
		r.tag = tag
		name = name[:i]
	}
	if name == "" {
		return Reference{}, problemf("missing repository name")
	}
	domain, repo := DefaultRegistry, name
	if i := strings.IndexByte(name, '/'); i >= 0 {
		first := name[:i]
		if strings.ContainsAny(first, ".:") || first == "localhost" || strings.ToLower(first) != first {
			domain, repo = first, name[i+1:]
		}
	}
	if domain == "index.docker.io" {
		domain = DefaultRegistry
	}
	if !validDomain(domain) {
		return Reference{}, problemf("invalid registry %q", domain)
	}
	if domain == DefaultRegistry && !strings.Contains(repo, "/") {
		repo = "library/" + repo
	}
	if !validRepository(repo) {
		if strings.ToLower(repo) != repo {
			return Reference{}, problemf("repository name %q must be lowercase", repo)
		}
		return Reference{}, problemf("invalid repository name %q: want lowercase components of letters and digits separated by '.', '_', '__' or dashes, joined by '/'", repo)
	}
	if n := len(domain) + 1 + len(repo); n > maxNameLength {
		return Reference{}, problemf("name is %d characters, more than %d", n, maxNameLength)
	}
	r.registry, r.repository = domain, repo
	if r.tag == "" && r.digest == "" {
		r.tag = DefaultTag
	}
	return r, nil
}

// looksLikeDigest reports whether s is meant as a digest: an algorithm name,
// a colon, and no further colon.
func looksLikeDigest(s string) bool {
	alg, enc, ok := strings.Cut(s, ":")
	if !ok || strings.ContainsAny(enc, ":/\\") {
		return false
	}
	return algorithmName(alg)
}

// algorithmName matches [a-z0-9]+([+._-][a-z0-9]+)*.
func algorithmName(s string) bool {
	if s == "" {
		return false
	}
	sep := true
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9':
			sep = false
		case c == '+' || c == '.' || c == '_' || c == '-':
			if sep {
				return false
			}
			sep = true
		default:
			return false
		}
	}
	return !sep
}

func parseDigest(s string) (digest.Digest, error) {
	d, err := digest.Parse(s)
	if err != nil {
		return "", problemf("invalid digest %q: %v", s, err)
	}
	return d, nil
}

// validTag matches [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}.
func validTag(s string) bool {
	if s == "" || len(s) > maxTagLength {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '_':
		case i > 0 && (c == '.' || c == '-'):
		default:
			return false
		}
	}
	return true
}

// validDomain matches host[:port], where host is a DNS name of
// letters, digits and inner dashes, or a bracketed IPv6 address.
func validDomain(s string) bool {
	host := s
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return false
		}
		inner := s[1:end]
		if inner == "" || strings.Trim(inner, "0123456789abcdefABCDEF:") != "" {
			return false
		}
		host, s = "", s[end+1:]
		if s != "" && s[0] != ':' {
			return false
		}
	} else if i := strings.IndexByte(s, ':'); i >= 0 {
		host, s = s[:i], s[i:]
	} else {
		s = ""
	}
	if s != "" {
		port := s[1:]
		if port == "" || strings.Trim(port, "0123456789") != "" {
			return false
		}
	}
	if host == "" {
		return true // bracketed IPv6 checked above
	}
	for _, label := range strings.Split(host, ".") {
		if label == "" || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

// validRepository matches the distribution specification's name grammar:
// [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*
func validRepository(s string) bool {
	for _, comp := range strings.Split(s, "/") {
		if !validComponent(comp) {
			return false
		}
	}
	return true
}

func validComponent(s string) bool {
	i := 0
	alnum := func() bool {
		start := i
		for i < len(s) && ('a' <= s[i] && s[i] <= 'z' || '0' <= s[i] && s[i] <= '9') {
			i++
		}
		return i > start
	}
	if !alnum() {
		return false
	}
	for i < len(s) {
		switch {
		case s[i] == '.':
			i++
		case strings.HasPrefix(s[i:], "__"):
			i += 2
		case s[i] == '_':
			i++
		case s[i] == '-':
			for i < len(s) && s[i] == '-' {
				i++
			}
		default:
			return false
		}
		if !alnum() {
			return false
		}
	}
	return true
}
