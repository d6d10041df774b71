package content

import (
	"context"
	_ "crypto/sha256" // registers sha256 with go-digest
	_ "crypto/sha512" // registers sha512 with go-digest
	"errors"
	"fmt"
	"hash"
	"io"

	"github.com/lading-oci/lading/errdef"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// DefaultMaxMetadataBytes caps how much of a manifest, index or config is read
// into memory: 4 MiB, the limit registries commonly enforce for manifests.
const DefaultMaxMetadataBytes = 4 << 20

// VerifyReader passes a blob's bytes through while hashing and counting
// them. At the end of the stream it returns errdef.ErrSizeMismatch or
// errdef.ErrDigestMismatch (wrapped with the digest) instead of io.EOF if the
// content does not match the descriptor; it never returns more than Size
// bytes without failing.
type VerifyReader struct {
	r    io.Reader
	desc ocispec.Descriptor
	h    hash.Hash
	n    int64
	err  error
}

// NewVerifyReader wraps r to verify it against desc. A digest lading cannot
// verify makes every Read fail with an error matching errdef.ErrUnsupported
// (an algorithm it does not know) or errdef.ErrInvalid (a malformed
// digest), and so does a negative size (errdef.ErrInvalid).
func NewVerifyReader(r io.Reader, desc ocispec.Descriptor) *VerifyReader {
	v := &VerifyReader{r: r, desc: desc}
	if err := CheckDigest(desc.Digest); err != nil {
		v.err = fmt.Errorf("blob: %w", err)
		return v
	}
	if desc.Size < 0 {
		v.err = fmt.Errorf("blob %s: %w: negative size %d", desc.Digest, errdef.ErrInvalid, desc.Size)
		return v
	}
	v.h = desc.Digest.Algorithm().Hash()
	return v
}

// Read implements io.Reader.
func (v *VerifyReader) Read(p []byte) (int, error) {
	if v.err != nil {
		return 0, v.err
	}
	// Read at most one byte past the declared size, to detect overlong content.
	if rem := v.desc.Size - v.n + 1; int64(len(p)) > rem {
		p = p[:rem]
	}
	n, err := v.r.Read(p)
	if n > 0 {
		v.h.Write(p[:n])
		v.n += int64(n)
		if v.n > v.desc.Size {
			v.err = fmt.Errorf("blob %s: %w: more than the %d bytes declared", v.desc.Digest, errdef.ErrSizeMismatch, v.desc.Size)
			return n - 1, v.err
		}
	}
	if errors.Is(err, io.EOF) {
		v.err = v.check()
		return n, v.err
	}
	if err != nil {
		v.err = err
	}
	return n, err
}

// Verify drains any unread content and reports whether the whole blob matched.
func (v *VerifyReader) Verify() error {
	if v.err == nil {
		_, _ = io.Copy(io.Discard, v)
	}
	if errors.Is(v.err, io.EOF) {
		return nil
	}
	return v.err
}

func (v *VerifyReader) check() error {
	if v.n != v.desc.Size {
		return fmt.Errorf("blob %s: %w: got %d bytes, descriptor says %d", v.desc.Digest, errdef.ErrSizeMismatch, v.n, v.desc.Size)
	}
	got := digest.NewDigest(v.desc.Digest.Algorithm(), v.h)
	if got != v.desc.Digest {
		return fmt.Errorf("blob %s: %w: content hashes to %s", v.desc.Digest, errdef.ErrDigestMismatch, got)
	}
	return io.EOF
}

// ReadAll fetches a small blob (a manifest, index or config) into memory,
// verified against desc, refusing descriptors larger than max bytes
// (DefaultMaxMetadataBytes when max <= 0) with errdef.ErrTooLarge.
func ReadAll(ctx context.Context, f Fetcher, desc ocispec.Descriptor, max int64) ([]byte, error) {
	if max <= 0 {
		max = DefaultMaxMetadataBytes
	}
	if desc.Size > max {
		return nil, fmt.Errorf("blob %s: %w: %d bytes exceeds the %d-byte limit for metadata", desc.Digest, errdef.ErrTooLarge, desc.Size, max)
	}
	if desc.Size < 0 {
		return nil, fmt.Errorf("blob %s: %w: negative size %d", desc.Digest, errdef.ErrInvalid, desc.Size)
	}
	if desc.Data != nil && int64(len(desc.Data)) == desc.Size && desc.Digest.Validate() == nil && desc.Digest.Algorithm().FromBytes(desc.Data) == desc.Digest {
		return append([]byte(nil), desc.Data...), nil
	}
	rc, err := f.Fetch(ctx, desc)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	buf := make([]byte, 0, desc.Size)
	vr := NewVerifyReader(rc, desc)
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := vr.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if errors.Is(err, io.EOF) {
			return buf, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// Copy streams one blob from src to dst, verified on the way (dst verifies
// too). A blob dst already has is not read from src.
func Copy(ctx context.Context, src Fetcher, dst Storage, desc ocispec.Descriptor) error {
	if ok, err := dst.Exists(ctx, desc); err == nil && ok {
		return nil
	}
	rc, err := src.Fetch(ctx, desc)
	if err != nil {
		return err
	}
	defer rc.Close()
	return dst.Push(ctx, desc, rc)
}
