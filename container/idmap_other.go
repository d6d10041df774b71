//go:build !linux

package container

import specs "github.com/opencontainers/runtime-spec/specs-go"

func rootlessMappings() (uids, gids []specs.LinuxIDMapping) { return nil, nil }
