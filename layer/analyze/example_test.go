package analyze_test

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/lading-oci/lading/layer/analyze"
	"github.com/opencontainers/go-digest"
)

// memLayer makes a layer blob from name/size pairs; sizes < 0 are directories.
func memLayer(entries ...any) analyze.Layer {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for i := 0; i < len(entries); i += 2 {
		name, size := entries[i].(string), entries[i+1].(int)
		if size < 0 {
			tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeDir, Mode: 0o755})
			continue
		}
		tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(size)})
		io.WriteString(tw, strings.Repeat("x", size))
	}
	tw.Close()
	blob := buf.Bytes()
	return analyze.Layer{
		Digest: digest.FromBytes(blob),
		Open:   func(context.Context) (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(blob)), nil },
	}
}

func ExampleAnalyze() {
	layers := []analyze.Layer{
		memLayer("cache/", -1, "cache/a", 6000, "cache/sub/b", 2000, "app", 100),
		memLayer(".wh.cache", 0, "app", 120), // delete the cache directory, replace app
	}
	rep, err := analyze.Analyze(context.Background(), layers, analyze.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, l := range rep.Layers {
		fmt.Printf("layer %d: +%d ~%d -%d, wasted %s\n", l.Index, l.Added, l.Changed, l.Removed, analyze.HumanSize(l.WastedBytes))
	}
	for _, w := range rep.Wasted {
		fmt.Printf("%s: %s\n", w.Path, analyze.HumanSize(w.Bytes))
	}
	fmt.Printf("total %s, final %s, efficiency %.1f%%\n", analyze.HumanSize(rep.TotalBytes), analyze.HumanSize(rep.FinalBytes), rep.Efficiency*100)
	// Output:
	// layer 0: +5 ~0 -0, wasted 8.1 kB
	// layer 1: +0 ~1 -4, wasted 0 B
	// cache/a: 6.0 kB
	// cache/sub/b: 2.0 kB
	// app: 100 B
	// total 8.2 kB, final 120 B, efficiency 1.5%
}
