package transfer

import (
	"context"
	"io"

	"github.com/lading-oci/lading/content"
	"github.com/lading-oci/lading/layer/analyze"
)

// AnalysisLayers describes img's layers, read from f, for the layer/analyze
// package; each stream is verified against its descriptor as it is read.
func AnalysisLayers(f content.Fetcher, img *content.LoadedImage) []analyze.Layer {
	out := make([]analyze.Layer, len(img.Manifest.Layers))
	for i, l := range img.Manifest.Layers {
		out[i] = analyze.Layer{Digest: l.Digest, Open: func(ctx context.Context) (io.ReadCloser, error) {
			rc, err := f.Fetch(ctx, l)
			if err != nil {
				return nil, err
			}
			return struct {
				io.Reader
				io.Closer
			}{content.NewVerifyReader(rc, l), rc}, nil
		}}
	}
	return out
}

// Analyze accounts for every byte img's layers ship: per layer what it
// adds, changes and removes, and the bytes a later layer wastes
// (analyze.Analyze).
func Analyze(ctx context.Context, f content.Fetcher, img *content.LoadedImage, opts analyze.Options) (*analyze.Report, error) {
	return analyze.Analyze(ctx, AnalysisLayers(f, img), opts)
}

// Compare lists how the filesystem of image b differs from that of image a
// (analyze.Compare).
func Compare(ctx context.Context, fa content.Fetcher, a *content.LoadedImage, fb content.Fetcher, b *content.LoadedImage, opts analyze.CompareOptions) (*analyze.Comparison, error) {
	return analyze.Compare(ctx, AnalysisLayers(fa, a), AnalysisLayers(fb, b), opts)
}
