//go:build !unix

package credentials

import "context"

// lockDir does nothing where flock is missing: concurrent updates of
// config.json by several processes may then lose one of them.
func lockDir(ctx context.Context, dir string) (func(), error) {
	return func() {}, nil
}
