//go:build unix

package container

import (
	"os"
	"syscall"
)

// procAttr puts the runtime in a process group of its own when newGroup is
// set, so that signals sent to ours reach it only once, through us.
func procAttr(newGroup bool) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: newGroup}
}

// forwarded are the signals relayed to the runtime; a terminal delivers
// INT and QUIT to the runtime itself when it shares our process group.
func forwarded(tty bool) []os.Signal {
	s := []os.Signal{syscall.SIGTERM, syscall.SIGHUP, syscall.SIGUSR1, syscall.SIGUSR2}
	if !tty {
		s = append(s, syscall.SIGINT, syscall.SIGQUIT)
	}
	return s
}
