package bundle

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strconv"
	"strings"

	"github.com/lading-oci/lading/errdef"
	"github.com/lading-oci/lading/internal/inroot"
	"github.com/moby/sys/user"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// maxUserDB caps how much of /etc/passwd or /etc/group is read.
const maxUserDB = 4 << 20

// ResolveUser turns an image's User ("", "name", "uid", "name:group",
// "uid:gid", "name:gid", "uid:group") into numeric ids through rootfs's own
// /etc/passwd and /etc/group, which are read inside rootfs: symbolic links
// are followed as the container would see them and never out of rootfs.
// It returns the user and its home directory ("" when unknown).
//
// Numeric ids are taken as they are, whether the files list them or not
// (a numeric user without a group gets gid 0). A name the files do not hold
// is an error matching errdef.ErrNotFound. As conversion.md says,
// additional groups come from /etc/group only for a user given by name
// without a group.
func ResolveUser(ctx context.Context, rootfs, spec string) (specs.User, string, error) {
	if err := ctx.Err(); err != nil {
		return specs.User{}, "", err
	}
	name, group, _ := strings.Cut(spec, ":")
	passwd, err := readUserDB(rootfs, "/etc/passwd")
	if err != nil {
		return specs.User{}, "", err
	}
	groups, err := readUserDB(rootfs, "/etc/group")
	if err != nil {
		return specs.User{}, "", err
	}
	eu, err := user.GetExecUser(spec, &user.ExecUser{Uid: 0, Gid: 0}, passwd, groups)
	if err != nil {
		if spec == "" {
			// No user was asked for: root, whatever the files say.
			return specs.User{UID: 0, GID: 0}, "/root", nil
		}
		if errors.Is(err, user.ErrRange) {
			return specs.User{}, "", fmt.Errorf("user %q: %w: %v", spec, errdef.ErrInvalid, err)
		}
		return specs.User{}, "", fmt.Errorf("user %q in the image: %w: %v", spec, errdef.ErrNotFound, err)
	}
	u := specs.User{UID: uint32(eu.Uid), GID: uint32(eu.Gid)}
	_, numericUser := numeric(name)
	if !numericUser && group == "" {
		for _, g := range eu.Sgids {
			if uint32(g) != u.GID && !containsGID(u.AdditionalGids, uint32(g)) {
				u.AdditionalGids = append(u.AdditionalGids, uint32(g))
			}
		}
	}
	home := eu.Home
	if spec == "" && home == "" {
		home = "/root"
	}
	return u, home, nil
}

func numeric(s string) (int, bool) {
	n, err := strconv.Atoi(s)
	return n, err == nil
}

func containsGID(gids []uint32, g uint32) bool {
	for _, x := range gids {
		if x == g {
			return true
		}
	}
	return false
}

// readUserDB reads a user database file from inside rootfs; a missing file
// is nil (no entries), which GetExecUser takes as "no such name".
func readUserDB(rootfs, name string) (io.Reader, error) {
	if rootfs == "" {
		return nil, nil
	}
	f, err := inroot.Open(rootfs, name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s of the image: %w", name, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxUserDB+1))
	if err != nil {
		return nil, fmt.Errorf("read %s of the image: %w", name, err)
	}
	if len(data) > maxUserDB {
		return nil, fmt.Errorf("%s of the image: %w: larger than %d bytes", name, errdef.ErrTooLarge, maxUserDB)
	}
	return strings.NewReader(string(data)), nil
}
