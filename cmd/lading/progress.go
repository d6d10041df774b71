package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
	"golang.org/x/sys/unix"

	"github.com/lading-oci/lading/progress"
)

// progressFor returns the progress reporter of a long command, drawing as
// --progress says, and a function that ends the display (call it before
// printing the result).
//
//	auto   bars on a terminal; elsewhere plain lines, once the work has
//	       taken more than a few seconds (quick commands stay silent)
//	tty    bars (github.com/vbauerster/mpb)
//	plain  a line every few seconds with bytes done, total, rate and ETA,
//	       and a line per finished layer or blob
//	json   one JSON event per line, for wrappers
//	quiet  nothing
func (o *rootOptions) progressFor(cmd *cobra.Command, what string) (progress.Func, func()) {
	pf, end := o.display(cmd, what)
	if !o.verbose {
		return pf, end
	}
	// -v logs each unit of work as it ends.
	log := o.log()
	return func(e progress.Event) {
		switch e.State {
		case progress.Finished, progress.Skipped:
			log.Debug(what, "unit", e.Name, "id", e.ID, "state", string(e.State), "bytes", e.Current)
		case progress.Failed:
			log.Debug(what, "unit", e.Name, "id", e.ID, "state", string(e.State), "error", e.Err)
		}
		pf.Report(e)
	}, end
}

// display is the progress display --progress asks for.
func (o *rootOptions) display(cmd *cobra.Command, what string) (progress.Func, func()) {
	w := cmd.ErrOrStderr()
	mode := o.progressMode
	if mode == "auto" {
		mode = "plain"
		if isTerminal(w) {
			mode = "tty"
		}
	}
	switch mode {
	case "tty":
		return newBars(w)
	case "plain":
		return newPlain(w, what, o.progressMode == "auto")
	case "json":
		return newJSONEvents(w)
	}
	return nil, func() {}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// newBars draws a bar per unit of work.
func newBars(w io.Writer) (progress.Func, func()) {
	p := mpb.New(mpb.WithOutput(w), mpb.WithWidth(40), mpb.WithRefreshRate(120*time.Millisecond))
	var mu sync.Mutex
	bars := map[string]*mpb.Bar{}
	f := func(e progress.Event) {
		mu.Lock()
		defer mu.Unlock()
		b := bars[e.ID]
		if b == nil {
			if e.State != progress.Started && e.State != progress.Skipped {
				return
			}
			total := max(e.Total, 0)
			name := e.Name
			if len(e.ID) > 19 {
				name += " " + e.ID[7:19]
			}
			b = p.New(total, mpb.BarStyle(),
				mpb.PrependDecorators(decor.Name(name, decor.WC{W: 26, C: decor.DindentRight})),
				mpb.AppendDecorators(decor.OnComplete(decor.CountersKibiByte("% .1f / % .1f", decor.WC{W: 22}), "done")))
			bars[e.ID] = b
		}
		switch e.State {
		case progress.Running:
			b.SetCurrent(e.Current)
		case progress.Finished, progress.Skipped:
			b.SetCurrent(e.Current)
			b.SetTotal(-1, true)
		case progress.Failed:
			b.Abort(false)
		}
	}
	return f, func() {
		mu.Lock()
		for _, b := range bars {
			if !b.Completed() {
				b.Abort(false)
			}
		}
		mu.Unlock()
		p.Wait()
	}
}

// plain prints progress lines: the totals every few seconds and a line per
// finished unit. With quietStart, nothing is printed until the work has
// taken quietFor; lines for units finished before then are printed then.
type plain struct {
	w    io.Writer
	what string

	mu      sync.Mutex
	start   time.Time
	last    time.Time
	units   map[string]*unitState
	held    []string
	talking bool
	stop    chan struct{}
	done    chan struct{}
}

type unitState struct {
	name           string
	current, total int64
	finished       bool
}

const (
	plainEvery = 3 * time.Second
	quietFor   = 2 * time.Second
)

func newPlain(w io.Writer, what string, quietStart bool) (progress.Func, func()) {
	pl := &plain{w: w, what: what, start: time.Now(), units: map[string]*unitState{}, talking: !quietStart,
		stop: make(chan struct{}), done: make(chan struct{})}
	go pl.tick()
	return pl.event, pl.end
}

func (pl *plain) event(e progress.Event) {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	u := pl.units[e.ID]
	if u == nil {
		u = &unitState{name: e.Name, total: e.Total}
		pl.units[e.ID] = u
	}
	if e.Total >= 0 {
		u.total = e.Total
	}
	u.current = e.Current
	switch e.State {
	case progress.Finished:
		u.finished = true
		pl.say(fmt.Sprintf("%s: %s %s done (%s)", pl.what, e.Name, short(e.ID), humanSize(e.Current)))
	case progress.Skipped:
		u.finished = true
		pl.say(fmt.Sprintf("%s: %s %s already present", pl.what, e.Name, short(e.ID)))
	case progress.Failed:
		pl.say(fmt.Sprintf("%s: %s %s failed: %v", pl.what, e.Name, short(e.ID), e.Err))
	}
}

// say prints a line, or holds it while the work is still quick.
func (pl *plain) say(line string) {
	if !pl.talking {
		pl.held = append(pl.held, line)
		return
	}
	fmt.Fprintln(pl.w, line)
}

func (pl *plain) tick() {
	defer close(pl.done)
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-pl.stop:
			return
		case now := <-t.C:
			pl.mu.Lock()
			if !pl.talking && now.Sub(pl.start) >= quietFor {
				pl.talking = true
				for _, l := range pl.held {
					fmt.Fprintln(pl.w, l)
				}
				pl.held = nil
			}
			if pl.talking && now.Sub(pl.last) >= plainEvery {
				pl.last = now
				fmt.Fprintln(pl.w, pl.summary(now))
			}
			pl.mu.Unlock()
		}
	}
}

