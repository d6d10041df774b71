package main

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestUnpackRefusesHostileLayers stores hostile layers with append (they are
// valid tars) and checks that unpack refuses them with a message naming the
// entry, and that nothing outside the target is touched.
func TestUnpackRefusesHostileLayers(t *testing.T) {
	tmp := t.TempDir()
	canary := filepath.Join(tmp, "canary")
	must(t, os.MkdirAll(canary, 0o755))
	must(t, os.WriteFile(filepath.Join(canary, "keep"), []byte("keep"), 0o644))
	src := filepath.Join(tmp, "src")
	writeTree(t, src)
	layout := filepath.Join(tmp, "images")
	lading(t, "build", src, "-t", "oci:"+layout+":base")

	type entry struct {
		name, link string
		typ        byte
		body       string
	}
	cases := map[string][]entry{
		"dotdot":            {{name: "../../canary/evil", typ: tar.TypeReg, body: "x"}},
		"symlink-then-file": {{name: "esc", link: canary, typ: tar.TypeSymlink}, {name: "esc/evil", typ: tar.TypeReg, body: "x"}},
		"relative-symlink":  {{name: "up", link: "../../../../../../../../" + strings.TrimPrefix(canary, "/"), typ: tar.TypeSymlink}, {name: "up/evil", typ: tar.TypeReg, body: "x"}},
		"hardlink-out":      {{name: "hl", link: "../canary/keep", typ: tar.TypeLink}},
		"whiteout-out":      {{name: "../canary/.wh.keep", typ: tar.TypeReg}},
		"whiteout-via-link": {{name: "w", link: canary, typ: tar.TypeSymlink}, {name: "w/.wh.keep", typ: tar.TypeReg}},
	}
	for name, entries := range cases {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		for _, e := range entries {
			must(t, tw.WriteHeader(&tar.Header{Name: e.name, Linkname: e.link, Typeflag: e.typ, Mode: 0o644, Size: int64(len(e.body))}))
			_, err := tw.Write([]byte(e.body))
			must(t, err)
		}
		must(t, tw.Close())
		layerFile := filepath.Join(tmp, name+".tar")
		must(t, os.WriteFile(layerFile, buf.Bytes(), 0o644))
		lading(t, "append", "oci:"+layout+":base", layerFile, "-t", "oci:"+layout+":"+name)

		target := filepath.Join(tmp, "target-"+name)
		_, _, err := ladingErr(t, nil, "unpack", "oci:"+layout+":"+name, target)
		if err != nil && !strings.Contains(err.Error(), "layer 1") {
			t.Errorf("%s: error does not name the layer: %v", name, err)
		}
		entries, err2 := os.ReadDir(canary)
		must(t, err2)
		if len(entries) != 1 {
			t.Errorf("%s: canary directory now holds %d entries", name, len(entries))
		}
		if data, err := os.ReadFile(filepath.Join(canary, "keep")); err != nil || string(data) != "keep" {
			t.Errorf("%s: canary file changed: %q %v", name, data, err)
		}
		if _, err := os.Lstat(filepath.Join(tmp, "evil")); err == nil {
			t.Errorf("%s: a file was written beside the target", name)
		}
	}
}
