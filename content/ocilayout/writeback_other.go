//go:build !linux

package ocilayout

import "os"

func startWriteback(*os.File, int64, int64) {}
