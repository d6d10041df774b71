//go:build linux

package unpack

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/lading-oci/lading/errdef"
	"github.com/opencontainers/go-digest"
)

// bytesLayer is a Layer over an in-memory blob.
func bytesLayer(blob []byte, diffID digest.Digest) Layer {
	return Layer{
		Open: func(context.Context) (io.ReadCloser, error) {
			return io.NopCloser(bytes.NewReader(blob)), nil
		},
		DiffID: diffID,
	}
}

// layersOf makes Layers of raw tars, compressed in turn with nothing, gzip
// and zstd, with their diff_ids.
func layersOf(t testing.TB, raws [][]byte) []Layer {
	t.Helper()
	var ls []Layer
	for i, raw := range raws {
		blob := raw
		switch i % 3 {
		case 1:
			blob = gz(t, raw)
		case 2:
			blob = zst(t, raw)
		}
		ls = append(ls, bytesLayer(blob, digest.Digest(sha(raw))))
	}
	return ls
}

// randomBody returns n bytes that do not compress, seeded.
func randomBody(n int, seed int64) string {
	b := make([]byte, n)
	rand.New(rand.NewSource(seed)).Read(b)
	return string(b)
}

// stackedLayers is a set of layers that depend on each other's order:
// replacements, whiteouts, opaque whiteouts, hardlinks to lower files, and
// bodies large enough to be read ahead and spilled.
func stackedLayers(t testing.TB) [][]byte {
	big := randomBody(5<<20, 1)
	return [][]byte{
		tarOf(t, dir("etc/"), file("etc/hostname", "one"), dir("usr/"), dir("usr/lib/"),
			file("usr/lib/a", "a"), file("usr/lib/b", "b"), symlink("lib", "usr/lib"), dir("opq/"), file("opq/old", "o"),
			file("big", big)),
		tarOf(t, file("etc/hostname", "two"), whiteoutEnt("usr/lib/.wh.a"), hardlink("usr/lib/b2", "usr/lib/b"),
			whiteoutEnt("opq/.wh..wh..opq"), file("opq/new", "n"), file("big2", randomBody(5<<20, 2)),
			withMode(dir("usr/"), 0o700)),
		tarOf(t, whiteoutEnt(".wh.big"), file("lib/c", "through the symlink"), symlink("etc/hostname", "/etc/other"),
			file("etc/other", "three")),
		tarOf(t, dir("big/"), file("big/inside", "a dir where a file was"), whiteoutEnt("etc/.wh.other")),
	}
}

func TestApplyLayersMatchesApply(t *testing.T) {
	raws := stackedLayers(t)
	want := t.TempDir()
	for _, raw := range raws {
		mustApply(t, want, raw, Options{Rootless: true})
	}
	wantSnap := snapshot(t, want)
	ls := layersOf(t, raws)
	for _, ahead := range []int{-1, 0, 1, 2, 10} {
		t.Run(fmt.Sprintf("lookahead %d", ahead), func(t *testing.T) {
			root := filepath.Join(t.TempDir(), "root")
			sts, err := ApplyLayers(context.Background(), root, ls, Options{Rootless: true, Lookahead: ahead})
			if err != nil {
				t.Fatal(err)
			}
			if len(sts) != len(raws) {
				t.Fatalf("%d stats for %d layers", len(sts), len(raws))
			}
			for i, st := range sts {
				if st.Bytes != int64(len(raws[i])) {
					t.Errorf("layer %d: Bytes = %d, want %d", i, st.Bytes, len(raws[i]))
				}
			}
			if d := diffSnapshots(wantSnap, snapshot(t, root), func(p string, x, y node) string {
				if p == "." {
					return "" // made by the test vs by ApplyLayers
				}
				x.Ino, y.Ino = 0, 0 // hardlinks: Nlink here, the shared inode below
				return exactEq(p, x, y)
			}); len(d) > 0 {
				t.Errorf("ApplyLayers differs from Apply in turn:\n%s", strings.Join(d, "\n"))
			}
			if snap := snapshot(t, root); snap["usr/lib/b"].Ino != snap["usr/lib/b2"].Ino {
				t.Error("usr/lib/b2 is not a hardlink of usr/lib/b")
			}
			if got := readFile(t, filepath.Join(root, "usr/lib/c")); got != "through the symlink" {
				t.Errorf("usr/lib/c = %q", got)
			}
		})
	}
}

