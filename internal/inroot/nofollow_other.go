//go:build !unix

package inroot

// noFollow is not available here; Resolve has followed every link already.
const noFollow = 0
