package layer

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/klauspost/pgzip"
	"github.com/lading-oci/lading/errdef"
	"github.com/lading-oci/lading/image"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Compression is the compression of a layer blob.
type Compression = image.LayerCompression

// The compressions lading reads and writes.
const (
	None = image.CompressionNone
	Gzip = image.CompressionGzip
	Zstd = image.CompressionZstd
)

var (
	gzipMagic = []byte{0x1f, 0x8b}
	zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}
)

// ParseCompression parses "gzip", "zstd" or "none" (also "uncompressed").
func ParseCompression(s string) (Compression, error) {
	switch s {
	case "gzip", "gz":
		return Gzip, nil
	case "zstd", "zst":
		return Zstd, nil
	case "none", "uncompressed", "":
		return None, nil
	}
	return image.CompressionUnknown, fmt.Errorf("compression %q: %w: want gzip, zstd or none", s, errdef.ErrUnsupported)
}

// MediaType is the OCI layer media type for a compression.
func MediaType(c Compression) string {
	switch c {
	case Gzip:
		return ocispec.MediaTypeImageLayerGzip
	case Zstd:
		return ocispec.MediaTypeImageLayerZstd
	}
	return ocispec.MediaTypeImageLayer
}

// Detect reports the compression of the stream behind br from its magic bytes
// without consuming them. Anything that is neither gzip nor zstd is None.
func Detect(br *bufio.Reader) Compression {
	head, _ := br.Peek(4)
	switch {
	case bytes.HasPrefix(head, gzipMagic):
		return Gzip
	case bytes.HasPrefix(head, zstdMagic):
		return Zstd
	}
	return None
}

// Decompress returns the uncompressed stream of a layer blob, detecting
// gzip or zstd by magic bytes. Closing it releases the decompressor, not r.
// Memory stays bounded whatever the input: zstd windows are capped.
//
// A compressed stream that does not decompress (a bad checksum, a truncated
// or garbled frame) fails with an error matching errdef.ErrInvalid that says
// the data is corrupt; an error of r itself (a digest mismatch found by a
// verifying reader, a cancelled context) is passed on as it is.
func Decompress(r io.Reader) (io.ReadCloser, Compression, error) {
	src := &sourceReader{r: r}
	br := bufio.NewReaderSize(src, 1<<16)
	c := Detect(br)
	switch c {
	case Gzip:
		zr, err := pgzip.NewReaderN(br, 1<<20, 4)
		if err != nil {
			return nil, c, corrupt(c, src, err)
		}
		return &decompressed{ReadCloser: zr, c: c, src: src}, c, nil
	case Zstd:
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(64<<20), zstd.WithDecoderLowmem(false))
		if err != nil {
			return nil, c, corrupt(c, src, err)
		}
		return &decompressed{ReadCloser: zstdReadCloser{zr}, c: c, src: src}, c, nil
	}
	return io.NopCloser(br), None, nil
}

// sourceReader remembers the error its reader returned, so that errors of
// the source can be told from errors of the decompressor.
type sourceReader struct {
	r   io.Reader
	mu  sync.Mutex
	err error
}

func (s *sourceReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err != nil && err != io.EOF {
		s.mu.Lock()
		s.err = err
		s.mu.Unlock()
	}
	return n, err
}

func (s *sourceReader) failure() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// corrupt classifies an error of the decompressor.
func corrupt(c Compression, src *sourceReader, err error) error {
	if serr := src.failure(); serr != nil && errors.Is(err, serr) {
		return err
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return &CorruptError{Compression: c, Err: err}
}

// CorruptError is a compressed layer stream that does not decompress: a bad
// checksum, a truncated or garbled frame. It matches errdef.ErrInvalid.
type CorruptError struct {
	Compression Compression
	// Err is the decompressor's error.
	Err error
}

// Error says which compression failed, and how.
func (e *CorruptError) Error() string {
	return fmt.Sprintf("%v data is corrupt: %v", e.Compression, e.Err)
}

// Unwrap returns errdef.ErrInvalid and the decompressor's error.
func (e *CorruptError) Unwrap() []error { return []error{errdef.ErrInvalid, e.Err} }

// decompressed is a decompressing reader whose errors are classified.
type decompressed struct {
	io.ReadCloser
	c   Compression
	src *sourceReader
}

func (d *decompressed) Read(p []byte) (int, error) {
	n, err := d.ReadCloser.Read(p)
	if err != nil && err != io.EOF {
		err = corrupt(d.c, d.src, err)
	}
	return n, err
}

type zstdReadCloser struct{ *zstd.Decoder }

func (z zstdReadCloser) Close() error { z.Decoder.Close(); return nil }

// Compress returns a writer that compresses into w with c. Gzip and zstd
// are compressed in parallel blocks on every core; the output depends only
// on the input, never on the number of cores. Gzip is one standard member;
// zstd is a sequence of independent frames of zstdChunk bytes of input each,
// as RFC 8878 allows and every decoder reads. Closing the writer flushes
// it, not w; it must be closed, even after an error, to release its
// goroutines.
func Compress(w io.Writer, c Compression) (io.WriteCloser, error) {
	switch c {
	case Gzip:
		zw, err := pgzip.NewWriterLevel(w, pgzip.DefaultCompression)
		if err != nil {
			return nil, err
		}
		if err := zw.SetConcurrency(1<<20, 2*runtime.GOMAXPROCS(0)); err != nil {
			return nil, err
		}
		// The zero time would put a meaningless value in the header's MTIME
		// field; the epoch writes 0 ("no time stamp"), as RFC 1952 intends.
		zw.ModTime = time.Unix(0, 0)
		return zw, nil
	case Zstd:
		enc, err := sharedZstdEncoder()
		if err != nil {
			return nil, err
		}
		return newZstdWriter(w, enc), nil
	case None:
		return nopWriteCloser{w}, nil
	}
	return nil, fmt.Errorf("compression %v: %w", c, errdef.ErrUnsupported)
}

type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }

