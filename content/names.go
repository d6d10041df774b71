package content

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"github.com/lading-oci/lading/ref"
	"io"
	"slices"

	"github.com/lading-oci/lading/errdef"
	"github.com/opencontainers/go-digest"
)

// CheckTag reports whether tag may name a descriptor in a store: an
// org.opencontainers.image.ref.name as image-spec defines it (see
// ref.ValidLayoutTag), so that every tag a store takes can be named again
// in a reference (oci:DIR:TAG).
func CheckTag(tag string) error {
	if !ref.ValidLayoutTag(tag) {
		return fmt.Errorf("tag %q: %w: a tag is letters and digits joined by single separators -._:@+ (or --) and /, at most %d characters (such as v1.2, team/app, 1.0-debug)",
			tag, errdef.ErrInvalid, ref.MaxLayoutTagLength)
	}
	return nil
}

// CheckDigest validates a digest for use as a blob name: well formed, of a
// registered algorithm (errdef.ErrUnsupported otherwise) with an encoded part
// of the right length (errdef.ErrInvalid otherwise).
func CheckDigest(d digest.Digest) error {
	if err := d.Validate(); err != nil {
		if errors.Is(err, digest.ErrDigestUnsupported) {
			return fmt.Errorf("digest %q: %w: %v", d, errdef.ErrUnsupported, err)
		}
		return fmt.Errorf("digest %q: %w: %v", d, errdef.ErrInvalid, err)
	}
	return nil
}

// CheckIngestRef reports whether ref may name an ingest: 1 to 128
// characters from A-Z, a-z, 0-9 and "._-", not starting with a dot (stores
// keep names starting with a dot for their own temporary files).
func CheckIngestRef(ref string) error {
	if ref == "" || len(ref) > 128 || ref[0] == '.' {
		return fmt.Errorf("ingest ref %q: %w: must be 1 to 128 characters and not start with a dot", ref, errdef.ErrInvalid)
	}
	for _, c := range []byte(ref) {
		if !isAlnum(c) && c != '.' && c != '_' && c != '-' {
			return fmt.Errorf("ingest ref %q: %w: character %q not allowed", ref, errdef.ErrInvalid, c)
		}
	}
	return nil
}

// NewIngestRef returns a fresh random ingest ref.
func NewIngestRef() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// ContextReader returns a reader that fails with ctx's error once ctx is
// done, so a long copy stops when its caller gives up.
func ContextReader(ctx context.Context, r io.Reader) io.Reader {
	return ctxReader{ctx, r}
}

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// TagPageSize is how many tags ListTags passes to its callback at once.
const TagPageSize = 1000

// ListTags implements TagLister for a store that has its tags in hand: it
// sorts them, drops repeats and passes them to fn in pages of TagPageSize.
// tags is reordered.
func ListTags(tags []string, fn func(tags []string) error) error {
	slices.Sort(tags)
	tags = slices.Compact(tags)
	for len(tags) > 0 {
		n := min(len(tags), TagPageSize)
		if err := fn(tags[:n:n]); err != nil {
			return err
		}
		tags = tags[n:]
	}
	return nil
}