func TestApplyLayersErrors(t *testing.T) {
	good := tarOf(t, file("first", "1"))
	second := tarOf(t, file("second", "2"))
	cases := []struct {
		name   string
		layers func() []Layer
		want   error
		inMsg  string
	}{
		{"diff_id mismatch ahead", func() []Layer {
			return []Layer{bytesLayer(good, digest.Digest(sha(good))), bytesLayer(gz(t, second), digest.Digest(sha(good)))}
		}, errdef.ErrDigestMismatch, "layer 1: layer diff_id"},
		{"corrupt compression ahead", func() []Layer {
			g := gz(t, second)
			g[len(g)/2] ^= 0xff
			return []Layer{bytesLayer(good, ""), bytesLayer(g, "")}
		}, errdef.ErrInvalid, "layer 1"},
		{"open fails", func() []Layer {
			return []Layer{bytesLayer(good, ""), {Name: "sha256:abc", Open: func(context.Context) (io.ReadCloser, error) {
				return nil, fmt.Errorf("fetch: %w", errdef.ErrNotFound)
			}}}
		}, errdef.ErrNotFound, "layer 1 (sha256:abc): fetch"},
		{"blob fails its check at the end", func() []Layer {
			return []Layer{bytesLayer(good, ""), {Open: func(context.Context) (io.ReadCloser, error) {
				return io.NopCloser(io.MultiReader(bytes.NewReader(gz(t, second)), failAtEnd{})), nil
			}}}
		}, errdef.ErrDigestMismatch, "layer 1: read layer: "},
		{"hostile entry ahead", func() []Layer {
			return []Layer{bytesLayer(good, ""), bytesLayer(tarOf(t, file("../x", "x")), "")}
		}, errdef.ErrUnsafePath, `layer 1: layer entry "../x"`},
		{"bomb ahead", func() []Layer {
			return []Layer{bytesLayer(good, ""), {Open: func(context.Context) (io.ReadCloser, error) { return zeroLayer(1 << 40), nil }}}
		}, errdef.ErrTooLarge, "layer 1: "},
		{"no Open", func() []Layer { return []Layer{{}} }, errdef.ErrInvalid, "layer 0: "},
		{"bad diff_id", func() []Layer { return []Layer{bytesLayer(good, "sha256:zz")} }, errdef.ErrInvalid, "layer 0: diff_id"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			sts, err := ApplyLayers(context.Background(), root, tc.layers(), Options{MaxBytes: 32 << 20})
			if err == nil {
				t.Fatal("no error")
			}
			// Stats for the layers applied and the one that failed; none
			// when the arguments are refused.
			want := 2
			if strings.HasPrefix(tc.inMsg, "layer 0") {
				want = 0
			}
			if len(sts) != want {
				t.Errorf("%d stats, want %d", len(sts), want)
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("err = %v, want %v", err, tc.want)
			}
			if !strings.HasPrefix(err.Error(), tc.inMsg) {
				t.Errorf("err = %q, want prefix %q", err, tc.inMsg)
			}
			if strings.HasPrefix(tc.inMsg, "layer 1") && readFile(t, filepath.Join(root, "first")) != "1" {
				t.Error("layer 0 not applied before layer 1 failed")
			}
		})
	}
	if _, err := ApplyLayers(context.Background(), t.TempDir(), nil, Options{DiffID: digest.Digest(sha(good))}); !errors.Is(err, errdef.ErrInvalid) {
		t.Errorf("Options.DiffID: err = %v", err)
	}
}

// failAtEnd fails the read at the end of a blob, as a verifying reader does.
type failAtEnd struct{}

func (failAtEnd) Read([]byte) (int, error) {
	return 0, fmt.Errorf("blob: %w", errdef.ErrDigestMismatch)
}

func TestApplyLayersCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	started := make(chan struct{})
	slow := Layer{Open: func(ctx context.Context) (io.ReadCloser, error) {
		close(started)
		<-ctx.Done()
		return nil, ctx.Err()
	}}
	done := make(chan error, 1)
	go func() {
		_, err := ApplyLayers(ctx, t.TempDir(), []Layer{slow, bytesLayer(tarOf(t, file("f", "x")), "")}, Options{})
		done <- err
	}()
	<-started
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("err = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("ApplyLayers did not return after cancel")
	}
}

