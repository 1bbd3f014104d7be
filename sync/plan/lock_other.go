//go:build !unix

package plan

import (
	"context"
	"errors"
)

// lockFile is not supported on this platform; ApplyOptions.LockDir must be
// empty.
func lockFile(ctx context.Context, path string) (func(), error) {
	return nil, errors.New("local apply locks (ApplyOptions.LockDir) are not supported on this platform")
}
