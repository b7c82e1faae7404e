//go:build !unix

package node

import (
	"errors"
	"os"
)

// errLocked: another open file holds the lock.
var errLocked = errors.New("node: locked")

// tryLock is a no-op where flock is missing; pebble's own lock still
// refuses a second node, in its own words.
func tryLock(*os.File) error { return nil }
