package plan

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path/filepath"

	"github.com/ferry-wasm/ferry/targets"
)

// lockTargets takes, in name order, the local file lock (when lockDir is
// set) and the target's own lock (when it is a targets.Locker) of each target. On
// error it releases what it took.
func lockTargets(ctx context.Context, names []string, tgts map[string]targets.Target, lockDir, holder string) (release func(), err error) {
	var unlocks []func()
	release = func() {
		for i := len(unlocks) - 1; i >= 0; i-- {
			unlocks[i]()
		}
	}
	for _, n := range names {
		if lockDir != "" {
			u, err := lockFile(ctx, lockFilePath(lockDir, n))
			if err != nil {
				release()
				return nil, fmt.Errorf("%w: target %s: local lock: %w", ErrLock, n, err)
			}
			unlocks = append(unlocks, u)
		}
		if l, ok := tgts[n].(targets.Locker); ok {
			u, err := l.Lock(ctx, holder)
			if err != nil {
				release()
				return nil, fmt.Errorf("%w: target %s: %w", ErrLock, n, err)
			}
			unlocks = append(unlocks, u)
		}
	}
	return release, nil
}

// lockFilePath names the lock file of a target: the name itself when it is
// plain, else a hash of it.
func lockFilePath(dir, target string) string {
	plain := target != ""
	for _, c := range target {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			plain = false
			break
		}
	}
	if !plain || target[0] == '.' {
		sum := sha256.Sum256([]byte(target))
		target = "h-" + hex.EncodeToString(sum[:12])
	}
	return filepath.Join(dir, "target-"+target+".lock")
}
