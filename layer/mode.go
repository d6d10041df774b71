package layer

import "io/fs"

// PermMode returns the permission, set-user-ID, set-group-ID and sticky
// bits of a tar header's mode as an fs.FileMode (no type bits).
func PermMode(mode int64) fs.FileMode {
	m := fs.FileMode(mode & 0o777)
	if mode&0o4000 != 0 {
		m |= fs.ModeSetuid
	}
	if mode&0o2000 != 0 {
		m |= fs.ModeSetgid
	}
	if mode&0o1000 != 0 {
		m |= fs.ModeSticky
	}
	return m
}
