package layer

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"hash"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/lading-oci/lading/errdef"
	digest "github.com/opencontainers/go-digest"
)

// FlattenOptions control Flatten.
type FlattenOptions struct {
	// Options control the output as for Create. UID and GID, when set,
	// replace every entry's owner; otherwise the owners the layers record
	// are kept.
	Options
	// MaxBytes caps the uncompressed size of each layer read, as
	// unpack.Options.MaxBytes does (errdef.ErrTooLarge); 0 means no cap.
	MaxBytes int64
}

// Flatten writes to w one layer holding the filesystem that layers (bottom
// first) describe: what unpacking them in order would give, with every
// whiteout applied and nothing left to delete. No file is written to disk,
// and owners, modes, times and extended attributes are those the layers
// record, whoever runs it.
//
// Each layer is read twice. The first pass builds the Tree of the result
// (headers only; content is not kept) and checks each layer's DiffID and
// size cap. The second writes the layer: first every directory, symbolic
// link, device and FIFO of the result, depth first in byte order of names;
// then the content of each regular file, as it streams by in the layer
// that wrote it; then, last, the hard links. The names of one file (hard
// links) become one entry with the content, under its first name in that
// depth-first order, and links to it; a file whose name a later layer replaced but
// which another name still links to keeps the content it had.
//
// On error, w may have received part of a layer.
func Flatten(ctx context.Context, layers []Blob, w io.Writer, opts FlattenOptions) (Result, error) {
	if opts.MaxBytes < 0 {
		return Result{}, fmt.Errorf("flatten: %w: negative MaxBytes", errdef.ErrInvalid)
	}
	t := NewTree()
	t.skipDigests = true
	for i, l := range layers {
		if err := readLayer(ctx, l, i, opts.MaxBytes, true, func(r io.Reader) error { return t.Apply(ctx, r) }); err != nil {
			return Result{}, err
		}
	}

	// The files of the result, by the header that wrote their content.
	type file struct {
		names []string // byte order; names[0] carries the content
		entry Entry
	}
	files := map[[2]int]*file{}
	var specials []*node
	var walk func(n *node)
	walk = func(n *node) {
		for _, name := range slices.Sorted(maps.Keys(n.children)) {
			c := n.children[name]
			if c.Type == tar.TypeReg {
				f := files[c.src]
				if f == nil {
					f = &file{entry: c.Entry}
					files[c.src] = f
				}
				f.names = append(f.names, c.Path)
				continue
			}
			specials = append(specials, c)
			if c.children != nil {
				walk(c)
			}
		}
	}
	walk(t.root)

	p, err := newPacker(w, opts.Options)
	if err != nil {
		return Result{}, err
	}
	fail := func(err error) (Result, error) {
		p.abort()
		return Result{}, err
	}
	hdr := func(e Entry, name string) *tar.Header {
		h := &tar.Header{
			Typeflag: e.Type,
			Name:     name,
			Mode:     e.Mode,
			Uid:      e.UID,
			Gid:      e.GID,
			ModTime:  clampTime(e.ModTime, opts.Timestamp),
			Linkname: e.Linkname,
			Devmajor: e.Devmajor,
			Devminor: e.Devminor,
		}
		if opts.UID != nil {
			h.Uid = *opts.UID
		}
		if opts.GID != nil {
			h.Gid = *opts.GID
		}
		if len(e.Xattrs) > 0 {
			h.PAXRecords = make(map[string]string, len(e.Xattrs))
			for k, v := range e.Xattrs {
				h.PAXRecords[paxXattr+k] = v
			}
		}
		return h
	}
	if t.root.gen > 0 {
		if err := p.tw.WriteHeader(hdr(t.root.Entry, "./")); err != nil {
			return fail(fmt.Errorf("layer: writing the root entry: %w", err))
		}
	}
	for _, n := range specials {
		name := n.Path
		if n.Type == tar.TypeDir {
			name += "/"
		}
		if err := p.tw.WriteHeader(hdr(n.Entry, name)); err != nil {
			return fail(fmt.Errorf("layer: writing header of %s: %w", name, err))
		}
	}
	bufp := copyBufPool.Get().(*[]byte)
	defer copyBufPool.Put(bufp)
	for i, l := range layers {
		gen := i + 1
		err := readLayer(ctx, l, i, opts.MaxBytes, false, func(r io.Reader) error {
			tr := tar.NewReader(r)
			for seq := 0; ; seq++ {
				if err := ctx.Err(); err != nil {
					return err
				}
				h, err := tr.Next()
				if errors.Is(err, io.EOF) {
					return nil
				}
				if err != nil {
					return fmt.Errorf("layer: reading tar entry: %w", readFailure(err))
				}
				f := files[[2]int{gen, seq}]
				if f == nil {
					continue
				}
				out := hdr(f.entry, f.names[0])
				out.Typeflag = tar.TypeReg
				out.Size = h.Size
				if f.entry.Size != h.Size {
					return fmt.Errorf("layer: %s: %w: the layer changed between two reads", h.Name, errdef.ErrInvalid)
				}
				if err := p.tw.WriteHeader(out); err != nil {
					return fmt.Errorf("layer: writing header of %s: %w", out.Name, err)
				}
				if _, err := io.CopyBuffer(p.tw, tr, *bufp); err != nil {
					return fmt.Errorf("layer: copying %s: %w", h.Name, readFailure(err))
				}
			}
		})
		if err != nil {
			return fail(err)
		}
	}
	// Hard links last, to names already written.
	type link struct {
		name string
		f    *file
	}
	var links []link
	for _, f := range files {
		for _, n := range f.names[1:] {
			links = append(links, link{n, f})
		}
	}
	slices.SortFunc(links, func(a, b link) int { return strings.Compare(a.name, b.name) })
	for _, l := range links {
		h := hdr(l.f.entry, l.name)
		h.Typeflag, h.Linkname = tar.TypeLink, l.f.names[0]
		h.PAXRecords = nil
		if err := p.tw.WriteHeader(h); err != nil {
			return fail(fmt.Errorf("layer: writing header of %s: %w", l.name, err))
		}
	}
	return p.finish()
}

