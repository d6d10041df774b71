package unpack

import (
	"errors"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

func timespec(t time.Time) unix.Timespec {
	return unix.Timespec{Sec: t.Unix(), Nsec: int64(t.Nanosecond())}
}

// fdControl runs fn with the descriptor of f.
func fdControl(f *os.File, fn func(fd int) error) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) { ferr = fn(int(fd)) }); err != nil {
		return err
	}
	return ferr
}

// futimens sets the times of the open file f.
func futimens(f *os.File, atime, mtime time.Time) error {
	return fdControl(f, func(fd int) error { return futimensFD(fd, f.Name(), atime, mtime) })
}

// lutimesAt sets the times of name in dir without following a symlink.
// name is a single path component.
func lutimesAt(dir *os.File, name string, atime, mtime time.Time) error {
	ts := []unix.Timespec{timespec(atime), timespec(mtime)}
	return fdControl(dir, func(fd int) error {
		if err := unix.UtimesNanoAt(fd, name, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return &os.PathError{Op: "utimensat", Path: name, Err: err}
		}
		return nil
	})
}

// mknodAt makes a device node or FIFO called name (a single component) in dir.
func mknodAt(dir *os.File, name string, mode uint32, major, minor uint32) error {
	return fdControl(dir, func(fd int) error {
		if err := unix.Mknodat(fd, name, mode, int(unix.Mkdev(major, minor))); err != nil {
			return &os.PathError{Op: "mknodat", Path: name, Err: err}
		}
		return nil
	})
}

// fsetxattr sets an extended attribute on the open file f.
func fsetxattr(f *os.File, name string, value []byte) error {
	return fdControl(f, func(fd int) error { return fsetxattrFD(fd, name, value) })
}

// lsetxattrAt sets an extended attribute on name (a single component) in dir
// without following a symlink. Linux has no *at form, so the directory is
// named through its /proc/self/fd link: the kernel resolves that magic link
// to the already-open directory, never through the path it was opened by.
func lsetxattrAt(dir *os.File, name, attr string, value []byte) error {
	return fdControl(dir, func(fd int) error {
		return unix.Lsetxattr("/proc/self/fd/"+strconv.Itoa(fd)+"/"+name, attr, value, 0)
	})
}

func isNotSupported(err error) bool {
	return errors.Is(err, unix.ENOTSUP) || errors.Is(err, unix.EOPNOTSUPP)
}

func isPermission(err error) bool {
	return errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES)
}

func isExist(err error) bool { return errors.Is(err, unix.EEXIST) }

func isNotExist(err error) bool {
	return errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR)
}

const (
	modeChar  = unix.S_IFCHR
	modeBlock = unix.S_IFBLK
	modeFifo  = unix.S_IFIFO
)

// dirFlag opens only a directory.
const dirFlag = unix.O_DIRECTORY

var (
	errInvalidArg error = unix.EINVAL
	errLoop       error = unix.ELOOP
)

// openSpill makes an unnamed temporary file in the directory root
// (O_TMPFILE), for decompressed data waiting to be written. It has no name,
// so nothing in the target changes, and the kernel frees it on close or if
// the process dies. Filesystems without O_TMPFILE return an error.
func openSpill(root *os.File) (*os.File, error) {
	var f *os.File
	err := fdControl(root, func(fd int) error {
		nfd, err := unix.Openat(fd, ".", unix.O_TMPFILE|unix.O_RDWR|unix.O_CLOEXEC, 0o600)
		if err != nil {
			return &os.PathError{Op: "open O_TMPFILE", Path: root.Name(), Err: err}
		}
		f = os.NewFile(uintptr(nfd), root.Name()+"/(spill)")
		return nil
	})
	return f, err
}

// punchHole frees the blocks of f in [off, off+n) once they have been read
// back, so a spill file never holds more than what waits in it. Failure
// only costs space until the file is closed.
func punchHole(f *os.File, off, n int64) {
	_ = fdControl(f, func(fd int) error {
		return unix.Fallocate(fd, unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, off, n)
	})
}

