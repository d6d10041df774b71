package storage

import (
	"bufio"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"
)

// The fence keeps garbage collection from removing a blob that a push is
// using. Every operation that makes a push depend on a blob in a repository
// (an upload finishing, a mount, a HEAD that tells a client it need not
// upload, a manifest PUT checking what it references) runs under the blob
// digest's lock and leaves a pin on (repository, digest). GC removes a
// blob only under the same lock, and only if no pin protects it, so a push
// and a deletion of the same blob are ordered: either the pin comes first
// and GC skips the blob, or the deletion comes first and the push sees the
// blob missing (a HEAD answers 404 and the client uploads it again; an
// upload finishing publishes its own copy).
//
// A pin on a blob nothing references yet lasts for the push window (a push
// in flight: the blobs are there, the manifest has not come yet). A manifest
// PUT turns the pins of what it references into committed pins, which
// protect the blob only from a collection that started before the commit
// (whose view of the references may predate the manifest). Pins are recorded
// in a journal under the root so they outlive a restart.

// pinKey names a blob in a repository; repo "" is the shared store.
type pinKey struct {
	repo string
	dgst digest.Digest
}

type pin struct {
	at        time.Time
	committed bool
}

const fenceShards = 64

type fence struct {
	shards  [fenceShards]fenceShard
	journal *pinJournal
	now     func() time.Time
}

type fenceShard struct {
	mu   sync.Mutex
	pins map[pinKey]pin
}

func newFence(journal *pinJournal) *fence {
	f := &fence{journal: journal, now: time.Now}
	for i := range f.shards {
		f.shards[i].pins = map[pinKey]pin{}
	}
	return f
}

func (f *fence) shard(d digest.Digest) *fenceShard {
	h := fnv.New32a()
	h.Write([]byte(d))
	return &f.shards[h.Sum32()%fenceShards]
}

// repinInterval is how old a pin must be before pinning again records it
// in the journal anew.
const repinInterval = time.Minute

// pin runs fn under d's lock and, if fn succeeds, pins d in repo: the blob
// is part of a push in flight.
func (f *fence) pin(repo string, d digest.Digest, fn func() error) error {
	s := f.shard(d)
	s.mu.Lock()
	if err := fn(); err != nil {
		s.mu.Unlock()
		return err
	}
	k := pinKey{repo, d}
	now := f.now()
	old, had := s.pins[k]
	s.pins[k] = pin{at: now}
	s.mu.Unlock()
	if !had || old.committed || now.Sub(old.at) > repinInterval {
		f.journal.record('+', now, k)
	}
	return nil
}

// commit marks ds in repo as referenced by a manifest committed now.
func (f *fence) commit(repo string, ds []digest.Digest) {
	now := f.now()
	for _, d := range ds {
		s := f.shard(d)
		k := pinKey{repo, d}
		s.mu.Lock()
		s.pins[k] = pin{at: now, committed: true}
		s.mu.Unlock()
		f.journal.record('=', now, k)
	}
}

// locked runs fn under d's lock.
func (f *fence) locked(d digest.Digest, fn func() error) error {
	s := f.shard(d)
	s.mu.Lock()
	defer s.mu.Unlock()
	return fn()
}

// protected reports whether a pin protects d in repo from a collection that
// started at markStart, counting uncommitted pins newer than window.
func (f *fence) protectedLocked(s *fenceShard, k pinKey, markStart, windowStart time.Time) bool {
	p, ok := s.pins[k]
	if !ok {
		return false
	}
	if !p.at.Before(markStart) {
		return true
	}
	return !p.committed && p.at.After(windowStart)
}

// sweep runs remove under d's lock unless a pin protects d in repo; it
// reports whether remove ran and succeeded.
func (f *fence) sweep(repo string, d digest.Digest, markStart, windowStart time.Time, remove func() error) (bool, error) {
	s := f.shard(d)
	k := pinKey{repo, d}
	s.mu.Lock()
	defer s.mu.Unlock()
	if f.protectedLocked(s, k, markStart, windowStart) {
		return false, nil
	}
	if err := remove(); err != nil {
		return false, err
	}
	delete(s.pins, k)
	return true, nil
}

// isProtected reports whether d in repo is protected, without removing
// anything (for dry runs).
func (f *fence) isProtected(repo string, d digest.Digest, markStart, windowStart time.Time) bool {
	s := f.shard(d)
	s.mu.Lock()
	defer s.mu.Unlock()
	return f.protectedLocked(s, pinKey{repo, d}, markStart, windowStart)
}