// zstdChunk is the input size of each zstd frame: large enough that
// splitting costs little ratio, small enough that every core gets work.
const zstdChunk = 4 << 20

// sharedZstdEncoder is the encoder all zstd writers share; its EncodeAll
// runs up to GOMAXPROCS frames at once.
var sharedZstdEncoder = sync.OnceValues(func() (*zstd.Encoder, error) {
	return zstd.NewWriter(nil,
		zstd.WithEncoderLevel(zstd.SpeedDefault),
		zstd.WithEncoderConcurrency(runtime.GOMAXPROCS(0)),
		zstd.WithZeroFrames(true))
})

var (
	zstdInPool  = sync.Pool{New: func() any { b := make([]byte, 0, zstdChunk); return &b }}
	zstdOutPool = sync.Pool{New: func() any { b := make([]byte, 0, zstdChunk+zstdChunk>>7+512); return &b }}
)

// zstdWriter cuts its input into zstdChunk pieces, encodes each as a frame
// on its own goroutine and writes the frames in order from one more.
type zstdWriter struct {
	enc    *zstd.Encoder
	cur    *[]byte
	jobs   chan *zstdJob
	done   chan struct{}
	frames int
	closed bool

	mu  sync.Mutex
	err error
}

type zstdJob struct {
	in, out *[]byte
	ready   chan struct{}
}

func newZstdWriter(w io.Writer, enc *zstd.Encoder) *zstdWriter {
	z := &zstdWriter{
		enc:  enc,
		jobs: make(chan *zstdJob, runtime.GOMAXPROCS(0)+1),
		done: make(chan struct{}),
	}
	go z.writeFrames(w)
	return z
}

// writeFrames writes the frames in input order; after a failure it only
// recycles them.
func (z *zstdWriter) writeFrames(w io.Writer) {
	defer close(z.done)
	for j := range z.jobs {
		<-j.ready
		if z.error() == nil {
			if _, err := w.Write(*j.out); err != nil {
				z.setError(err)
			}
		}
		*j.in, *j.out = (*j.in)[:0], (*j.out)[:0]
		zstdInPool.Put(j.in)
		zstdOutPool.Put(j.out)
	}
}

func (z *zstdWriter) error() error {
	z.mu.Lock()
	defer z.mu.Unlock()
	return z.err
}

func (z *zstdWriter) setError(err error) {
	z.mu.Lock()
	if z.err == nil {
		z.err = err
	}
	z.mu.Unlock()
}

// Write buffers p and hands every full chunk to an encoder.
func (z *zstdWriter) Write(p []byte) (int, error) {
	if z.closed {
		return 0, errors.New("zstd: write after close")
	}
	if err := z.error(); err != nil {
		return 0, err
	}
	n := 0
	for len(p) > 0 {
		if z.cur == nil {
			z.cur = zstdInPool.Get().(*[]byte)
		}
		buf := *z.cur
		k := copy(buf[len(buf):cap(buf)], p)
		*z.cur = buf[:len(buf)+k]
		p, n = p[k:], n+k
		if len(*z.cur) == cap(*z.cur) {
			z.submit()
		}
	}
	return n, nil
}

// submit starts encoding the current chunk; it blocks while too many
// frames wait to be written.
func (z *zstdWriter) submit() {
	j := &zstdJob{in: z.cur, out: zstdOutPool.Get().(*[]byte), ready: make(chan struct{})}
	z.cur = nil
	z.frames++
	go func() {
		*j.out = z.enc.EncodeAll(*j.in, (*j.out)[:0])
		close(j.ready)
	}()
	z.jobs <- j
}

// Close encodes what is buffered (an empty frame if nothing was ever
// written), waits for every frame to be written and reports the first
// error.
func (z *zstdWriter) Close() error {
	if z.closed {
		return z.error()
	}
	z.closed = true
	if z.cur != nil || z.frames == 0 {
		if z.cur == nil {
			z.cur = zstdInPool.Get().(*[]byte)
		}
		z.submit()
	}
	close(z.jobs)
	<-z.done
	return z.error()
}
