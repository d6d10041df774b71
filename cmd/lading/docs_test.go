package main

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var updateDocs = flag.Bool("update-docs", false, "rewrite docs/cli from the commands")

// TestCLIReference keeps docs/cli equal to what the commands say of
// themselves.
func TestCLIReference(t *testing.T) {
	dir := filepath.Join("..", "..", "docs", "cli")
	root := newRootCmd(&rootOptions{})
	if *updateDocs {
		if err := writeCLIDocs(root, dir); err != nil {
			t.Fatal(err)
		}
	}
	docs := cliDocs(root)
	for name, want := range docs {
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("docs/cli/%s is not current (%v): run go test ./cmd/lading -run TestCLIReference -update-docs", name, err)
		}
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.md"))
	if len(files) != len(docs) {
		t.Errorf("docs/cli has %d pages for %d commands", len(files), len(docs))
	}
}
