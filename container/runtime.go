package container

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/lading-oci/lading/internal/atomicfile"

	"github.com/lading-oci/lading/bundle"
	"github.com/lading-oci/lading/errdef"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// RuntimeEnv names the environment variable that chooses the OCI runtime
// when no runtime is given: a name looked up on PATH (runc, crun) or a path.
const RuntimeEnv = "LADING_RUNTIME"

// Candidates are the runtimes looked for on PATH, in order, when none is
// chosen.
var Candidates = []string{"crun", "runc", "youki"}

// Runtime is an OCI runtime command line (runc, crun, youki and others
// that take runc's commands).
type Runtime struct {
	// Name is how the runtime was chosen ("runc", or the path given).
	Name string
	// Path is the executable.
	Path string
	// Root, when set, is the runtime's state directory (its --root flag);
	// empty leaves the runtime's default.
	Root string
}

// args puts the global flags in front of a runtime command.
func (r *Runtime) args(logFile string, cmd ...string) []string {
	var a []string
	if r.Root != "" {
		a = append(a, "--root", r.Root)
	}
	if logFile != "" {
		a = append(a, "--log", logFile, "--log-format", "json")
	}
	return append(a, cmd...)
}

// FindOptions configure FindRuntime.
type FindOptions struct {
	// CacheDir keeps the verdict of each probed runtime binary, so that a
	// runtime is tried once per binary (not per run). Empty: no cache.
	CacheDir string
}