func TestApplyLayersClosesBlobs(t *testing.T) {
	var open, closed atomic.Int32
	mk := func(raw []byte) Layer {
		return Layer{Open: func(context.Context) (io.ReadCloser, error) {
			open.Add(1)
			return closeCounter{bytes.NewReader(gz(t, raw)), &closed}, nil
		}}
	}
	ls := []Layer{mk(tarOf(t, file("a", "a"))), mk(tarOf(t, file("../bad", "b"))), mk(tarOf(t, file("c", "c")))}
	if _, err := ApplyLayers(context.Background(), t.TempDir(), ls, Options{Lookahead: 2}); err == nil {
		t.Fatal("no error")
	}
	if open.Load() != closed.Load() {
		t.Errorf("%d blobs opened, %d closed", open.Load(), closed.Load())
	}
}

type closeCounter struct {
	io.Reader
	n *atomic.Int32
}

func (c closeCounter) Close() error { c.n.Add(1); return nil }

// spillStream starts a stream over data that is read ahead into a spill
// file in a fresh directory (skipping where O_TMPFILE is missing), and
// returns it with the directory and the spill file.
func spillStream(tb testing.TB, data []byte, alg digest.Algorithm, spillMax int64) (*stream, string, *os.File) {
	tb.Helper()
	dir := tb.TempDir()
	d, err := os.Open(dir)
	if err != nil {
		tb.Fatal(err)
	}
	defer d.Close()
	spill, err := openSpill(d)
	if err != nil {
		tb.Skipf("no O_TMPFILE on this filesystem: %v", err)
	}
	s := newStream(context.Background(), func() (source, error) { return source{r: bytes.NewReader(data)}, nil }, 0, alg, spill, spillMax)
	return s, dir, spill
}

// state is what the producer of s has done so far.
func (s *stream) state() (finished bool, spilled int64, mem int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.finished, s.spilled, s.mem
}

