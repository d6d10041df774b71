package layer

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"io"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"
)

// tarBuilder writes tar fixtures in code: each method adds one entry.
type tarBuilder struct {
	t   testing.TB
	buf bytes.Buffer
	tw  *tar.Writer
}

func newTarBuilder(t testing.TB) *tarBuilder {
	b := &tarBuilder{t: t}
	b.tw = tar.NewWriter(&b.buf)
	return b
}

var fixtureTime = time.Unix(1700000000, 0)

func (b *tarBuilder) add(h *tar.Header, body string) *tarBuilder {
	b.t.Helper()
	if h.ModTime.IsZero() {
		h.ModTime = fixtureTime
	}
	if h.Typeflag == tar.TypeReg {
		h.Size = int64(len(body))
	}
	if err := b.tw.WriteHeader(h); err != nil {
		b.t.Fatalf("fixture header %s: %v", h.Name, err)
	}
	if body != "" {
		if _, err := io.WriteString(b.tw, body); err != nil {
			b.t.Fatalf("fixture body %s: %v", h.Name, err)
		}
	}
	return b
}

func (b *tarBuilder) Dir(name string, mode int64) *tarBuilder {
	return b.add(&tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: mode}, "")
}

func (b *tarBuilder) File(name, body string, mode int64) *tarBuilder {
	return b.add(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode}, body)
}

func (b *tarBuilder) Symlink(name, target string) *tarBuilder {
	return b.add(&tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: target, Mode: 0o777}, "")
}

func (b *tarBuilder) Link(name, target string) *tarBuilder {
	return b.add(&tar.Header{Typeflag: tar.TypeLink, Name: name, Linkname: target}, "")
}

func (b *tarBuilder) Whiteout(name string) *tarBuilder {
	return b.File(name, "", 0o644)
}

func (b *tarBuilder) Header(h *tar.Header) *tarBuilder { return b.add(h, "") }

// Bytes ends the archive and returns it.
func (b *tarBuilder) Bytes() []byte {
	b.t.Helper()
	if err := b.tw.Close(); err != nil {
		b.t.Fatalf("fixture close: %v", err)
	}
	return b.buf.Bytes()
}

// tarEntry is one entry of a layer read back in a test.
type tarEntry struct {
	hdr  *tar.Header
	body string
}

// readEntries decompresses blob and lists its entries.
func readEntries(t testing.TB, blob []byte) []tarEntry {
	t.Helper()
	rc, _, err := Decompress(bytes.NewReader(blob))
	if err != nil {
		t.Fatalf("decompress: %v", err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	var out []tarEntry
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("reading layer: %v", err)
		}
		body, err := io.ReadAll(tr)
		if err != nil {
			t.Fatalf("reading %s: %v", h.Name, err)
		}
		out = append(out, tarEntry{h, string(body)})
	}
}

func entryNames(es []tarEntry) []string {
	names := make([]string, len(es))
	for i, e := range es {
		names[i] = e.hdr.Name
	}
	return names
}

func sha(s string) digest.Digest {
	sum := sha256.Sum256([]byte(s))
	return digest.NewDigestFromBytes(digest.SHA256, sum[:])
}

// treeOf applies the layers, plain or compressed, to a new tree.
func treeOf(t testing.TB, layers ...[]byte) *Tree {
	t.Helper()
	tree := NewTree()
	for i, l := range layers {
		if err := tree.Apply(context.Background(), bytes.NewReader(l)); err != nil {
			t.Fatalf("applying layer %d: %v", i, err)
		}
	}
	return tree
}