// clampTime truncates t to seconds and, with a timestamp, clamps it to
// that, as Create does.
func clampTime(t time.Time, ts *time.Time) time.Time {
	t = time.Unix(t.Unix(), 0)
	if ts != nil {
		c := time.Unix(ts.Unix(), 0)
		if t.After(c) {
			return c
		}
	}
	return t
}

// readLayer opens layer i, decompresses it, caps it at max bytes (0: no
// cap), checks its DiffID when check is set, and passes the uncompressed
// stream to use, which need not read it to its end. Errors name the layer.
func readLayer(ctx context.Context, l Blob, i int, max int64, check bool, use func(io.Reader) error) error {
	err := func() error {
		if l.Open == nil {
			return fmt.Errorf("%w: no Open function", errdef.ErrInvalid)
		}
		rc, err := l.Open(ctx)
		if err != nil {
			return err
		}
		defer rc.Close()
		dr, _, err := Decompress(rc)
		if err != nil {
			return err
		}
		defer dr.Close()
		cr := &cappedReader{r: dr, max: max}
		var h hash.Hash
		var r io.Reader = cr
		if check && l.DiffID != "" {
			if err := l.DiffID.Validate(); err != nil {
				return fmt.Errorf("diff_id %q: %w: %v", l.DiffID, errdef.ErrInvalid, err)
			}
			h = l.DiffID.Algorithm().Hash()
			r = io.TeeReader(cr, h)
		}
		if err := use(r); err != nil {
			return err
		}
		// The rest of the stream (padding after the end marker, a
		// compressed stream's trailer) is read too: it counts towards the
		// diff_id, and reading the blob to its end verifies its digest.
		if _, err := io.Copy(io.Discard, r); err != nil {
			return readFailure(err)
		}
		if _, err := io.Copy(io.Discard, rc); err != nil {
			return err
		}
		if h != nil {
			if got := digest.NewDigest(l.DiffID.Algorithm(), h); got != l.DiffID {
				return fmt.Errorf("diff_id: %w: expected %s, got %s", errdef.ErrDigestMismatch, l.DiffID, got)
			}
		}
		return nil
	}()
	if err != nil {
		return l.Fail(i, err)
	}
	return nil
}

// cappedReader fails with errdef.ErrTooLarge once more than max bytes
// (when max > 0) have been read.
type cappedReader struct {
	r   io.Reader
	max int64
	n   int64
}

func (c *cappedReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if c.max > 0 && c.n > c.max {
		return n, fmt.Errorf("%w: the uncompressed layer exceeds %d bytes", errdef.ErrTooLarge, c.max)
	}
	return n, err
}
