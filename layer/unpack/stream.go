package unpack

import (
	"context"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"sync"

	"github.com/lading-oci/lading/errdef"
	"github.com/opencontainers/go-digest"
)

// chunkSize is the size of the read-ahead buffers and of the copy buffer.
const chunkSize = 1 << 20

// memAhead is how many decompressed chunks of one layer may wait in memory.
const memAhead = 4

// maxSpill bounds the decompressed bytes one layer may keep waiting in its
// spill file; past it the decompressor waits for the writer. maxSpillMem is
// the bound where the spill file would be memory (tmpfs).
const (
	maxSpill    = 1 << 30
	maxSpillMem = 64 << 20
)

var bufPool = sync.Pool{New: func() any { b := make([]byte, chunkSize); return &b }}

// chunk is a piece of the decompressed stream: in memory (buf) or, when buf
// is nil, at off in the spill file.
type chunk struct {
	buf *[]byte
	off int64
	n   int
}

// source is a decompressed layer stream. finish is called once it has
// returned io.EOF, to check what follows it (the rest of the compressed
// blob, whose reader may verify its digest at its end); close releases it.
type source struct {
	r      io.Reader
	finish func() error
	close  func()
}

// stream reads an uncompressed layer on its own goroutine, in chunks,
// counting, capping and hashing it, while the consumer parses and writes.
//
// Chunks wait in a queue: up to memAhead in memory, and, for a stream with
// a spill file that is not yet active (a layer decompressed ahead of the
// one being written), the rest in that file, up to spillMax bytes. Once the
// stream is active the producer waits for the consumer instead of spilling.
type stream struct {
	mu   sync.Mutex
	cond sync.Cond

	q        []chunk
	mem      int   // chunks of q in memory
	spilled  int64 // bytes of q in the spill file
	spill    *os.File
	spillMax int64 // bytes the spill file may hold at once
	spillEnd int64 // next free offset of spill; producer only
	noSpill  bool  // spilling failed once; do not try again
	active   bool
	stopped  bool // the consumer gave up
	finished bool // the producer is done: err, total and sum are final

	// Written by the producer before finished is set; read after.
	openErr error // the source could not be opened
	err     error
	total   int64
	sum     digest.Digest

	wg        sync.WaitGroup
	stopOnce  sync.Once
	unwatch   func() bool
	ready     chan struct{} // closed once the source is open (or failed to)
	cur       chunk
	curOff    int
	exhausted bool
}

// newStream starts a producer that opens the source with open and reads it.
// With spill nil the stream is active from the start and never spills; with
// a spill file it spills (up to spillMax bytes at once) until activate is
// called, and owns the file.
func newStream(ctx context.Context, open func() (source, error), maxBytes int64, alg digest.Algorithm, spill *os.File, spillMax int64) *stream {
	s := &stream{spill: spill, spillMax: spillMax, active: spill == nil, ready: make(chan struct{})}
	s.cond.L = &s.mu
	s.unwatch = context.AfterFunc(ctx, func() {
		s.mu.Lock()
		s.cond.Broadcast()
		s.mu.Unlock()
	})
	var h hash.Hash
	if alg != "" {
		h = alg.Hash()
	}
	s.wg.Add(1)
	go s.produce(ctx, open, maxBytes, h, alg)
	return s
}

// errStopped ends a producer whose consumer has stopped.
var errStopped = errors.New("stream stopped")

func (s *stream) produce(ctx context.Context, open func() (source, error), maxBytes int64, h hash.Hash, alg digest.Algorithm) {
	defer s.wg.Done()
	src, err := open()
	if err != nil {
		s.openErr = err
		close(s.ready)
		s.end(err)
		return
	}
	close(s.ready)
	err = s.pump(ctx, src.r, maxBytes, h)
	if err == nil && src.finish != nil {
		if ferr := src.finish(); ferr != nil {
			err = &readError{ferr}
		}
	}
	if err == nil && h != nil {
		s.sum = digest.NewDigest(alg, h)
	}
	if src.close != nil {
		src.close()
	}
	s.end(err)
}

// pump moves src into the queue until io.EOF (nil) or an error.
func (s *stream) pump(ctx context.Context, src io.Reader, maxBytes int64, h hash.Hash) error {
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		bp := bufPool.Get().(*[]byte)
		n, rerr := fill(src, *bp)
		if n > 0 {
			if maxBytes > 0 && s.total+int64(n) > maxBytes {
				bufPool.Put(bp)
				return fmt.Errorf("uncompressed layer: %w: more than %d bytes", errdef.ErrTooLarge, maxBytes)
			}
			s.total += int64(n)
			if h != nil {
				h.Write((*bp)[:n])
			}
			if err := s.put(ctx, bp, n); err != nil {
				return err
			}
		} else {
			bufPool.Put(bp)
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return &readError{rerr}
		}
	}
}