// The calls below work on raw descriptors of regular files being written:
// an *os.File would register each with the runtime poller (five more
// system calls per file, all failing or undone for regular files).

// createAt makes the regular file name (a single component) in the
// directory dfd, exclusively and without following a symlink there.
func createAt(dfd int, name string, perm uint32) (int, error) {
	for {
		fd, err := unix.Openat(dfd, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, perm)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return -1, &os.PathError{Op: "create", Path: name, Err: err}
		}
		return fd, nil
	}
}

func closeFD(fd int) error { return unix.Close(fd) }

// openDirAt opens the directory name (a single component) in the directory
// dfd, without following a symlink there. The file is made with os.NewFile,
// which leaves a blocking descriptor out of the runtime poller (os.Root's
// OpenFile costs four fcntl calls more).
func openDirAt(dfd int, name string) (*os.File, error) {
	for {
		fd, err := unix.Openat(dfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, &os.PathError{Op: "open", Path: name, Err: err}
		}
		return os.NewFile(uintptr(fd), name), nil
	}
}

// copyToFD copies r to fd through buf until r ends, returning the bytes
// written.
func copyToFD(fd int, r io.Reader, buf []byte) (int64, error) {
	var total int64
	for {
		n, rerr := r.Read(buf)
		for p := buf[:n]; len(p) > 0; {
			w, err := unix.Write(fd, p)
			if err == unix.EINTR {
				continue
			}
			if err != nil {
				return total, &os.PathError{Op: "write", Path: "", Err: err}
			}
			p = p[w:]
			total += int64(w)
		}
		if rerr == io.EOF {
			return total, nil
		}
		if rerr != nil {
			return total, rerr
		}
	}
}

func fchown(fd, uid, gid int) error {
	if err := unix.Fchown(fd, uid, gid); err != nil {
		return &os.PathError{Op: "fchown", Err: err}
	}
	return nil
}

// fchmod sets the permission, set-id and sticky bits of fd to mode (the
// low twelve bits of a tar header's mode).
func fchmod(fd int, mode uint32) error {
	if err := unix.Fchmod(fd, mode); err != nil {
		return &os.PathError{Op: "fchmod", Err: err}
	}
	return nil
}

func fsetxattrFD(fd int, name string, value []byte) error {
	return unix.Fsetxattr(fd, name, value, 0)
}

// futimensFD sets the times of the open file fd (utimensat with a NULL
// path); name is for errors.
func futimensFD(fd int, name string, atime, mtime time.Time) error {
	ts := [2]unix.Timespec{timespec(atime), timespec(mtime)}
	_, _, e := unix.Syscall6(unix.SYS_UTIMENSAT, uintptr(fd), 0, uintptr(unsafe.Pointer(&ts[0])), 0, 0, 0)
	if e != 0 {
		return &os.PathError{Op: "futimens", Path: name, Err: e}
	}
	return nil
}

// hasDefaultACL reports whether the directory dfd has a default ACL, or
// whether that cannot be told (then modes are always set explicitly).
func hasDefaultACL(dfd int) bool {
	_, err := unix.Fgetxattr(dfd, "system.posix_acl_default", nil)
	return err != unix.ENODATA && err != unix.ENOTSUP && err != unix.EOPNOTSUPP
}

// processUmask reads the umask from /proc/self/status (Linux 4.7 and
// later), or returns 0o777 (every mode then set explicitly) if it cannot:
// umask(2) would have to set it to read it, racing with other goroutines.
func processUmask() uint32 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0o777
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "Umask:"); ok {
			u, err := strconv.ParseUint(strings.TrimSpace(v), 8, 32)
			if err != nil {
				return 0o777
			}
			return uint32(u)
		}
	}
	return 0o777
}

// inMemory reports whether the directory dir is on a filesystem kept in
// memory (tmpfs, ramfs), where a spill file would be memory too.
func inMemory(dir *os.File) bool {
	var st unix.Statfs_t
	if err := fdControl(dir, func(fd int) error { return unix.Fstatfs(fd, &st) }); err != nil {
		return false
	}
	return st.Type == unix.TMPFS_MAGIC || st.Type == unix.RAMFS_MAGIC
}
