package storage

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
)

// FuzzPinJournal feeds arbitrary journal content to replay: it must not
// fail or yield an invalid digest.
func FuzzPinJournal(f *testing.F) {
	f.Add("+ 1700000000000000000 repo sha256:" + digest.FromString("x").Encoded() + "\n")
	f.Add("= 1 - sha256:" + digest.FromString("y").Encoded() + "\n+ torn")
	f.Add("\x00\n\n+ - - -")
	f.Fuzz(func(t *testing.T, data string) {
		path := filepath.Join(t.TempDir(), "pins")
		os.WriteFile(path, []byte(data), 0o644)
		j := &pinJournal{path: path}
		err := j.replay(func(op byte, at time.Time, k pinKey) {
			if op != '+' && op != '=' {
				t.Fatalf("op %q", op)
			}
			if k.dgst.Validate() != nil {
				t.Fatalf("digest %q", k.dgst)
			}
		})
		if err != nil && len(data) < 60<<10 {
			t.Fatalf("replay: %v", err)
		}
	})
}

// TestPinJournalCompact: pruning rewrites the journal with what still
// protects something, and appends go on after it.
func TestPinJournalCompact(t *testing.T) {
	dir := t.TempDir()
	j, err := openPinJournal(filepath.Join(dir, "pins"), false)
	if err != nil {
		t.Fatal(err)
	}
	f := newFence(j)
	d1, d2 := digest.FromString("1"), digest.FromString("2")
	f.pin("r", d1, func() error { return nil })
	f.now = func() time.Time { return time.Now().Add(-2 * time.Hour) }
	f.pin("r", d2, func() error { return nil })
	f.now = time.Now
	if err := f.prune(time.Now(), time.Now().Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	f.commit("r", []digest.Digest{d2})
	j.close()
	j2, _ := openPinJournal(filepath.Join(dir, "pins"), true)
	g := newFence(j2)
	if err := g.load(); err != nil {
		t.Fatal(err)
	}
	if !g.isProtected("r", d1, time.Now(), time.Now().Add(-time.Hour)) {
		t.Fatal("live pin lost in compaction")
	}
	if p := g.shard(d2).pins[pinKey{"r", d2}]; !p.committed {
		t.Fatal("append after compaction lost")
	}
}
