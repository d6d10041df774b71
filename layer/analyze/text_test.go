package analyze

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
)

func TestHumanSize(t *testing.T) {
	for n, want := range map[int64]string{
		0:             "0 B",
		43:            "43 B",
		999:           "999 B",
		1000:          "1.0 kB",
		8_100_000:     "8.1 MB",
		999_960:       "1.0 MB",
		1_500_000_000: "1.5 GB",
		-2500:         "-2.5 kB",
	} {
		if got := HumanSize(n); got != want {
			t.Errorf("HumanSize(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestReportWriteText(t *testing.T) {
	layers := image(t,
		L(dir("big"), file("big/a", 6000), file("big/b", 2100), file("keep", 4050)),
		L(wh("big"), file("keep", 10)),
	)
	rep, err := Analyze(context.Background(), layers, Options{Files: true})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := rep.WriteText(&buf, TextOptions{Changes: true}); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	short0 := "sha256:" + layers[0].Digest.Encoded()[:12]
	for _, want := range []string{
		"LAYER  DIGEST               SIZE     ADDED  CHANGED  REMOVED  WASTED\n",
		"0      " + short0 + "  12.2 kB  4      0        0        12.2 kB\n",
		"1      sha256:" + layers[1].Digest.Encoded()[:12] + "  10 B     0      1        3        0 B\n",
		"Layer 1 changes:\n",
		"-  file  6.0 kB  big/a\n",
		"M  file  10 B    keep\n",
		"Top wasted files:\nWASTED  COPIES  LAYERS  PATH\n6.0 kB  1       0       big/a\n4.0 kB  1       0       keep\n2.1 kB  1       0       big/b\n",
		"Total:      12.2 kB\nFinal:      10 B\nWasted:     12.2 kB\nEfficiency: 0.1%\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	buf.Reset()
	if err := rep.WriteText(&buf, TextOptions{Top: -1}); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(buf.String(), "Top wasted") || strings.Contains(buf.String(), "changes:") {
		t.Errorf("Top -1 and no Changes still list files:\n%s", buf.String())
	}
	buf.Reset()
	if err := rep.WriteText(&buf, TextOptions{Top: 1}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "big/a") || strings.Contains(buf.String(), "big/b") {
		t.Errorf("Top 1 lists other than the top file:\n%s", buf.String())
	}
}

func TestShortDigest(t *testing.T) {
	d := digest.FromString("x")
	if got := shortDigest(d); got != "sha256:"+d.Encoded()[:12] {
		t.Errorf("shortDigest = %q", got)
	}
	if got := shortDigest(""); got != "-" {
		t.Errorf("shortDigest(\"\") = %q", got)
	}
}

func TestDiffWriteText(t *testing.T) {
	d := &Comparison{
		Added:   []Difference{{Path: "a"}, {Path: "c/new"}},
		Removed: []Difference{{Path: "b"}, {Path: "z"}},
		Changed: []Difference{{Path: "c", Changes: []string{DiffContent, DiffMode}}},
	}
	var buf bytes.Buffer
	if err := d.WriteText(&buf); err != nil {
		t.Fatal(err)
	}
	want := "+ a\n- b\nM c (content, mode)\n+ c/new\n- z\n"
	if buf.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", buf.String(), want)
	}
	buf.Reset()
	if err := (&Comparison{}).WriteText(&buf); err != nil || buf.Len() != 0 {
		t.Errorf("empty diff wrote %q, %v", buf.String(), err)
	}
}