// FindRuntime returns the runtime to use. A non-empty name (runc, crun, or
// a path) is taken as it is; so is the value of LADING_RUNTIME when name is
// empty. Otherwise the Candidates found on PATH are probed in order, each
// by creating (and deleting) a container with nothing to run, and the first
// that can make one on this machine is chosen; the verdicts are kept in
// opts.CacheDir per runtime binary. With no runtime installed, the error
// matches errdef.ErrNotFound; when every one installed fails, it matches
// errdef.ErrUnsupported and gives each runtime's own message.
func FindRuntime(ctx context.Context, name string, opts FindOptions) (*Runtime, error) {
	if name == "" {
		name = os.Getenv(RuntimeEnv)
	}
	if name != "" {
		p, err := exec.LookPath(name)
		if err != nil {
			return nil, fmt.Errorf("OCI runtime %q: %w: %v", name, errdef.ErrNotFound, err)
		}
		return &Runtime{Name: name, Path: p}, nil
	}
	var found, failures []string
	for _, c := range Candidates {
		p, err := exec.LookPath(c)
		if err != nil {
			continue
		}
		found = append(found, c)
		rt := &Runtime{Name: c, Path: p}
		err = probeCached(ctx, rt, opts.CacheDir)
		if err == nil {
			return rt, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		failures = append(failures, fmt.Sprintf("%s (%s): %v", c, p, err))
	}
	if len(found) == 0 {
		return nil, fmt.Errorf("no OCI runtime: %w: none of %s is on PATH (install runc or crun, or set %s)",
			errdef.ErrNotFound, strings.Join(Candidates, ", "), RuntimeEnv)
	}
	return nil, fmt.Errorf("no OCI runtime can start a container on this machine: %w: %s", errdef.ErrUnsupported, strings.Join(failures, "; "))
}

// verdict is what the probe cache keeps for one runtime binary.
type verdict struct {
	Size    int64     `json:"size"`
	ModTime time.Time `json:"modTime"`
	OK      bool      `json:"ok"`
	Message string    `json:"message,omitempty"`
}

var probeMu sync.Mutex

// probeCached probes rt unless the cache holds a verdict for the same
// binary (path, size and modification time).
func probeCached(ctx context.Context, rt *Runtime, cacheDir string) error {
	fi, err := os.Stat(rt.Path)
	if err != nil {
		return err
	}
	probeMu.Lock()
	defer probeMu.Unlock()
	file := ""
	verdicts := map[string]verdict{}
	if cacheDir != "" {
		file = filepath.Join(cacheDir, "runtimes.json")
		if data, err := os.ReadFile(file); err == nil && len(data) < 1<<20 {
			_ = json.Unmarshal(data, &verdicts)
		}
		if v, ok := verdicts[rt.Path]; ok && v.Size == fi.Size() && v.ModTime.Equal(fi.ModTime()) {
			if v.OK {
				return nil
			}
			return errors.New(v.Message)
		}
	}
	perr := Probe(ctx, rt)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if file != "" {
		v := verdict{Size: fi.Size(), ModTime: fi.ModTime(), OK: perr == nil}
		if perr != nil {
			v.Message = perr.Error()
		}
		verdicts[rt.Path] = v
		if data, err := json.Marshal(verdicts); err == nil && os.MkdirAll(cacheDir, 0o755) == nil {
			_ = atomicfile.Write(file, data, 0o600, false)
		}
	}
	return perr
}

// Probe checks that rt can create a container here: it creates one from an
// empty root filesystem holding a single empty executable (never started)
// and deletes it. The error carries the runtime's own message.
func Probe(ctx context.Context, rt *Runtime) error {
	dir, err := os.MkdirTemp("", "lading-probe-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	rootfs := filepath.Join(dir, "rootfs")
	if err := os.MkdirAll(rootfs, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(rootfs, "probe"), nil, 0o755); err != nil {
		return err
	}
	cfg := &ocispec.Image{Config: ocispec.ImageConfig{Entrypoint: []string{"/probe"}}}
	spec, err := bundle.Generate(ctx, cfg, rootfs, bundle.Options{Rootless: os.Geteuid() != 0, Hostname: "probe"})
	if err != nil {
		return err
	}
	if err := bundle.WriteConfig(ctx, dir, spec); err != nil {
		return err
	}
	id := "lading-probe-" + randomHex(6)
	logFile := filepath.Join(dir, "runtime.log")
	// The container's stdio is the runtime's: /dev/null, so that nothing
	// waits on a pipe the created container holds open. The runtime's
	// messages are in its log.
	cmd := exec.CommandContext(ctx, rt.Path, rt.args(logFile, "create", "--bundle", dir, id)...)
	cmd.Dir = dir
	err = cmd.Run()
	defer rt.forceDelete(id)
	if err != nil {
		return fmt.Errorf("%s", runtimeMessage(logFile, "", err))
	}
	return nil
}

// forceDelete removes container id whatever its state, with a deadline of
// its own (it runs on the way out, when the caller's context may be done).
func (r *Runtime) forceDelete(id string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, r.Path, r.args("", "delete", "--force", id)...)
	_ = cmd.Run()
}

// runtimeMessage is the runtime's own account of a failure: the error
// entries of its JSON log, else what it printed, else the exit status.
func runtimeMessage(logFile, stderr string, err error) string {
	if msgs := logErrors(logFile); len(msgs) > 0 {
		return strings.Join(msgs, "; ")
	}
	if s := strings.TrimSpace(stderr); s != "" {
		return strings.Join(strings.Fields(s), " ")
	}
	return err.Error()
}

// logErrors reads the runtime's JSON log (runc and crun write one entry a
// line: {"level":"error","msg":"..."}) and returns its error messages.
func logErrors(logFile string) []string {
	if logFile == "" {
		return nil
	}
	data, err := os.ReadFile(logFile)
	if err != nil || len(data) > 4<<20 {
		return nil
	}
	var out []string
	for _, line := range bytes.Split(data, []byte("\n")) {
		var e struct {
			Level string `json:"level"`
			Msg   string `json:"msg"`
		}
		if json.Unmarshal(line, &e) == nil && (e.Level == "error" || e.Level == "fatal") && e.Msg != "" {
			out = append(out, strings.TrimSpace(e.Msg))
		}
	}
	return out
}