// summary is the totals line: done, total, rate, ETA.
func (pl *plain) summary(now time.Time) string {
	var cur, total int64
	known := true
	for _, u := range pl.units {
		cur += u.current
		if u.total < 0 {
			known = false
		}
		total += max(u.total, 0)
	}
	el := now.Sub(pl.start).Seconds()
	rate := float64(cur) / max(el, 0.001)
	s := fmt.Sprintf("%s: %s", pl.what, humanSize(cur))
	if known && total > 0 {
		s += fmt.Sprintf(" / %s (%d%%)", humanSize(total), cur*100/total)
	}
	s += fmt.Sprintf(", %s/s", humanSize(int64(rate)))
	if known && total > cur && rate > 0 {
		s += fmt.Sprintf(", ETA %s", time.Duration(float64(total-cur)/rate*float64(time.Second)).Round(time.Second))
	}
	return s
}

func (pl *plain) end() {
	close(pl.stop)
	<-pl.done
	pl.mu.Lock()
	defer pl.mu.Unlock()
	if pl.talking && len(pl.units) > 0 {
		fmt.Fprintln(pl.w, pl.summary(time.Now())+", finished in "+time.Since(pl.start).Round(10*time.Millisecond).String())
	}
}

func short(id string) string {
	if len(id) > 19 {
		return id[:19]
	}
	return id
}

// newJSONEvents writes each event as a JSON line.
func newJSONEvents(w io.Writer) (progress.Func, func()) {
	var mu sync.Mutex
	enc := json.NewEncoder(w)
	return func(e progress.Event) {
		type line struct {
			progress.Event
			Time  string `json:"time"`
			Error string `json:"error,omitempty"`
		}
		l := line{Event: e, Time: time.Now().UTC().Format(time.RFC3339Nano)}
		if e.Err != nil {
			l.Error = e.Err.Error()
		}
		mu.Lock()
		_ = enc.Encode(l)
		mu.Unlock()
	}, func() {}
}