// prune forgets pins that protect nothing any more: uncommitted ones older
// than the window, committed ones older than the collection that just
// ended. It then rewrites the journal.
func (f *fence) prune(markStart, windowStart time.Time) error {
	return f.journal.compact(func(emit func(byte, time.Time, pinKey)) {
		for i := range f.shards {
			s := &f.shards[i]
			s.mu.Lock()
			for k, p := range s.pins {
				if p.committed && p.at.Before(markStart) || !p.committed && !p.at.After(windowStart) {
					delete(s.pins, k)
					continue
				}
				op := byte('+')
				if p.committed {
					op = '='
				}
				emit(op, p.at, k)
			}
			s.mu.Unlock()
		}
	})
}

// load restores pins from the journal.
func (f *fence) load() error {
	return f.journal.replay(func(op byte, at time.Time, k pinKey) {
		s := f.shard(k.dgst)
		s.pins[k] = pin{at: at, committed: op == '='}
	})
}

// pinJournal is an append-only file of pins: lines "+ UNIXNANO REPO DIGEST"
// (a blob of a push in flight) and "= UNIXNANO REPO DIGEST" (referenced by
// a committed manifest); the last line for a blob wins. Writes are not
// synced: a pin lost to a power failure is covered by the grace period.
type pinJournal struct {
	path string
	mu   sync.Mutex
	f    *os.File // nil when read-only or not open
}

func openPinJournal(path string, readOnly bool) (*pinJournal, error) {
	j := &pinJournal{path: path}
	if readOnly {
		return j, nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open pin journal: %w", err)
	}
	j.f = f
	return j, nil
}

func (j *pinJournal) record(op byte, at time.Time, k pinKey) {
	if j == nil {
		return
	}
	line := fmt.Sprintf("%c %d %s %s\n", op, at.UnixNano(), orDash(k.repo), k.dgst)
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.f != nil {
		_, _ = j.f.WriteString(line)
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func (j *pinJournal) replay(fn func(op byte, at time.Time, k pinKey)) error {
	if j == nil {
		return nil
	}
	f, err := os.Open(j.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read pin journal: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 64<<10)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) != 4 || len(fields[0]) != 1 || (fields[0][0] != '+' && fields[0][0] != '=') {
			continue // a torn or foreign line
		}
		ns, err := strconv.ParseInt(fields[1], 10, 64)
		d := digest.Digest(fields[3])
		if err != nil || d.Validate() != nil {
			continue
		}
		repo := fields[2]
		if repo == "-" {
			repo = ""
		}
		fn(fields[0][0], time.Unix(0, ns), pinKey{repo, d})
	}
	return sc.Err()
}

// compact rewrites the journal with what snapshot emits.
func (j *pinJournal) compact(snapshot func(emit func(byte, time.Time, pinKey))) error {
	if j == nil {
		return nil
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.f == nil {
		snapshot(func(byte, time.Time, pinKey) {})
		return nil
	}
	tmp, err := os.CreateTemp(filepath.Dir(j.path), ".pins-*")
	if err != nil {
		return fmt.Errorf("compact pin journal: %w", err)
	}
	w := bufio.NewWriter(tmp)
	snapshot(func(op byte, at time.Time, k pinKey) {
		fmt.Fprintf(w, "%c %d %s %s\n", op, at.UnixNano(), orDash(k.repo), k.dgst)
	})
	err = w.Flush()
	if err == nil {
		err = tmp.Close()
	} else {
		tmp.Close()
	}
	if err == nil {
		err = os.Rename(tmp.Name(), j.path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("compact pin journal: %w", err)
	}
	f, err := os.OpenFile(j.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("compact pin journal: %w", err)
	}
	j.f.Close()
	j.f = f
	return nil
}

func (j *pinJournal) close() error {
	if j == nil {
		return nil
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.f == nil {
		return nil
	}
	err := j.f.Close()
	j.f = nil
	return err
}

// drop runs fn under d's lock and forgets the pin of d in repo.
func (f *fence) drop(repo string, d digest.Digest, fn func() error) error {
	s := f.shard(d)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := fn(); err != nil {
		return err
	}
	delete(s.pins, pinKey{repo, d})
	return nil
}