// TestStreamSpill decompresses a stream ahead into a spill file, then reads
// it back: same bytes, in order, and the file's blocks are freed as read.
func TestStreamSpill(t *testing.T) {
	data := []byte(randomBody(11<<20+123, 3))
	s, dir, spill := spillStream(t, data, digest.SHA256, maxSpill)
	defer s.stop()
	// Not active: the producer reads everything, spilling past memAhead.
	deadline := time.Now().Add(10 * time.Second)
	for {
		finished, spilled, mem := s.state()
		if finished {
			if mem != memAhead || spilled != int64(len(data)-memAhead*chunkSize) {
				t.Errorf("mem %d chunks, spilled %d bytes", mem, spilled)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("producer did not finish into the spill file")
		}
		time.Sleep(time.Millisecond)
	}
	if err := s.activate(); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(s)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatal("read back differs")
	}
	if want := digest.FromBytes(data); s.sum != want || s.total != int64(len(data)) {
		t.Errorf("sum %s total %d, want %s %d", s.sum, s.total, want, len(data))
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(int(spill.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	if st.Blocks*512 > 1<<20 {
		t.Errorf("spill file still holds %d bytes after reading", st.Blocks*512)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("spill file visible in the root: %v", entries)
	}
}

// TestStreamBounded checks that an active stream, or one without a spill
// file, reads no more than memAhead chunks ahead of its consumer, and that
// stop ends a producer waiting for room.
func TestStreamBounded(t *testing.T) {
	var read atomic.Int64
	src := readFunc(func(p []byte) (int, error) {
		read.Add(int64(len(p)))
		return len(p), nil // endless
	})
	s := newStream(context.Background(), func() (source, error) { return source{r: src}, nil }, 0, "", nil, 0)
	time.Sleep(50 * time.Millisecond)
	if n := read.Load(); n > (memAhead+1)*chunkSize {
		t.Errorf("read %d bytes ahead, bound %d", n, (memAhead+1)*chunkSize)
	}
	done := make(chan struct{})
	go func() { s.stop(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("stop did not end a waiting producer")
	}
}

type readFunc func([]byte) (int, error)

func (f readFunc) Read(p []byte) (int, error) { return f(p) }

func BenchmarkStreamSpill(b *testing.B) {
	data := []byte(randomBody(64<<20, 4))
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		s, _, _ := spillStream(b, data, "", maxSpill)
		for finished, _, _ := s.state(); !finished; finished, _, _ = s.state() {
			time.Sleep(100 * time.Microsecond)
		}
		s.activate()
		h := sha256.New()
		io.Copy(h, s)
		s.stop()
	}
}

// TestStreamSpillCap checks that a stream read ahead stops at its spill
// bound and delivers everything once the writer reaches it.
func TestStreamSpillCap(t *testing.T) {
	data := []byte(randomBody(10<<20, 5))
	s, _, _ := spillStream(t, data, "", 2*chunkSize)
	defer s.stop()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if _, spilled, _ := s.state(); spilled >= 2*chunkSize {
			break
		}
	}
	time.Sleep(50 * time.Millisecond) // time to overrun the bound, if it would
	finished, spilled, mem := s.state()
	if finished || mem != memAhead || spilled != 2*chunkSize {
		t.Errorf("finished %v, %d chunks in memory, %d bytes spilled; want the bound of %d chunks and %d bytes",
			finished, mem, spilled, memAhead, 2*chunkSize)
	}
	if err := s.activate(); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(s)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read back: %v, equal %v", err, bytes.Equal(got, data))
	}
}

func TestInMemory(t *testing.T) {
	var st syscall.Statfs_t
	if err := syscall.Statfs("/dev/shm", &st); err != nil || st.Type != 0x01021994 {
		t.Skip("no tmpfs at /dev/shm")
	}
	shm, err := os.Open("/dev/shm")
	if err != nil {
		t.Fatal(err)
	}
	defer shm.Close()
	if !inMemory(shm) {
		t.Error("tmpfs not recognised")
	}
	disk, err := os.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer disk.Close()
	var dst syscall.Statfs_t
	syscall.Statfs(disk.Name(), &dst)
	if dst.Type != 0x01021994 && inMemory(disk) {
		t.Errorf("%s taken for tmpfs", disk.Name())
	}
}

func TestApplyLayersNone(t *testing.T) {
	root := filepath.Join(t.TempDir(), "new")
	sts, err := ApplyLayers(context.Background(), root, nil, Options{})
	if err != nil || len(sts) != 0 {
		t.Fatalf("no layers: %v, %d stats", err, len(sts))
	}
	if entries, err := os.ReadDir(root); err != nil || len(entries) != 0 {
		t.Errorf("root after no layers: %v, %v", entries, err)
	}
}

// TestApplyLayersChecksReadAheadLayerFirst checks that a layer read to its
// end before its turn is refused before any of it is written.
func TestApplyLayersChecksReadAheadLayerFirst(t *testing.T) {
	second := gz(t, tarOf(t, file("second", "2"), file("third", "3")))
	read := make(chan struct{})
	ls := []Layer{
		{Open: func(ctx context.Context) (io.ReadCloser, error) {
			// Layer 0 starts once layer 1 has been read to its end.
			select {
			case <-read:
			case <-time.After(10 * time.Second):
			}
			time.Sleep(50 * time.Millisecond)
			return io.NopCloser(bytes.NewReader(tarOf(t, file("first", "1")))), nil
		}},
		{Open: func(context.Context) (io.ReadCloser, error) {
			return io.NopCloser(io.MultiReader(bytes.NewReader(second), readFunc(func([]byte) (int, error) {
				close(read)
				return 0, io.EOF
			}))), nil
		}, DiffID: digest.FromString("something else")},
	}
	root := t.TempDir()
	_, err := ApplyLayers(context.Background(), root, ls, Options{Lookahead: 1})
	if !errors.Is(err, errdef.ErrDigestMismatch) || !strings.Contains(err.Error(), "nothing of the layer written") {
		t.Fatalf("err = %v", err)
	}
	if readFile(t, filepath.Join(root, "first")) != "1" {
		t.Error("layer 0 not applied")
	}
	if exists(filepath.Join(root, "second")) || exists(filepath.Join(root, "third")) {
		t.Error("entries of the refused layer written")
	}
}
