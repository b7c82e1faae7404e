//go:build !(linux || darwin)

package node

// statfsFree: free space is not measured on this platform, so the disk
// guard is off (Config.MinFreeBytes has no effect).
func statfsFree(string) func() (uint64, error) { return nil }
