package transfer

import (
	"context"
	"fmt"

	"github.com/lading-oci/lading/content/dockerarchive"
	"github.com/lading-oci/lading/content/ociarchive"
	"github.com/lading-oci/lading/errdef"
	"github.com/lading-oci/lading/ref"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// openArchive opens an oci-archive or docker-archive file: for reading, or,
// with opts.Create, as a new archive written when the Target is closed.
func openArchive(ctx context.Context, r ref.Reference, opts OpenOptions) (*Target, error) {
	t := &Target{Ref: r}
	oci := r.Scheme() == ref.SchemeOCIArchive
	if opts.Create {
		if oci {
			w, err := ociarchive.Create(ctx, r.Path())
			if err != nil {
				return nil, err
			}
			t.Store, t.close, t.abandon = w, w.Close, func() { _ = w.Abort() }
			return t, nil
		}
		if _, ok := r.SourceIndex(); ok {
			return nil, fmt.Errorf("%s: %w: name the image to write as docker-archive:FILE:REPO:TAG, not by index", r, errdef.ErrInvalid)
		}
		w, err := dockerarchive.Create(ctx, r.Path())
		if err != nil {
			return nil, err
		}
		t.Store, t.close, t.abandon = w, w.Close, func() { _ = w.Abort() }
		if r.Tag() != "" {
			t.tag = r.Name() + ":" + r.Tag()
		}
		return t, nil
	}
	if oci {
		rd, err := ociarchive.Open(ctx, r.Path())
		if err != nil {
			return nil, err
		}
		t.Store, t.close = rd, rd.Close
		t.resolve = func(ctx context.Context) (ocispec.Descriptor, error) { return rd.Select(ctx, r) }
		return t, nil
	}
	rd, err := dockerarchive.Open(ctx, r.Path())
	if err != nil {
		return nil, err
	}
	t.Store, t.close = rd, rd.Close
	t.resolve = func(ctx context.Context) (ocispec.Descriptor, error) { return rd.Select(ctx, r) }
	return t, nil
}
