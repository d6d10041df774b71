// Package progress carries the progress of long operations (building a
// layer, unpacking, verifying, copying) from the library to whoever shows
// it. The library reports Events to a Func; the CLI draws bars, prints
// lines or writes JSON from them. A nil Func discards everything, so
// reporting costs nothing when nobody listens.
package progress

import (
	"io"
	"sync/atomic"
)

// State is where a unit of work stands.
type State string

// The states an Event reports.
const (
	// Started: the unit begins; Total is known or -1.
	Started State = "started"
	// Running: Current bytes are done.
	Running State = "running"
	// Finished: the unit is done (Current is its size).
	Finished State = "finished"
	// Skipped: the unit needed no work (a blob already present).
	Skipped State = "skipped"
	// Failed: the unit stopped with Err.
	Failed State = "failed"
)

// Event is one report about one unit of work: a blob, a layer, a file.
type Event struct {
	// ID identifies the unit among those of one operation (a digest).
	ID string `json:"id"`
	// Name says what it is, for people ("layer 2/3", "config").
	Name string `json:"name,omitempty"`
	// State is what happened.
	State State `json:"state"`
	// Current is how many bytes are done; Total how many there are, -1
	// when unknown.
	Current int64 `json:"current"`
	Total   int64 `json:"total"`
	// Err is set when State is Failed.
	Err error `json:"-"`
}

// Func receives events. It must be safe to call from several goroutines
// and should return quickly.
type Func func(Event)

// Report sends e to f unless f is nil.
func (f Func) Report(e Event) {
	if f != nil {
		f(e)
	}
}

// Start reports that the unit id starts, with total bytes (-1 unknown).
func (f Func) Start(id, name string, total int64) {
	f.Report(Event{ID: id, Name: name, State: Started, Total: total})
}

// Finish reports the unit id done after n bytes, or failed with err.
func (f Func) Finish(id, name string, n, total int64, err error) {
	if err != nil {
		f.Report(Event{ID: id, Name: name, State: Failed, Current: n, Total: total, Err: err})
		return
	}
	f.Report(Event{ID: id, Name: name, State: Finished, Current: n, Total: total})
}

// Skip reports that the unit id needed no work.
func (f Func) Skip(id, name string, total int64) {
	f.Report(Event{ID: id, Name: name, State: Skipped, Current: total, Total: total})
}

// Reader wraps r so that every read reports the bytes done so far as a
// Running event for id. With a nil f it returns r itself.
func (f Func) Reader(r io.Reader, id, name string, total int64) *Counter {
	return &Counter{r: r, f: f, id: id, name: name, total: total}
}

// Counter is a reader that counts and reports what passes through it.
type Counter struct {
	r     io.Reader
	f     Func
	id    string
	name  string
	total int64
	n     atomic.Int64
}

// Read implements io.Reader.
func (c *Counter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if n > 0 {
		done := c.n.Add(int64(n))
		c.f.Report(Event{ID: c.id, Name: c.name, State: Running, Current: done, Total: c.total})
	}
	return n, err
}

// N is how many bytes have been read.
func (c *Counter) N() int64 { return c.n.Load() }
