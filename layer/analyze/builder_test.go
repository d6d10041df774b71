package analyze

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/lading-oci/lading/layer"
	"github.com/opencontainers/go-digest"
)

// ent is one tar entry of a test layer.
type ent struct {
	name string
	typ  byte
	body string
	link string
	mode int64
	uid  int
}

// file is a regular file of size bytes (all 'x').
func file(name string, size int) ent {
	return ent{name: name, typ: tar.TypeReg, body: strings.Repeat("x", size)}
}

// fileC is a regular file with the given content.
func fileC(name, content string) ent { return ent{name: name, typ: tar.TypeReg, body: content} }

func dir(name string) ent { return ent{name: name, typ: tar.TypeDir} }

func symlink(name, target string) ent { return ent{name: name, typ: tar.TypeSymlink, link: target} }

func hardlink(name, target string) ent { return ent{name: name, typ: tar.TypeLink, link: target} }

// wh is the whiteout of path p (".wh." prefixed to its base name).
func wh(p string) ent {
	i := strings.LastIndexByte(p, '/')
	return file(p[:i+1]+layer.WhiteoutPrefix+p[i+1:], 0)
}

// opq is the opaque whiteout of directory d.
func opq(d string) ent { return file(d+"/"+layer.OpaqueWhiteout, 0) }

func (e ent) withMode(m int64) ent { e.mode = m; return e }

func (e ent) withUID(u int) ent { e.uid = u; return e }

// tarBytes writes entries as an uncompressed tar.
func tarBytes(t testing.TB, entries ...ent) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		mode := e.mode
		if mode == 0 {
			mode = 0o644
			if e.typ == tar.TypeDir {
				mode = 0o755
			}
		}
		hdr := &tar.Header{Name: e.name, Typeflag: e.typ, Linkname: e.link, Mode: mode, Uid: e.uid, Format: tar.FormatPAX}
		if e.typ == tar.TypeReg {
			hdr.Size = int64(len(e.body))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatalf("tar header %q: %v", e.name, err)
		}
		if _, err := io.WriteString(tw, e.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// compressed compresses a blob with c.
func compressed(t testing.TB, blob []byte, c layer.Compression) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := layer.Compress(&buf, c)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(blob); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// blobLayer serves a blob from memory, counting how often it is opened.
func blobLayer(blob []byte, opens *atomic.Int32) Layer {
	return Layer{
		Digest: digest.FromBytes(blob),
		Open: func(context.Context) (io.ReadCloser, error) {
			if opens != nil {
				opens.Add(1)
			}
			return io.NopCloser(bytes.NewReader(blob)), nil
		},
	}
}

// image turns entry lists into uncompressed layers.
func image(t testing.TB, layers ...[]ent) []Layer {
	t.Helper()
	out := make([]Layer, len(layers))
	for i, es := range layers {
		out[i] = blobLayer(tarBytes(t, es...), nil)
	}
	return out
}

// L is shorthand for one layer's entries.
func L(es ...ent) []ent { return es }

var errOpen = errors.New("blob unavailable")

func failingLayer() Layer {
	return Layer{Digest: digest.FromString("missing"), Open: func(context.Context) (io.ReadCloser, error) { return nil, errOpen }}
}
