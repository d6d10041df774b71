package containerfile

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/lading-oci/lading/bundle"
	"github.com/lading-oci/lading/container"
	"github.com/lading-oci/lading/errdef"
	"github.com/lading-oci/lading/image"
	"github.com/lading-oci/lading/internal/inroot"
	"github.com/lading-oci/lading/layer/unpack"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// RunError is a RUN instruction that ran and failed.
type RunError struct {
	// ExitCode is the command's exit code (128+N for signal N).
	ExitCode int
	// Output is the end of what it printed, when it was not shown.
	Output string
}

// Error gives the exit code and, when it was not shown, the output.
func (e *RunError) Error() string {
	msg := fmt.Sprintf("the command exited with code %d", e.ExitCode)
	if e.Output != "" {
		msg += "; its output ended with:\n" + e.Output
	}
	return msg
}

// runInputs are what a RUN reads beyond its image: the ARGs in scope, the
// network, and the shell for a shell form.
func (b *builder) runInputs(st *stage, c *instructions.RunCommand) []string {
	in := argInputs(st)
	if b.opts.HostNetwork {
		in = append(in, "network host")
	}
	if c.PrependShell {
		in = append(in, "shell "+strings.Join(st.shell, "\x00"))
	}
	return in
}

// run runs c in tree, the stage's working tree.
func (b *builder) run(ctx context.Context, st *stage, tree string, c *instructions.RunCommand) error {
	rt := b.opts.Runtime
	if rt == nil {
		var err error
		if rt, err = container.FindRuntime(ctx, "", container.FindOptions{CacheDir: b.opts.Cache.Dir}); err != nil {
			return fmt.Errorf("RUN needs an OCI runtime: %w", err)
		}
		b.opts.Runtime = rt
	}
	args := b.commandLine(st, c.ShellDependantCmdLine)
	if len(args) == 0 {
		return fmt.Errorf("%w: RUN with nothing to run", errdef.ErrInvalid)
	}
	cfg := *st.img.ConfigFile
	wd := path.Clean("/" + cfg.Config.WorkingDir)
	if err := mkdirIn(tree, wd, 0, 0); err != nil {
		return fmt.Errorf("working directory %s: %w", wd, err)
	}
	// The ARGs in scope are in the environment, below the image's own.
	var env []string
	for _, k := range st.order {
		if !image.HasEnv(cfg.Config.Env, k) {
			env = append(env, k+"="+st.args[k])
		}
	}
	var mounts []specs.Mount
	if b.opts.HostNetwork {
		for _, f := range []string{"/etc/resolv.conf", "/etc/hosts"} {
			if _, err := os.Stat(f); err == nil {
				mounts = append(mounts, specs.Mount{Destination: f, Type: "none", Source: f, Options: []string{"rbind", "ro"}})
			}
		}
	}
	spec, err := bundle.Generate(ctx, &cfg, tree, bundle.Options{
		Entrypoint:  args,
		Args:        []string{},
		Env:         env,
		Hostname:    "lading-build",
		HostNetwork: b.opts.HostNetwork,
		Rootless:    os.Geteuid() != 0,
		Mounts:      mounts,
		RootPath:    tree,
	})
	if err != nil {
		return err
	}
	b.runs++
	dir := filepath.Join(b.workDir, fmt.Sprintf("run-%d", b.runs))
	if err := os.Mkdir(dir, 0o700); err != nil {
		return err
	}
	defer unpack.RemoveAll(dir)
	if err := bundle.WriteConfig(ctx, dir, spec); err != nil {
		return err
	}
	stubs := missing(tree, spec.Mounts)
	var tail tailBuffer
	stdout, stderr := io.Writer(&tail), io.Writer(&tail)
	shown := b.opts.Stdout != nil
	if shown {
		stdout = b.opts.Stdout
		stderr = b.opts.Stderr
		if stderr == nil {
			stderr = b.opts.Stdout
		}
	}
	id := fmt.Sprintf("%s-run-%d", filepath.Base(b.workDir), b.runs)
	code, err := rt.Run(ctx, dir, id, container.ExecOptions{Stdout: stdout, Stderr: stderr})
	removeStubs(tree, stubs)
	if err != nil {
		return err
	}
	if code != 0 {
		re := &RunError{ExitCode: code}
		if !shown {
			re.Output = tail.String()
		}
		return re
	}
	return nil
}

// missing lists the mount destinations, and the directories above them,
// that the tree does not have: the runtime makes them as mount points, and
// they must not end up in the layer.
func missing(tree string, mounts []specs.Mount) []string {
	var out []string
	seen := map[string]bool{}
	for _, m := range mounts {
		dest := path.Clean(m.Destination)
		// The first missing element is the one to remove afterwards.
		parts := strings.Split(strings.TrimPrefix(dest, "/"), "/")
		for i := range parts {
			p := "/" + strings.Join(parts[:i+1], "/")
			hp, err := inroot.ResolveParent(tree, p)
			if err != nil {
				break
			}
			if _, err := os.Lstat(hp); errors.Is(err, fs.ErrNotExist) {
				if !seen[p] {
					seen[p] = true
					out = append(out, p)
				}
				break
			}
			if hp2, err := inroot.Resolve(tree, p); err != nil || hp2 != hp {
				break // a link: what it points at is not ours to clean
			}
		}
	}
	return out
}

// removeStubs removes the mount points the runtime made, when they are
// still empty: empty directories (deepest first) and empty files.
func removeStubs(tree string, stubs []string) {
	slices.SortFunc(stubs, func(a, b string) int { return strings.Count(b, "/") - strings.Count(a, "/") })
	for _, s := range stubs {
		hp, err := inroot.ResolveParent(tree, s)
		if err != nil {
			continue
		}
		removeEmpty(hp)
	}
}

// removeEmpty removes p if it is an empty file, or a directory holding
// only empty directories and files.
func removeEmpty(p string) bool {
	fi, err := os.Lstat(p)
	if err != nil {
		return false
	}
	switch {
	case fi.Mode().IsRegular() && fi.Size() == 0:
		return os.Remove(p) == nil
	case fi.IsDir():
		ents, err := os.ReadDir(p)
		if err != nil {
			return false
		}
		for _, e := range ents {
			if !removeEmpty(filepath.Join(p, e.Name())) {
				return false
			}
		}
		return os.Remove(p) == nil
	}
	return false
}

// tailBuffer keeps the last 8 KiB written to it.
type tailBuffer struct{ b []byte }

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > 8<<10 {
		t.b = t.b[len(t.b)-8<<10:]
	}
	return len(p), nil
}

func (t *tailBuffer) String() string { return strings.TrimRight(string(t.b), "\n") }
