//go:build unix

package inroot

import "syscall"

// noFollow makes an open refuse a symbolic link as its last element.
const noFollow = syscall.O_NOFOLLOW
