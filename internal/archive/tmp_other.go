//go:build !linux

package archive

import (
	"errors"
	"os"
)

var errNoUnnamed = errors.New("unnamed temporary files are not supported here")

func openUnnamed(dir string) (*os.File, error) { return nil, errNoUnnamed }

func linkUnnamed(f *os.File, newpath string) error { return errNoUnnamed }
