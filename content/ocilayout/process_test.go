package ocilayout_test

import (
	"errors"

	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lading-oci/lading/errdef"

	"github.com/lading-oci/lading/content/contenttest"
	"github.com/lading-oci/lading/content/ocilayout"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// helperEnv selects what TestHelperProcess does when this test binary is
// run as a child process.
const helperEnv = "OCILAYOUT_TEST_HELPER"

// TestHelperProcess is not a test: it is the body of the child processes
// started by the tests below. It does nothing unless helperEnv is set.
func TestHelperProcess(t *testing.T) {
	mode := os.Getenv(helperEnv)
	if mode == "" {
		t.Skip("run only as a child process")
	}
	err := runHelper(mode, os.Getenv("OCILAYOUT_TEST_DIR"), os.Getenv("OCILAYOUT_TEST_ARG"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

func runHelper(mode, dir, arg string) error {
	ctx := context.Background()
	s, err := ocilayout.Open(context.Background(), dir)
	if err != nil {
		return err
	}
	switch mode {
	case "tag":
		// arg: "<prefix> <count> <digest> <size>"
		f := strings.Fields(arg)
		n, _ := strconv.Atoi(f[1])
		size, _ := strconv.ParseInt(f[3], 10, 64)
		desc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.Digest(f[2]), Size: size}
		for i := range n {
			if err := s.Tag(ctx, desc, fmt.Sprintf("%s-%d", f[0], i)); err != nil {
				return err
			}
		}
		return nil
	case "slowwrite":
		// Push a large blob and write a large ingest, slowly, forever.
		desc := ocispec.Descriptor{Digest: digest.FromString("never complete"), Size: 1 << 30}
		var once sync.Once
		started := func() { once.Do(func() { fmt.Println("started") }) }
		var wg sync.WaitGroup
		wg.Go(func() {
			_ = s.Push(ctx, desc, &slowReader{onRead: started})
		})
		w, err := s.Ingest(ctx, "crash")
		if err != nil {
			return err
		}
		chunk := bytes.Repeat([]byte{'i'}, 64<<10)
		parent := os.Getppid()
		for i := 0; ; i++ {
			if _, err := w.Write(chunk); err != nil {
				return err
			}
			if i == 4 {
				started()
			}
			// Never outlive the test, however it ended.
			if i%100 == 0 && os.Getppid() != parent {
				return errors.New("parent gone")
			}
			time.Sleep(time.Millisecond)
		}
	}
	return fmt.Errorf("unknown mode %q", mode)
}

// slowReader yields 64 KiB chunks with a pause before each.
type slowReader struct {
	n      int
	onRead func()
}

func (r *slowReader) Read(p []byte) (int, error) {
	time.Sleep(time.Millisecond)
	r.n++
	if r.n == 5 {
		r.onRead()
	}
	n := min(len(p), 64<<10)
	for i := range p[:n] {
		p[i] = 'p'
	}
	return n, nil
}

func helper(t *testing.T, mode, dir, arg string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), helperEnv+"="+mode, "OCILAYOUT_TEST_DIR="+dir, "OCILAYOUT_TEST_ARG="+arg)
	cmd.Stderr = os.Stderr
	// A test that fails before it ends its helper must not leave it
	// running (slowwrite would fill the disk).
	t.Cleanup(func() {
		if cmd.Process != nil && cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	return cmd
}

// TestTwoProcessesTagging has two processes tag hundreds of tags in one
// layout at once (while this one tags too): no update may be lost.
func TestTwoProcessesTagging(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	s := newLayout(t)
	img := pushImage(t, s)
	const n = 150
	arg := func(prefix string) string {
		return fmt.Sprintf("%s %d %s %d", prefix, n, img.manifest.Digest, img.manifest.Size)
	}
	a := helper(t, "tag", s.Dir(), arg("a"))
	b := helper(t, "tag", s.Dir(), arg("b"))
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	for i := range 30 {
		tag(t, s, img.manifest, fmt.Sprintf("parent-%d", i))
	}
	if err := a.Wait(); err != nil {
		t.Fatalf("process a: %v", err)
	}
	if err := b.Wait(); err != nil {
		t.Fatalf("process b: %v", err)
	}
	got := map[string]bool{}
	s.Tags(context.Background(), func(tags []string) error {
		for _, tg := range tags {
			got[tg] = true
		}
		return nil
	})
	var missing []string
	for _, p := range []string{"a", "b"} {
		for i := range n {
			if name := fmt.Sprintf("%s-%d", p, i); !got[name] {
				missing = append(missing, name)
			}
		}
	}
	for i := range 30 {
		if name := fmt.Sprintf("parent-%d", i); !got[name] {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 || len(got) != 2*n+30 {
		t.Fatalf("%d tags, want %d; missing %v", len(got), 2*n+30, missing)
	}
}

// TestCrashMidWrite kills a process that is writing blobs and checks that
// nothing bad is left under blobs/ and that GC cleans up after it.
func TestCrashMidWrite(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	s := newLayout(t)
	img := pushImage(t, s, map[string]string{"a": "b"})
	tag(t, s, img.manifest, "v1")
	cmd := helper(t, "slowwrite", s.Dir(), "")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || line != "started\n" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("child did not start writing: %q %v", line, err)
	}
	// Let both writers get well under way, with their locks held.
	waitFor(t, func() bool {
		return fileSize(filepath.Join(s.Dir(), "ingest", "crash", "data")) > 512<<10 && pushTempSize(s.Dir()) > 512<<10
	})
	// While the writer lives, gc will not collect: what it wrote is not
	// tagged yet. With a minimum blob age it runs, and keeps the ingests
	// of the live writer.
	if _, err := s.GC(context.Background(), ocilayout.GCOptions{}); !errors.Is(err, errdef.ErrUnavailable) {
		t.Fatalf("gc with a live writer: err = %v, want ErrUnavailable", err)
	}
	rep := gc(t, s, ocilayout.GCOptions{MinBlobAge: time.Hour})
	if len(rep.Ingests) != 0 {
		t.Fatalf("gc removed the ingests of a live writer: %+v", rep.Ingests)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, out)
	cmd.Wait()

	vr := verify(t, s)
	if !vr.OK() {
		t.Fatalf("verify after a crash:\n%v", vr.Err())
	}
	if files := blobFiles(t, s.Dir()); len(files) != 3 {
		t.Fatalf("blobs/ holds %d files after the crash, want the 3 of the image", len(files))
	}
	rep = gc(t, s, ocilayout.GCOptions{})
	if len(rep.Ingests) != 2 || len(rep.Blobs) != 0 {
		t.Fatalf("gc after the crash removed blobs %+v and ingests %+v, want the 2 ingests only", rep.Blobs, rep.Ingests)
	}
	if _, err := os.Stat(filepath.Join(s.Dir(), "ingest")); !os.IsNotExist(err) {
		t.Fatalf("ingest/ not cleaned up: %v", err)
	}
	if d, err := s.Resolve(context.Background(), "v1"); err != nil || d.Digest != img.manifest.Digest {
		t.Fatalf("resolve after crash: %v %v", d, err)
	}
}

func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

func pushTempSize(dir string) int64 {
	m, _ := filepath.Glob(filepath.Join(dir, "ingest", ".push-*"))
	if len(m) != 1 {
		return 0
	}
	return fileSize(m[0])
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out waiting")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestConcurrentPushAndTag pushes the same and different blobs and tags
// them from many goroutines at once.
func TestConcurrentPushAndTag(t *testing.T) {
	s := newLayout(t)
	ctx := context.Background()
	shared, sharedDesc := contenttest.Blob(t, 300<<10)
	var wg sync.WaitGroup
	const workers = 16
	errs := make(chan error, workers*3)
	manifests := make([]ocispec.Descriptor, workers)
	for i := range workers {
		wg.Go(func() {
			if err := s.Push(ctx, sharedDesc, bytes.NewReader(shared)); err != nil {
				errs <- err
				return
			}
			img := pushImage(t, s, map[string]string{"f": strconv.Itoa(i % 4)}, map[string]string{"g": strconv.Itoa(i)})
			manifests[i] = img.manifest
			for j := range 5 {
				if err := s.Tag(ctx, img.manifest, fmt.Sprintf("w%d-%d", i, j)); err != nil {
					errs <- err
				}
			}
			if err := s.Tag(ctx, img.manifest, "shared"); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for i := range workers {
		for j := range 5 {
			d, err := s.Resolve(ctx, fmt.Sprintf("w%d-%d", i, j))
			if err != nil || d.Digest != manifests[i].Digest {
				t.Errorf("tag w%d-%d: %v %v", i, j, d.Digest, err)
			}
		}
	}
	var tags []string
	s.Tags(ctx, func(p []string) error { tags = append(tags, p...); return nil })
	if len(tags) != workers*5+1 {
		t.Fatalf("%d tags, want %d", len(tags), workers*5+1)
	}
	if vr := verify(t, s); !vr.OK() {
		t.Fatalf("verify:\n%v", vr.Err())
	}
}
