package node

import "errors"

// Sentinel errors returned by the embedded API. Callers match them with
// errors.Is; messages carry the detail.
var (
	// ErrNotFound: the key holds no value (never written, or deleted).
	ErrNotFound = errors.New("node: key not found")
	// ErrInvalidKey: the key is empty.
	ErrInvalidKey = errors.New("node: invalid key")
	// ErrKeyTooLarge: the key is longer than Config.MaxKeyBytes.
	ErrKeyTooLarge = errors.New("node: key too large")
	// ErrValueTooLarge: the value is longer than Config.MaxValueBytes.
	ErrValueTooLarge = errors.New("node: value too large")
	// ErrWrongKind: the key already holds a value of another CRDT kind
	// (for example a counter read as a register).
	ErrWrongKind = errors.New("node: key holds another kind of value")
	// ErrClosed: the node has been closed.
	ErrClosed = errors.New("node: closed")
	// ErrStore: the local datastore failed (disk full, I/O error); the write
	// was not acknowledged and nothing of it is visible.
	ErrStore = errors.New("node: store failure")
	// ErrStoreFull: free space on the store's disk is below
	// Config.MinFreeBytes (or the disk is full); the write was refused and
	// nothing of it is written. The node recovers by itself once space
	// returns (for example once the ballast file in DataDir is deleted).
	ErrStoreFull = errors.New("node: store full")
	// ErrInvalidConfig: Config.validate refused a field.
	ErrInvalidConfig = errors.New("node: invalid config")
	// ErrMeshMismatch: a peer belongs to another mesh or has another
	// partition count or replication factor.
	ErrMeshMismatch = errors.New("node: peer is in another mesh")
	// ErrCounterRange: an increment would take a counter out of the int64
	// range (and is refused, nothing written), or the merged increments of
	// several nodes already have (Counter returns the nearest int64).
	ErrCounterRange = errors.New("node: counter out of the int64 range")
	// ErrAddrInUse: a listen address names a port another process holds.
	ErrAddrInUse = errors.New("node: listen address in use")
	// ErrDataDirInUse: another node (this process or another) has the data
	// directory open.
	ErrDataDirInUse = errors.New("node: data directory in use")
)
