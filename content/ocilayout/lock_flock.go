//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package ocilayout

import (
	"context"
	"errors"
	"os"
	"sync"
	"syscall"
)

// flock takes an exclusive advisory lock on f, waiting while another open
// file description holds it. The wait happens in the kernel (so waiters are
// woken in turn) on a separate goroutine, so that ctx can end it: if ctx
// ends first, flock returns an errAbandoned and f then belongs to that
// goroutine, which releases the lock as soon as it gets it and closes f.
func flock(ctx context.Context, f *os.File) error {
	return flockMode(ctx, f, syscall.LOCK_EX)
}

// flockShared is flock for a shared lock: any number of them can be held
// at once, but not together with an exclusive one.
func flockShared(ctx context.Context, f *os.File) error {
	return flockMode(ctx, f, syscall.LOCK_SH)
}

func flockMode(ctx context.Context, f *os.File, how int) error {
	err := flockFd(f, how|syscall.LOCK_NB)
	var pe *os.PathError
	if err == nil || !errors.As(err, &pe) || pe.Err != syscall.EWOULDBLOCK {
		return err
	}
	done := make(chan error, 1)
	var mu sync.Mutex
	abandoned := false
	go func() {
		err := flockFd(f, how)
		mu.Lock()
		defer mu.Unlock()
		if abandoned {
			if err == nil {
				funlock(f)
			}
			f.Close()
			return
		}
		done <- err
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		mu.Lock()
		defer mu.Unlock()
		select {
		case err := <-done:
			return err
		default:
			abandoned = true
			return errAbandoned{ctx.Err()}
		}
	}
}

// tryFlock takes an exclusive advisory lock on f without waiting; errLocked
// means another open file description holds it.
func tryFlock(f *os.File) error {
	err := flockFd(f, syscall.LOCK_EX|syscall.LOCK_NB)
	var pe *os.PathError
	if errors.As(err, &pe) && pe.Err == syscall.EWOULDBLOCK {
		return errLocked
	}
	return err
}

// flockFd runs flock(2) with how on f, retrying on EINTR.
func flockFd(f *os.File, how int) error {
	raw, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	if err := raw.Control(func(fd uintptr) {
		for {
			ferr = syscall.Flock(int(fd), how)
			if ferr != syscall.EINTR {
				return
			}
		}
	}); err != nil {
		return err
	}
	if ferr != nil {
		return &os.PathError{Op: "flock", Path: f.Name(), Err: ferr}
	}
	return nil
}

// funlock releases a lock taken by flock or tryFlock.
func funlock(f *os.File) error {
	return flockFd(f, syscall.LOCK_UN)
}
