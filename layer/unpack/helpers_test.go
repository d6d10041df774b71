//go:build linux

package unpack

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
)

// ent describes one tar entry built in a test.
type ent struct {
	name    string
	typ     byte // 0 means regular file
	body    string
	link    string
	mode    int64 // 0 means 0644 (files) / 0755 (dirs) unless modeSet
	modeSet bool
	uid     int
	gid     int
	mtime   time.Time
	size    int64 // overrides len(body) in the header when non-zero
	major   int64
	minor   int64
	xattrs  map[string]string
}

var epoch = time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)

func file(name, body string) ent        { return ent{name: name, body: body} }
func dir(name string) ent               { return ent{name: name, typ: tar.TypeDir} }
func symlink(name, target string) ent   { return ent{name: name, typ: tar.TypeSymlink, link: target} }
func hardlink(name, target string) ent  { return ent{name: name, typ: tar.TypeLink, link: target} }
func whiteoutEnt(name string) ent       { return ent{name: name} }
func withMode(e ent, mode int64) ent    { e.mode, e.modeSet = mode, true; return e }
func withMtime(e ent, t time.Time) ent  { e.mtime = t; return e }
func withOwner(e ent, uid, gid int) ent { e.uid, e.gid = uid, gid; return e }
func withSize(e ent, size int64) ent    { e.size = size; return e }
func withXattr(e ent, k, v string) ent  { e.xattrs = map[string]string{k: v}; return e }
func device(name string, typ byte) ent {
	return ent{name: name, typ: typ, major: 1, minor: 3, mode: 0o666}
}
func fifo(name string) ent { return ent{name: name, typ: tar.TypeFifo, mode: 0o640} }
func header(e ent) *tar.Header {
	typ := e.typ
	if typ == 0 {
		typ = tar.TypeReg
	}
	mode := e.mode
	if mode == 0 && !e.modeSet {
		mode = 0o644
		if typ == tar.TypeDir {
			mode = 0o755
		}
	}
	mt := e.mtime
	if mt.IsZero() {
		mt = epoch
	}
	h := &tar.Header{
		Name: e.name, Typeflag: typ, Mode: mode, Uid: e.uid, Gid: e.gid, ModTime: mt,
		Linkname: e.link, Devmajor: e.major, Devminor: e.minor, Format: tar.FormatPAX,
	}
	if typ == tar.TypeReg {
		h.Size = int64(len(e.body))
	}
	for k, v := range e.xattrs {
		if h.PAXRecords == nil {
			h.PAXRecords = map[string]string{}
		}
		h.PAXRecords["SCHILY.xattr."+k] = v
	}
	return h
}

// tarOf builds a tar archive of ents in order.
func tarOf(t testing.TB, ents ...ent) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range ents {
		h := header(e)
		if e.size != 0 {
			// A header that lies about its size: write it raw, then the
			// short body, and no end marker.
			h.Size = e.size
			if err := tw.WriteHeader(h); err != nil {
				t.Fatal(err)
			}
			tw.Flush()
			buf.WriteString(e.body)
			return buf.Bytes()
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatalf("header %q: %v", e.name, err)
		}
		if h.Typeflag == tar.TypeReg {
			if _, err := io.WriteString(tw, e.body); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func gz(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func zst(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw, err := zstd.NewWriter(&buf)
	if err != nil {
		t.Fatal(err)
	}
	zw.Write(b)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

func applyBytes(t testing.TB, root string, layer []byte, opts Options) (Stats, error) {
	t.Helper()
	return Apply(context.Background(), root, bytes.NewReader(layer), opts)
}

func mustApply(t testing.TB, root string, layer []byte, opts Options) Stats {
	t.Helper()
	st, err := applyBytes(t, root, layer, opts)
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	return st
}

// node is what a tree snapshot records for one path.
type node struct {
	Type    string
	Mode    fs.FileMode
	Size    int64
	Sum     string
	Link    string
	Mtime   int64 // not recorded for symlinks
	UID     uint32
	GID     uint32
	Ino     uint64
	Nlink   uint64
	IsLink  bool
	content string
}

// snapshot records every path under dir (relative, "." for dir itself),
// skipping the relative paths in skip (and everything under them).
func snapshot(t testing.TB, dir string, skip ...string) map[string]node {
	t.Helper()
	out := map[string]node{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		for _, s := range skip {
			if rel == s {
				return filepath.SkipDir
			}
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		n := node{Mode: fi.Mode(), UID: st.Uid, GID: st.Gid, Ino: st.Ino, Nlink: uint64(st.Nlink)}
		switch {
		case fi.Mode().IsRegular():
			n.Type = "file"
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			n.Size = int64(len(b))
			n.Sum = sha(b)
			n.content = string(b)
			n.Mtime = fi.ModTime().UnixNano()
		case fi.IsDir():
			n.Type = "dir"
			n.Mtime = fi.ModTime().UnixNano()
		case fi.Mode()&fs.ModeSymlink != 0:
			n.Type = "symlink"
			n.Link, _ = os.Readlink(p)
		default:
			n.Type = "special"
			n.Mtime = fi.ModTime().UnixNano()
		}
		out[rel] = n
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// diffSnapshots describes the differences between two snapshots, comparing
// with eq; empty means equal.
func diffSnapshots(a, b map[string]node, eq func(p string, x, y node) string) []string {
	var out []string
	for p, x := range a {
		y, ok := b[p]
		if !ok {
			out = append(out, fmt.Sprintf("%s: missing in second", p))
			continue
		}
		if d := eq(p, x, y); d != "" {
			out = append(out, fmt.Sprintf("%s: %s", p, d))
		}
	}
	for p := range b {
		if _, ok := a[p]; !ok {
			out = append(out, fmt.Sprintf("%s: missing in first", p))
		}
	}
	sort.Strings(out)
	return out
}

func exactEq(_ string, x, y node) string {
	x.content, y.content = "", ""
	if x != y {
		return fmt.Sprintf("%+v != %+v", x, y)
	}
	return ""
}

func readFile(t testing.TB, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

func names(m map[string]node) string {
	var s []string
	for k := range m {
		s = append(s, k)
	}
	sort.Strings(s)
	return strings.Join(s, " ")
}
