package unpack

import (
	"context"
	"fmt"
	"hash"
	"io"
	"sync"

	"github.com/lading-oci/lading/errdef"
	"github.com/opencontainers/go-digest"
)

// chunkSize is the size of the read-ahead buffers and of the copy buffer.
const chunkSize = 1 << 20

// readAhead is how many filled chunks may wait for the writer.
const readAhead = 4

var bufPool = sync.Pool{New: func() any { b := make([]byte, chunkSize); return &b }}

type chunk struct {
	buf *[]byte
	n   int
}

// stream reads the uncompressed layer on its own goroutine, in chunks,
// counting, capping and hashing it, while the caller parses and writes.
type stream struct {
	ch       chan chunk
	done     chan struct{}
	stopOnce sync.Once
	wg       sync.WaitGroup

	// Written by the producer before ch is closed; read after.
	err   error
	total int64
	sum   digest.Digest

	cur    chunk
	off    int
	closed bool
}

func newStream(ctx context.Context, src io.Reader, maxBytes int64, alg digest.Algorithm) *stream {
	s := &stream{ch: make(chan chunk, readAhead), done: make(chan struct{})}
	var h hash.Hash
	if alg != "" {
		h = alg.Hash()
	}
	s.wg.Add(1)
	go s.produce(ctx, src, maxBytes, h, alg)
	return s
}

func (s *stream) produce(ctx context.Context, src io.Reader, maxBytes int64, h hash.Hash, alg digest.Algorithm) {
	defer s.wg.Done()
	defer close(s.ch)
	for {
		bp := bufPool.Get().(*[]byte)
		n, err := fill(src, *bp)
		if n > 0 {
			if maxBytes > 0 && s.total+int64(n) > maxBytes {
				bufPool.Put(bp)
				s.err = fmt.Errorf("uncompressed layer: %w: more than %d bytes", errdef.ErrTooLarge, maxBytes)
				return
			}
			s.total += int64(n)
			if h != nil {
				h.Write((*bp)[:n])
			}
			select {
			case s.ch <- chunk{bp, n}:
			case <-s.done:
				bufPool.Put(bp)
				return
			case <-ctx.Done():
				bufPool.Put(bp)
				s.err = ctx.Err()
				return
			}
		} else {
			bufPool.Put(bp)
		}
		if err != nil {
			if err == io.EOF {
				if h != nil {
					s.sum = digest.NewDigest(alg, h)
				}
				return
			}
			s.err = &readError{err}
			return
		}
	}
}

// fill reads into b until it is full or src fails; a clean end is io.EOF,
// anything else (a truncated compressed stream too) is an error.
func fill(src io.Reader, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := src.Read(b[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// Read implements io.Reader over the chunks.
func (s *stream) Read(p []byte) (int, error) {
	for s.off >= s.cur.n {
		if s.cur.buf != nil {
			bufPool.Put(s.cur.buf)
			s.cur = chunk{}
		}
		if s.closed {
			return 0, s.finalErr()
		}
		c, ok := <-s.ch
		if !ok {
			s.closed = true
			return 0, s.finalErr()
		}
		s.cur, s.off = c, 0
	}
	n := copy(p, (*s.cur.buf)[s.off:s.cur.n])
	s.off += n
	return n, nil
}

func (s *stream) finalErr() error {
	if s.err != nil {
		return s.err
	}
	return io.EOF
}

// drain consumes the rest of the stream (tar padding, trailing data) so the
// count and the digest cover every byte.
func (s *stream) drain() error {
	if s.cur.buf != nil {
		bufPool.Put(s.cur.buf)
		s.cur = chunk{}
	}
	if !s.closed {
		for c := range s.ch {
			bufPool.Put(c.buf)
		}
		s.closed = true
	}
	return s.err
}

// stop ends the producer and waits for it; it is safe after drain and may
// be called more than once.
func (s *stream) stop() {
	s.stopOnce.Do(func() { close(s.done) })
	s.wg.Wait()
	if !s.closed {
		for c := range s.ch {
			bufPool.Put(c.buf)
		}
		s.closed = true
	}
	if s.cur.buf != nil {
		bufPool.Put(s.cur.buf)
		s.cur = chunk{}
	}
}

// readError is a failure to read or decompress the layer blob.
type readError struct{ err error }

func (e *readError) Error() string { return "read layer: " + e.err.Error() }
func (e *readError) Unwrap() error { return e.err }
