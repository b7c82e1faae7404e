//go:build linux || darwin

package node

import "golang.org/x/sys/unix"

// statfsFree returns a function that reports the bytes an unprivileged
// writer may still use on the filesystem holding dir.
func statfsFree(dir string) func() (uint64, error) {
	return func() (uint64, error) {
		var st unix.Statfs_t
		if err := unix.Statfs(dir, &st); err != nil {
			return 0, err
		}
		return uint64(st.Bavail) * uint64(st.Bsize), nil
	}
}
