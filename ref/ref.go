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
// Registry references follow the reference grammar of
// github.com/distribution/reference, the package docker uses, with docker's
// normalisation: the registry is the first path component when it contains
// '.' or ':' (a port, or an IPv6 address such as [::1]:5000), is
// "localhost", or has an uppercase letter; otherwise it is docker.io, where
// single-component names gain the "library/" prefix ("alpine" is
// docker.io/library/alpine:latest). index.docker.io is written docker.io;
// Host gives the host that serves docker.io's API, registry-1.docker.io.
// Repository components must be lowercase. A reference with neither tag nor
// digest gets the tag "latest". String returns the fully qualified form
// ("docker.io/library/busybox:latest"), without the docker:// prefix.
//
// A string without a scheme that is written as a path ("./img", "/srv/img")
// is refused with advice to write oci:./img; LayoutHint gives the same
// advice for a valid registry reference that also names a local directory.
package ref

import (
	// Register the hashes go-digest validates digests of.
	_ "crypto/sha256"
	_ "crypto/sha512"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"

	"github.com/distribution/reference"
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
	// DockerHubHost is the host that serves the registry API of docker.io.
	DockerHubHost = "registry-1.docker.io"
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

// Host returns the host (with port, if any) to contact for the registry of
// a registry reference: Registry, except that docker.io is served by
// registry-1.docker.io.
func (r Reference) Host() string { return RegistryHost(r.registry) }

// RegistryHost returns the host that serves the registry API of registry:
// DockerHubHost for docker.io (and its old name index.docker.io), registry
// itself otherwise.
func RegistryHost(registry string) string {
	if registry == DefaultRegistry || registry == "index.docker.io" {
		return DockerHubHost
	}
	return registry
}

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
		if err != nil && looksLikePath(s) {
			err = problemf("%v; %s", err, layoutHint(s))
		}
	}
	if err != nil {
		return Reference{}, fmt.Errorf("reference %q: %w: %s", s, errdef.ErrInvalid, err.Error())
	}
	return r, nil
}

// looksLikePath reports whether s is written as a file system path: it
// starts with /, ./, ../ or ~/, or is . or ..
func looksLikePath(s string) bool {
	for _, p := range []string{"/", "./", "../", "~/", `.\`, `..\`} {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return s == "." || s == ".."
}

func layoutHint(s string) string {
	return fmt.Sprintf("for an OCI image layout directory write oci:%s (or oci-archive:%s for a tar archive of one)", s, s)
}

// LayoutHint returns advice for a command that was given s, a reference
// without a scheme, when s may have been meant as a local path: it is
// written as one (see Parse) or names an existing file or directory. It
// returns "" otherwise. Parse adds the advice to its error for path-like
// strings itself; a command that got a valid registry reference adds it to
// a failure of the registry operation ("img" parses as
// docker.io/library/img, yet a directory ./img exists).
func LayoutHint(s string) string {
	if strings.Contains(s, "://") || strings.HasPrefix(s, string(SchemeOCI)+":") ||
		strings.HasPrefix(s, string(SchemeOCIArchive)+":") || strings.HasPrefix(s, string(SchemeDockerArchive)+":") {
		return ""
	}
	if looksLikePath(s) {
		return layoutHint(s)
	}
	fi, err := os.Stat(s)
	switch {
	case err != nil:
		return ""
	case fi.IsDir():
		return fmt.Sprintf("%s is also a local directory: %s", s, layoutHint(s))
	default:
		return fmt.Sprintf("%s is also a local file: for a tar archive write oci-archive:%s or docker-archive:%s", s, s, s)
	}
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
// normalisation, by github.com/distribution/reference (the grammar docker
// uses). When that refuses s, diagnose names the part that is wrong.
func parseRegistry(s string) (Reference, error) {
	if s == "" {
		return Reference{}, problemf("missing repository name")
	}
	named, err := reference.ParseNormalizedNamed(s)
	if err != nil {
		return Reference{}, diagnose(s, err)
	}
	r := Reference{scheme: SchemeRegistry, registry: reference.Domain(named), repository: reference.Path(named)}
	if r.registry == "" {
		// The grammar lets a first component such as "a_b.com" pass as a
		// path component, leaving no registry at all.
		return Reference{}, diagnose(s, reference.ErrReferenceInvalidFormat)
	}
	if t, ok := named.(reference.Tagged); ok {
		r.tag = t.Tag()
	}
	if d, ok := named.(reference.Digested); ok {
		r.digest = d.Digest()
	}
	if r.tag == "" && r.digest == "" {
		r.tag = DefaultTag
	}
	return r, nil
}

// The grammar's parts, anchored, from distribution/reference's expressions.
var (
	anchoredTag    = anchor(reference.TagRegexp)
	anchoredDigest = anchor(reference.DigestRegexp)
	anchoredDomain = anchor(reference.DomainRegexp)
	anchoredName   = anchor(reference.NameRegexp)
)

func anchor(re *regexp.Regexp) *regexp.Regexp {
	return regexp.MustCompile(`^(?:` + re.String() + `)$`)
}

// diagnose explains why distribution/reference refused s, naming the part
// at fault; err is its own message, used when no part stands out.
func diagnose(s string, err error) error {
	name := s
	if i := strings.IndexByte(name, '@'); i >= 0 {
		dg := name[i+1:]
		if !anchoredDigest.MatchString(dg) {
			return problemf("invalid digest %q: want algorithm:hex, such as sha256: and 64 hex digits", dg)
		}
		if _, err := digest.Parse(dg); err != nil {
			return problemf("invalid digest %q: %v", dg, err)
		}
		name = name[:i]
	}
	if i := strings.LastIndexByte(name, ':'); i >= 0 && i > strings.LastIndexByte(name, '/') {
		tag := name[i+1:]
		if !anchoredTag.MatchString(tag) {
			return problemf("invalid tag %q: want [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}", tag)
		}
		name = name[:i]
	}
	if name == "" {
		return problemf("missing repository name")
	}
	domain, repo := "", name
	if first, rest, ok := strings.Cut(name, "/"); ok &&
		(strings.ContainsAny(first, ".:") || first == "localhost" || strings.ToLower(first) != first) {
		domain, repo = first, rest
	}
	if domain != "" && !anchoredDomain.MatchString(domain) {
		return problemf("invalid registry %q: want a host name or IP address, with an optional :port", domain)
	}
	if strings.ToLower(repo) != repo {
		return problemf("repository name %q must be lowercase", repo)
	}
	if repo == "" || !anchoredName.MatchString(repo) {
		return problemf("invalid repository name %q: want lowercase components of letters and digits separated by '.', '_', '__' or dashes, joined by '/'", repo)
	}
	if errors.Is(err, reference.ErrNameTooLong) {
		return problemf("repository name %q is %d characters, more than %d", repo, len(repo), reference.RepositoryNameTotalLengthMax)
	}
	return problem(err.Error())
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

// validTag matches the tag grammar, [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}.
func validTag(s string) bool {
	return anchoredTag.MatchString(s)
}
