// Command lading builds, inspects, verifies, unpacks and copies OCI images
// kept in OCI image layouts (oci:DIR:TAG).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/lading-oci/lading/errdef"
)

// Exit codes, documented in the root command's help.
const (
	exitOK          = 0
	exitFailure     = 1
	exitUsage       = 2
	exitNotFound    = 3
	exitVerify      = 4
	exitAuth        = 5
	exitUnavailable = 6
	exitInterrupted = 130
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := execute(ctx, os.Stdout, os.Stderr, os.Stdin, os.Args[1:])
	stop()
	os.Exit(code)
}

// execute runs the CLI with args, prints the error if there is one, and
// returns the exit code.
func execute(ctx context.Context, stdout, stderr io.Writer, stdin io.Reader, args []string) int {
	err := run(ctx, stdout, stderr, stdin, args...)
	if err == nil {
		return exitOK
	}
	var ee exitError
	if errors.As(err, &ee) {
		return ee.code // the command printed what it found
	}
	code := exitCode(ctx, err)
	if code == exitInterrupted {
		fmt.Fprintln(stderr, "lading: interrupted")
		return code
	}
	fmt.Fprintln(stderr, "lading: "+oneLine(err))
	return code
}

// exitCode chooses the exit code of a failed command.
func exitCode(ctx context.Context, err error) int {
	var ue usageError
	switch {
	case ctx.Err() != nil && errors.Is(err, context.Canceled):
		return exitInterrupted
	case errors.As(err, &ue):
		return exitUsage
	case errors.Is(err, errdef.ErrNotFound):
		return exitNotFound
	case errors.Is(err, errdef.ErrDigestMismatch), errors.Is(err, errdef.ErrSizeMismatch):
		return exitVerify
	case errors.Is(err, errdef.ErrUnauthorized), errors.Is(err, errdef.ErrDenied):
		return exitAuth
	case errors.Is(err, errdef.ErrUnavailable), errors.Is(err, errdef.ErrTooManyRequests):
		return exitUnavailable
	}
	return exitFailure
}

// exitError ends the program with code after the command printed its own
// output (verify's problems, validate's rules, diff --exit-code).
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// usageError is a command line the command cannot run: wrong flags or
// arguments. It exits with exitUsage.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }
