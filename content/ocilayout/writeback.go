package ocilayout

import "os"

// writebackChunk is how many bytes a blob file collects before the kernel
// is asked to start writing them out.
const writebackChunk = 8 << 20

// writeback starts writing a growing file out to disk as it is written, so
// that the fsync before a blob is published waits only for its last few
// MiB instead of all of it.
type writeback struct {
	f       *os.File
	started int64 // bytes before this offset have been handed to the kernel
}

// wrote records that the file now has size bytes and starts writeback of
// the new ones once there are writebackChunk of them. It is only a hint:
// failures are ignored (the fsync still guarantees durability).
func (w *writeback) wrote(size int64) {
	if size-w.started < writebackChunk {
		return
	}
	startWriteback(w.f, w.started, size-w.started)
	w.started = size
}
