//go:build !unix

package storage

import "os"

func flockFile(f *os.File, exclusive bool) error { return nil }

func tryFlockFile(f *os.File) (bool, error) { return true, nil }

func unflockFile(f *os.File) {}

func linkCount(fi os.FileInfo) uint64 { return 1 }
