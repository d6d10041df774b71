package archive

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/lading-oci/lading/errdef"
)

// Decompressor returns the uncompressed stream of a compressed one.
type Decompressor func(r io.Reader) (io.ReadCloser, error)

// File is an archive file open for reading, with its index.
type File struct {
	*Index
	f *os.File
	// Path is the file that was opened.
	Path string
	// Compression is "gzip" or "zstd" when the file was compressed (and is
	// read from a decompressed temporary copy), "" otherwise.
	Compression string
}

var (
	gzipMagic  = []byte{0x1f, 0x8b}
	zstdMagic  = []byte{0x28, 0xb5, 0x2f, 0xfd}
	bzip2Magic = []byte("BZh")
	xzMagic    = []byte{0xfd, '7', 'z', 'X', 'Z', 0}
)

// sniffCompression names the compression of a stream from its first bytes.
func sniffCompression(head []byte) string {
	switch {
	case bytes.HasPrefix(head, gzipMagic):
		return "gzip"
	case bytes.HasPrefix(head, zstdMagic):
		return "zstd"
	case bytes.HasPrefix(head, bzip2Magic):
		return "bzip2"
	case bytes.HasPrefix(head, xzMagic):
		return "xz"
	}
	return ""
}

// MaxExpansion and MinExpansionLimit bound what a compressed archive may
// decompress to: MaxExpansion times its compressed size, but at least
// MinExpansionLimit bytes. Archives of images hold mostly compressed or
// binary data; a larger expansion is a decompression bomb.
const (
	MaxExpansion      = 100
	MinExpansionLimit = 1 << 30
)

// OpenFile opens and indexes the archive at path. An archive compressed with
// gzip or zstd is decompressed with decompress (nil refuses it) into an
// unnamed temporary file under os.TempDir, which Close releases; bzip2 and xz
// are refused with errdef.ErrUnsupported, and one that expands past the
// limits of MaxExpansion with errdef.ErrTooLarge. A missing file matches
// errdef.ErrNotFound.
func OpenFile(ctx context.Context, path string, decompress Decompressor) (*File, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("open archive %s: %w", path, errdef.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("open archive %s: %w", path, err)
	}
	af := &File{f: f, Path: path}
	ok := false
	defer func() {
		if !ok {
			af.f.Close()
		}
	}()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("open archive %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("open archive %s: %w: not a regular file", path, errdef.ErrInvalid)
	}
	size := fi.Size()
	head := make([]byte, 6)
	n, _ := f.ReadAt(head, 0)
	switch c := sniffCompression(head[:n]); c {
	case "":
	case "gzip", "zstd":
		if decompress == nil {
			return nil, fmt.Errorf("open archive %s: %w: the archive is %s-compressed", path, errdef.ErrUnsupported, c)
		}
		limit := max(size*MaxExpansion, MinExpansionLimit)
		tmp, tsize, err := decompressToTemp(ctx, f, decompress, limit)
		if err != nil {
			return nil, fmt.Errorf("open archive %s: decompress %s: %w", path, c, err)
		}
		f.Close()
		af.f, af.Compression, size = tmp, c, tsize
	default:
		return nil, fmt.Errorf("open archive %s: %w: the archive is %s-compressed; decompress it first", path, errdef.ErrUnsupported, c)
	}
	ix, err := Scan(ctx, af.f, size)
	if err != nil {
		return nil, fmt.Errorf("archive %s: %w", path, err)
	}
	af.Index = ix
	ok = true
	return af, nil
}

// CreateTemp creates a temporary file in dir that has no name where the
// file system allows it (so nothing is left if the process dies), or else a
// hidden one. drop closes and removes it.
func CreateTemp(dir string) (f *os.File, drop func(), err error) {
	if f, err := openUnnamed(dir); err == nil {
		return f, func() { f.Close() }, nil
	}
	f, err = os.CreateTemp(dir, ".lading-tmp-*")
	if err != nil {
		return nil, nil, err
	}
	name := f.Name()
	return f, func() { f.Close(); os.Remove(name) }, nil
}

// Spill copies r to its end into a temporary file in dir (see CreateTemp)
// and returns a reader of the copy; drop removes it. A writer that is busy
// with one member spills another that arrives meanwhile, so that the
// sources of both are read at once.
func Spill(ctx context.Context, dir string, r io.Reader) (*io.SectionReader, func(), error) {
	f, drop, err := CreateTemp(dir)
	if err != nil {
		return nil, nil, err
	}
	n, err := io.CopyBuffer(&offsetWriter{f: f}, ctxReader{ctx, r}, make([]byte, 1<<20))
	if err != nil {
		drop()
		return nil, nil, err
	}
	return io.NewSectionReader(f, 0, n), drop, nil
}

// decompressToTemp writes the decompressed content of r to a temporary file
// that has no name (or, where that is impossible, whose name is removed at
// once).
func decompressToTemp(ctx context.Context, r io.Reader, decompress Decompressor, limit int64) (*os.File, int64, error) {
	tmp, err := openUnnamed(os.TempDir())
	if err != nil {
		tmp, err = os.CreateTemp("", ".lading-archive-*")
		if err != nil {
			return nil, 0, err
		}
		if err := os.Remove(tmp.Name()); err != nil {
			tmp.Close()
			return nil, 0, err
		}
	}
	rc, err := decompress(r)
	if err != nil {
		tmp.Close()
		return nil, 0, err
	}
	defer rc.Close()
	n, err := io.CopyBuffer(tmp, ctxReader{ctx, io.LimitReader(rc, limit+1)}, make([]byte, 1<<20))
	if err == nil && n > limit {
		err = fmt.Errorf("%w: decompresses to more than %d bytes", errdef.ErrTooLarge, limit)
	}
	if err != nil {
		tmp.Close()
		return nil, 0, err
	}
	return tmp, n, nil
}

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// Close closes the archive (and drops a decompressed copy).
func (af *File) Close() error {
	return af.f.Close()
}
