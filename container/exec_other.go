//go:build !unix

package container

import (
	"os"
	"syscall"
)

func procAttr(bool) *syscall.SysProcAttr { return nil }

func forwarded(bool) []os.Signal { return []os.Signal{os.Interrupt} }
