package container

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"syscall"
	"time"

	"github.com/lading-oci/lading/errdef"
)

// ExecOptions configure Runtime.Run.
type ExecOptions struct {
	// Stdin, Stdout and Stderr are the container process's; nil is
	// /dev/null. An *os.File is handed to the process as it is (a terminal
	// stays a terminal); anything else goes through a pipe.
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// ForwardSignals relays the signals this process receives (TERM, HUP,
	// USR1, USR2, and INT and QUIT when they cannot have come from a
	// terminal the runtime shares) to the runtime, which passes them on to
	// the container.
	ForwardSignals bool
	// StopTimeout is how long a container may take to exit once ctx is
	// done (after a SIGTERM) before it is killed; default 10 seconds.
	StopTimeout time.Duration
}

var validID = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.+-]{0,127}$`)

// CheckName checks a container name (also its runtime id): letters,
// digits, '_', '.', '+', '-', starting with a letter or digit, at most 128
// characters.
func CheckName(name string) error {
	if !validID.MatchString(name) {
		return fmt.Errorf("container name %q: %w: use letters, digits, '_', '.', '+' and '-', starting with a letter or digit", name, errdef.ErrInvalid)
	}
	return nil
}

// Run runs the bundle in dir as container id, in the foreground, and
// returns the container's exit code (128+N when signal N ended it). When
// ctx ends, the container gets SIGTERM (unless a signal was just passed on
// to it) and, StopTimeout later, SIGKILL; the error is then ctx's. The
// container and its runtime state are deleted on every way out. A failure
// of the runtime itself (a bundle it refuses, a namespace the kernel
// refuses) is an error carrying the runtime's own message.
func (r *Runtime) Run(ctx context.Context, dir, id string, opts ExecOptions) (int, error) {
	if err := CheckName(id); err != nil {
		return -1, err
	}
	logFile := filepath.Join(dir, "runtime.log")
	_ = os.Remove(logFile)
	cmd := exec.Command(r.Path, r.args(logFile, "run", "--bundle", dir, id)...)
	cmd.Dir = dir
	cmd.Stdin = opts.Stdin
	cmd.Stdout = opts.Stdout
	cmd.Stderr = opts.Stderr
	tty := isTerminal(opts.Stdin)
	// Apart from a terminal's process group, signals reach the runtime only
	// through us, once.
	cmd.SysProcAttr = procAttr(!tty)
	defer r.forceDelete(id)
	if err := cmd.Start(); err != nil {
		return -1, fmt.Errorf("start %s: %w", r.Name, err)
	}
	var sigs chan os.Signal
	if opts.ForwardSignals {
		sigs = make(chan os.Signal, 8)
		signal.Notify(sigs, forwarded(tty)...)
		defer signal.Stop(sigs)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	stop := opts.StopTimeout
	if stop <= 0 {
		stop = 10 * time.Second
	}
	var werr error
	ctxDone := ctx.Done()
	var kill, last <-chan time.Time
	var lastSignal time.Time
	stopped := false // we stopped the container because ctx ended
wait:
	for {
		select {
		case werr = <-done:
			break wait
		case s := <-sigs:
			_ = cmd.Process.Signal(s)
			lastSignal = time.Now()
		case <-ctxDone:
			ctxDone = nil
			// A signal that ended ctx (the CLI's interrupt handling) has
			// been, or is about to be, passed on: then the container
			// decides how to end, and is killed only if it has not within
			// the stop timeout. Otherwise it gets SIGTERM first.
			if sigs != nil && time.Since(lastSignal) > time.Second {
				select {
				case s := <-sigs:
					_ = cmd.Process.Signal(s)
					lastSignal = time.Now()
				case <-time.After(50 * time.Millisecond):
				}
			}
			if time.Since(lastSignal) > time.Second {
				_ = cmd.Process.Signal(syscall.SIGTERM)
				stopped = true
			}
			kill = time.After(stop)
		case <-kill:
			// Kill the container; the runtime then exits with its status.
			// A runtime that does not is killed itself a while later.
			r.kill(id)
			stopped = true
			kill = nil
			last = time.After(5 * time.Second)
		case <-last:
			_ = cmd.Process.Kill()
		}
	}
	if werr == nil {
		return 0, nil
	}
	var ee *exec.ExitError
	if !errors.As(werr, &ee) {
		return -1, fmt.Errorf("%s run %s: %w", r.Name, id, werr)
	}
	if msgs := logErrors(logFile); len(msgs) > 0 {
		return -1, fmt.Errorf("%s run %s: %s", r.Name, id, runtimeMessage(logFile, "", werr))
	}
	code := ee.ExitCode()
	if code < 0 {
		// The runtime itself was killed by a signal.
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			code = 128 + int(ws.Signal())
		}
	}
	if stopped && ctx.Err() != nil {
		return code, ctx.Err()
	}
	return code, nil
}

// kill sends SIGKILL to every process of container id.
func (r *Runtime) kill(id string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = exec.CommandContext(ctx, r.Path, r.args("", "kill", "--all", id, "KILL")...).Run()
}

// isTerminal reports whether r is a terminal (not merely a character
// device such as /dev/null).
func isTerminal(r io.Reader) bool {
	f, ok := r.(*os.File)
	return ok && terminal(f)
}
