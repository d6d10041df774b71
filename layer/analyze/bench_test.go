package analyze

import (
	"context"
	"fmt"
	"testing"
)

// BenchmarkAnalyze analyzes a 20k-entry layer and a layer that deletes half
// of its directories.
func BenchmarkAnalyze(b *testing.B) {
	var base, top []ent
	for d := range 200 {
		base = append(base, dir(fmt.Sprintf("usr/share/d%03d", d)))
		for f := range 100 {
			base = append(base, file(fmt.Sprintf("usr/share/d%03d/f%03d", d, f), 64))
		}
		if d%2 == 0 {
			top = append(top, wh(fmt.Sprintf("usr/share/d%03d", d)))
		}
	}
	layers := image(b, base, top)
	b.ReportAllocs()
	for b.Loop() {
		rep, err := Analyze(context.Background(), layers, Options{})
		if err != nil {
			b.Fatal(err)
		}
		if rep.WastedBytes != 100*100*64 {
			b.Fatalf("wasted %d", rep.WastedBytes)
		}
	}
}
