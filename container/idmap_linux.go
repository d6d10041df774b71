package container

import (
	"os"
	"os/exec"

	"github.com/moby/sys/user"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// rootlessMappings are the user namespace mappings of a container made
// without root: the caller as uid and gid 0 and, when /etc/subuid and
// /etc/subgid give the caller ranges and newuidmap and newgidmap are
// installed (the runtime calls them), uids and gids from 1 on onto those
// ranges, as podman does. Nil leaves bundle's single mapping.
func rootlessMappings() (uids, gids []specs.LinuxIDMapping) {
	if os.Geteuid() == 0 {
		return nil, nil
	}
	if _, err := exec.LookPath("newuidmap"); err != nil {
		return nil, nil
	}
	if _, err := exec.LookPath("newgidmap"); err != nil {
		return nil, nil
	}
	su, err1 := user.CurrentUserSubUIDs()
	sg, err2 := user.CurrentUserSubGIDs()
	if err1 != nil || err2 != nil || len(su) == 0 || len(sg) == 0 {
		return nil, nil
	}
	return idMappings(uint32(os.Getuid()), su[0]), idMappings(uint32(os.Getgid()), sg[0])
}

// idMappings maps 0 to id and 1.. onto the range r.
func idMappings(id uint32, r user.SubID) []specs.LinuxIDMapping {
	m := []specs.LinuxIDMapping{{ContainerID: 0, HostID: id, Size: 1}}
	if r.Count > 0 && r.SubID >= 0 && r.Count < 1<<32 && r.SubID < 1<<32 {
		m = append(m, specs.LinuxIDMapping{ContainerID: 1, HostID: uint32(r.SubID), Size: uint32(r.Count)})
	}
	return m
}
