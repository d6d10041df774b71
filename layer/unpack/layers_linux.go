package unpack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"

	"github.com/lading-oci/lading/errdef"
	"github.com/lading-oci/lading/layer"
	"github.com/opencontainers/go-digest"
)

// maxLookahead caps the default of Options.Lookahead.
const maxLookahead = 4

// ApplyLayers applies the layers in order to the directory root, exactly as
// calling [Apply] on each in turn would (opts.DiffID must be empty; each
// Layer carries its own), but decompresses up to opts.Lookahead later
// layers while the current one is written, so an image of several large
// layers is not limited to one core's decompression speed. Entries are
// still written strictly in layer order, by one goroutine. A layer that was
// read to its end ahead of its turn is checked (diff_id, blob, size cap)
// before any of it is written; the others are checked as they stream, as
// Apply does.
//
// It returns the statistics of the layers applied, and on error one more,
// for the layer that failed. Errors name the layer by its index (and Name)
// and wrap the cause as Apply's do.
func ApplyLayers(ctx context.Context, root string, layers []Layer, opts Options) ([]Stats, error) {
	if opts.DiffID != "" {
		return nil, fmt.Errorf("apply layers: %w: Options.DiffID is per layer (Layer.DiffID)", errdef.ErrInvalid)
	}
	if err := opts.checkMaxBytes(); err != nil {
		return nil, err
	}
	for i, l := range layers {
		if l.Open == nil {
			return nil, l.Fail(i, fmt.Errorf("%w: no Open function", errdef.ErrInvalid))
		}
		if err := checkDiffID(l.DiffID); err != nil {
			return nil, l.Fail(i, err)
		}
	}
	rt, err := openRoot(root)
	if err != nil {
		return nil, err
	}
	defer rt.Close()
	// The root's directory file, for the spill files made in it.
	rootDir, err := rt.OpenFile(".", os.O_RDONLY|dirFlag, 0)
	if err != nil {
		return nil, fmt.Errorf("apply layers: %w", err)
	}
	defer rootDir.Close()

	ahead := opts.Lookahead
	if ahead == 0 {
		ahead = min(runtime.GOMAXPROCS(0)-1, maxLookahead)
	}
	ahead = max(ahead, 0)

	spillMax := int64(maxSpill)
	if inMemory(rootDir) {
		spillMax = maxSpillMem
	}
	log := opts.logger()
	pctx, cancel := context.WithCancel(ctx)
	streams := make([]*stream, len(layers))
	defer func() {
		cancel()
		for _, s := range streams {
			if s != nil {
				s.stop()
			}
		}
	}()
	start := func(i int, current bool) {
		var spill *os.File
		if !current {
			var err error
			if spill, err = openSpill(rootDir); err != nil {
				// The stream then starts active: it reads memAhead chunks
				// ahead and waits.
				log.Debug("no spill file; reading ahead in memory only", "layer", i, "error", err)
				spill = nil
			}
		}
		l := layers[i]
		var alg digest.Algorithm
		if l.DiffID != "" {
			alg = l.DiffID.Algorithm()
		}
		streams[i] = newStream(pctx, func() (source, error) { return openLayer(pctx, l) }, opts.MaxBytes, alg, spill, spillMax)
	}

	var all []Stats
	for i, l := range layers {
		for j := i; j < len(layers) && j <= i+ahead; j++ {
			if streams[j] == nil {
				start(j, j == i)
			}
		}
		s := streams[i]
		if err := s.activate(); err != nil {
			return append(all, Stats{}), l.Fail(i, err)
		}
		// A layer read to its end ahead of its turn is checked before any
		// of it is written.
		if done, sum, err := s.result(); done {
			if err == nil && l.DiffID != "" && sum != l.DiffID {
				err = fmt.Errorf("%w (nothing of the layer written)", diffIDMismatch(l.DiffID, sum))
			}
			if err != nil {
				s.stop()
				streams[i] = nil
				return append(all, Stats{Bytes: s.total}), l.Fail(i, err)
			}
		}
		o := opts
		o.DiffID = l.DiffID
		st, err := applyStream(ctx, rt, s, o)
		s.stop()
		streams[i] = nil
		all = append(all, st)
		if err != nil {
			return all, l.Fail(i, err)
		}
	}
	return all, nil
}

// openLayer opens a layer blob and its decompressor. The source's finish
// reads the blob to its end, so a verifying reader checks it.
func openLayer(ctx context.Context, l Layer) (source, error) {
	rc, err := l.Open(ctx)
	if err != nil {
		return source{}, err
	}
	dr, _, err := layer.Decompress(rc)
	if err != nil {
		rc.Close()
		return source{}, err
	}
	return source{
		r: dr,
		finish: func() error {
			if _, err := io.Copy(io.Discard, rc); err != nil && !errors.Is(err, io.EOF) {
				return err
			}
			return nil
		},
		close: func() {
			dr.Close()
			rc.Close()
		},
	}, nil
}