// put queues a filled buffer, in memory if there is room, else in the spill
// file if the stream may spill, else once the consumer has made room.
func (s *stream) put(ctx context.Context, bp *[]byte, n int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		switch {
		case s.stopped:
			bufPool.Put(bp)
			return errStopped
		case ctx.Err() != nil:
			bufPool.Put(bp)
			return ctx.Err()
		case s.mem < memAhead:
			s.q = append(s.q, chunk{buf: bp, n: n})
			s.mem++
			s.cond.Broadcast()
			return nil
		case s.spill != nil && !s.noSpill && !s.active && s.spilled+int64(n) <= s.spillMax:
			off := s.spillEnd
			s.mu.Unlock()
			_, err := s.spill.WriteAt((*bp)[:n], off)
			s.mu.Lock()
			if err != nil {
				s.noSpill = true // a full disk, say: wait for the writer instead
				continue
			}
			s.spillEnd += int64(n)
			s.q = append(s.q, chunk{off: off, n: n})
			s.spilled += int64(n)
			bufPool.Put(bp)
			s.cond.Broadcast()
			return nil
		}
		s.cond.Wait()
	}
}

// end records the producer's result and wakes the consumer.
func (s *stream) end(err error) {
	s.mu.Lock()
	if err != errStopped {
		s.err = err
	}
	s.finished = true
	s.cond.Broadcast()
	s.mu.Unlock()
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

// activate marks the stream as the one being written: from now on the
// producer waits for the consumer rather than spilling. It then waits until
// the source is open and returns the error opening it.
func (s *stream) activate() error {
	s.mu.Lock()
	s.active = true
	s.cond.Broadcast()
	s.mu.Unlock()
	<-s.ready
	return s.openErr
}

// result reports whether the producer has finished and, if so, the digest
// of the whole stream and its error.
func (s *stream) result() (finished bool, sum digest.Digest, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.finished {
		return false, "", nil
	}
	return true, s.sum, s.err
}

// next takes the next chunk off the queue, reading it back from the spill
// file if it was spilled, or returns the end of the stream.
func (s *stream) next(discard bool) (chunk, error) {
	s.mu.Lock()
	for len(s.q) == 0 && !s.finished {
		s.cond.Wait()
	}
	if len(s.q) == 0 {
		s.mu.Unlock()
		if s.err != nil {
			return chunk{}, s.err
		}
		return chunk{}, io.EOF
	}
	c := s.q[0]
	s.q[0] = chunk{}
	s.q = s.q[1:]
	if c.buf != nil {
		s.mem--
	} else {
		s.spilled -= int64(c.n)
	}
	s.cond.Broadcast()
	s.mu.Unlock()
	if c.buf != nil || discard {
		return c, nil
	}
	bp := bufPool.Get().(*[]byte)
	if _, err := s.spill.ReadAt((*bp)[:c.n], c.off); err != nil {
		bufPool.Put(bp)
		return chunk{}, &readError{fmt.Errorf("read back decompressed data: %w", err)}
	}
	punchHole(s.spill, c.off, int64(c.n))
	return chunk{buf: bp, n: c.n}, nil
}

// Read implements io.Reader over the chunks.
func (s *stream) Read(p []byte) (int, error) {
	for s.curOff >= s.cur.n {
		s.release()
		if s.exhausted {
			return 0, s.endErr()
		}
		c, err := s.next(false)
		if err != nil {
			s.exhausted = true
			return 0, err
		}
		s.cur, s.curOff = c, 0
	}
	n := copy(p, (*s.cur.buf)[s.curOff:s.cur.n])
	s.curOff += n
	return n, nil
}

func (s *stream) release() {
	if s.cur.buf != nil {
		bufPool.Put(s.cur.buf)
	}
	s.cur, s.curOff = chunk{}, 0
}

func (s *stream) endErr() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	return io.EOF
}

// drain consumes the rest of the stream (tar padding, trailing data) so the
// count and the digest cover every byte, and returns the producer's error.
func (s *stream) drain() error {
	s.release()
	for !s.exhausted {
		c, err := s.next(true)
		if err != nil {
			s.exhausted = true
			break
		}
		if c.buf != nil {
			bufPool.Put(c.buf)
		}
	}
	s.wg.Wait()
	return s.err
}

// stop ends the producer, waits for it and releases the buffers and the
// spill file; it may be called more than once, after drain too.
func (s *stream) stop() {
	s.stopOnce.Do(func() {
		s.mu.Lock()
		s.stopped = true
		s.cond.Broadcast()
		s.mu.Unlock()
		s.wg.Wait()
		s.unwatch()
		s.release()
		for _, c := range s.q {
			if c.buf != nil {
				bufPool.Put(c.buf)
			}
		}
		s.q = nil
		if s.spill != nil {
			s.spill.Close()
		}
	})
}

// readError is a failure to read or decompress the layer blob.
type readError struct{ err error }

func (e *readError) Error() string { return "read layer: " + e.err.Error() }
func (e *readError) Unwrap() error { return e.err }
