package node

import (
	"fmt"
	"log/slog"
	"time"

	ds "github.com/ipfs/go-datastore"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multiaddr"
)

// Config configures a Node. Start from DefaultConfig and change what you need;
// New validates it and refuses bad fields with ErrInvalidConfig.
type Config struct {
	// DataDir holds the pebble store and the identity key. Default "./meshdata".
	// Ignored for the store when Memory is set or Datastore is given.
	DataDir string
	// Memory keeps everything in memory (map datastore, ephemeral identity
	// unless Identity is set). For tests and simulation. Default false.
	Memory bool
	// Datastore, when non-nil, is used instead of opening pebble. The node
	// does not close it. Default nil.
	Datastore ds.Batching
	// Identity is the libp2p private key. Default nil: read from
	// DataDir/identity.key, created there (mode 0600) on first start.
	Identity crypto.PrivKey

	// Host, when non-nil, is used instead of creating a libp2p host (for
	// simulated networks such as mocknet); Identity, ListenAddrs and the NAT
	// options are then ignored. The node closes it on Close. Default nil.
	Host host.Host

	// Mesh names the mesh; peers of another mesh are refused. Default "default".
	Mesh string
	// Partitions is the partition count P, fixed for the life of the mesh and
	// checked when peers meet. Default 16.
	Partitions int

	// Replication is the replication factor R: each partition is held by the
	// R live members with the highest rendezvous score (plus any that pin
	// it). 0 means every node holds every partition, the right choice for
	// small meshes. R is part of the mesh's identity: nodes with another R
	// are refused like another mesh. Under placement, counter, set and
	// multi-value operations first read the other holders' states (see
	// HolderTimeout), and every node keeps a durable record of its own
	// contributions to each such key, so an operation never builds on a
	// view that lacks them. A set remove is refused with ErrUnavailable
	// when no other holder answers and this node's view may lack the key's
	// history (a partition gained but not yet pulled, or the first
	// SuspectAfter after start); registers are never held back. Default 0.
	Replication int
	// Pinned partitions are held by this node whatever the placement.
	// Default none.
	Pinned []uint32
	// HeartbeatInterval is how often membership heartbeats are published
	// in a mesh of up to heartbeatMembers (16) members. A larger mesh
	// stretches it, and SuspectAfter and DeadAfter with it, by members/16,
	// so the whole mesh carries about 16 heartbeats per interval whatever
	// its size: every heartbeat reaches every member, and signing and
	// checking N heartbeats per interval on each of N members would grow
	// as N squared. Default 1 s.
	HeartbeatInterval time.Duration
	// SuspectAfter is the silence after which a member is suspected; it stays
	// in placement. Default 3 heartbeat intervals.
	SuspectAfter time.Duration
	// DeadAfter is the silence after which a member is declared dead and
	// taken out of placement. Default 8 heartbeat intervals.
	DeadAfter time.Duration

	// ListenAddrs are the libp2p listen multiaddrs. Default TCP and QUIC on
	// all interfaces, ports chosen by the OS.
	ListenAddrs []multiaddr.Multiaddr
	// AnnounceAddrs, when set, are the only addresses the node advertises
	// (Addrs, identify, the HTTP API's /v1/id) in place of its listen
	// addresses: what peers should dial when a listen address is not
	// reachable as is (NAT, a container or pod IP behind a service).
	// Default none: the listen addresses are advertised.
	AnnounceAddrs []multiaddr.Multiaddr
	// Bootstrap peers, as multiaddrs with /p2p/<peer ID>. Reconnected with
	// backoff when they drop. Default none.
	Bootstrap []multiaddr.Multiaddr
	// MDNS enables LAN discovery. Default true.
	MDNS bool
	// NATPortMap asks the gateway for a port mapping (UPnP/NAT-PMP). Default false.
	NATPortMap bool
	// HolePunching enables libp2p hole punching. Default false.
	HolePunching bool
	// RelayClient lets the node reach and be reached through circuit relays.
	// Default false.
	RelayClient bool

	// MaxKeyBytes bounds key length. Default 1024.
	MaxKeyBytes int
	// MaxValueBytes bounds a value (register value, set member, encoded
	// state). Default 1 MiB.
	MaxValueBytes int
	// MaxClockDrift is how far in the future a remote timestamp may be before
	// it is refused. Default 1 minute.
	MaxClockDrift time.Duration
	// TombstoneGrace is how long a register delete's tombstone is kept
	// before the node collects it (a sweep every eighth of it, at most a
	// minute apart; see CollectTombstones). It is also how long a node may
	// go without a completed anti-entropy session for a partition: past
	// it, the node's register states older than the grace are not served
	// or sent until a fresh holder confirms them, and those no fresh holder
	// has are dropped, so a collected delete never comes back. It must
	// exceed the longest time a write takes to reach every replica.
	// Default 7 days.
	TombstoneGrace time.Duration

	// SyncInterval is the mean time between anti-entropy rounds with a random
	// peer. Default 10 s.
	SyncInterval time.Duration
	// SyncJitter is the random spread added to each interval, as a fraction of
	// SyncInterval in [0, 1]. Default 0.5.
	SyncJitter float64
	// SyncTimeout bounds one anti-entropy session. Default 1 minute.
	SyncTimeout time.Duration
	// SyncStallTimeout is how long a sync or kv stream may go without
	// progress before it is cut: a write (a 64 KiB chunk at a time) the
	// peer does not read, or a handshake it does not send. A peer that
	// stops reading thus holds a session's frame for this long, not for
	// the whole SyncTimeout. Default 10 s; 0 or more than SyncTimeout
	// means SyncTimeout.
	SyncStallTimeout time.Duration
	// HolderTimeout bounds how long an operation under placement waits for
	// the other holders of its key's partition (asked all at once) before
	// it goes on with what answered: a register write or an increment
	// then proceeds on this node's own record, a remove fails with
	// ErrUnavailable if its view may lack the key's history. Default 1 s.
	HolderTimeout time.Duration
	// CompressAbove is the frame size in bytes above which sync frames are
	// zstd-compressed. Default 1024.
	CompressAbove int
	// DisableGossip turns off publishing and receiving GossipSub deltas, so
	// the node converges by anti-entropy alone. Default false.
	DisableGossip bool

	// Security settings; see security.go. SwarmKey or SwarmKeyFile make the
	// mesh private (libp2p pnet, "/key/swarm/psk/1.0.0/" format): peers
	// without the same key cannot connect. QUIC cannot carry a pre-shared
	// key, so with one the node listens on TCP only. Default none.
	SwarmKey     []byte
	SwarmKeyFile string
	// AllowPeers and AllowlistFile (one peer ID a line, # comments), when
	// either is set, admit only the listed peers. Default: everyone.
	AllowPeers    []peer.ID
	AllowlistFile string
	// MaxInvalidInputs is how many invalid messages (gossip or sync) a peer
	// may send within a minute before it is disconnected and blocked for
	// BlockDuration. Default 10; negative never blocks.
	MaxInvalidInputs int
	// BlockDuration is how long a peer that sent too much invalid input is
	// refused. Default 10 minutes.
	BlockDuration time.Duration
	// MaxSyncSessionsPerPeer caps concurrent inbound anti-entropy sessions
	// from one peer; more are reset. Default 2.
	MaxSyncSessionsPerPeer int
	// EncryptionKeyFile, when set, seals every stored value with
	// XChaCha20-Poly1305 under the 32-byte key in that file (64 hex
	// characters). Default "" (values stored in the clear).
	EncryptionKeyFile string

	// MinFreeBytes is the free-space floor of the store's disk: below it
	// the node is full (Status.StoreFull): local writes fail with
	// ErrStoreFull and remote states are not stored, while reads, gossip
	// and anti-entropy of what it holds go on, until space returns. It
	// keeps pebble from ever running out of space mid-write. Free space is
	// measured (statfs, Linux and macOS) at most a second apart and at
	// once when the bytes written since may have crossed the floor. The
	// floor must leave pebble room to flush its memtables and compact
	// (a few times its 4 MiB memtable): below that a flush fails and
	// pebble stalls writes until space returns. 0 turns the floor off.
	// No effect on Memory or Datastore stores. Default 64 MiB.
	MinFreeBytes int64
	// BallastBytes is the size of DataDir/ballast, a file made at start
	// when absent and the disk has room for it above MinFreeBytes:
	// deleting it gives a full node room to write again. 0 makes none.
	// Default 16 MiB.
	BallastBytes int64
	// MaxStoreBytes is the store's quota: once the store takes this many
	// bytes the node is full as below MinFreeBytes (Status.StoreFull,
	// StoreFullReason "quota"): local writes fail with ErrStoreFull and
	// remote states are not stored, while reads, gossip and anti-entropy
	// of what it holds go on, until the store shrinks below it again. A
	// delete of a key holding a value is still accepted at the quota: it
	// is how room is made (its tombstone is collected after
	// TombstoneGrace; pebble gives the space back when it compacts, which
	// a store near its quota does once its changes pause). The size is
	// pebble's own account of its files (tables, write-ahead log,
	// compactions in flight), the memory store's count of the bytes it
	// holds, or a given Datastore's DiskUsage (none: no quota). Pebble's
	// write-ahead log takes about 16 MiB of it whatever the data, so an
	// on-disk quota must be at least 32 MiB. Under
	// placement a node at its quota or floor announces it in its
	// heartbeats: it keeps the partitions it stores, with another holder
	// added to each to take the writes it refuses, and is given no
	// partition it does not store, until it is an eighth of the quota
	// below it (or as much above the floor) again; meanwhile its reads of
	// what it holds also ask the other holders. 0: no quota. Default 0.
	MaxStoreBytes int64

	// Now is the physical clock. Default time.Now.
	Now func() time.Time
	// Logger receives the node's logs. Default slog.Default().
	Logger *slog.Logger

	// freeSpace, set by tests, replaces the statfs measure of the store's
	// free bytes, and turns the disk guard on for any store.
	freeSpace func() (uint64, error)
}

// DefaultConfig returns the configuration documented on each Config field.
func DefaultConfig() Config {
	return Config{
		DataDir:    "./meshdata",
		Mesh:       "default",
		Partitions: 16,
		ListenAddrs: []multiaddr.Multiaddr{
			multiaddr.StringCast("/ip4/0.0.0.0/tcp/0"),
			multiaddr.StringCast("/ip4/0.0.0.0/udp/0/quic-v1"),
		},
		MDNS:              true,
		MaxKeyBytes:       1024,
		MaxValueBytes:     1 << 20,
		MaxClockDrift:     time.Minute,
		TombstoneGrace:    7 * 24 * time.Hour,
		HeartbeatInterval: time.Second,
		SyncInterval:      10 * time.Second,
		SyncJitter:        0.5,
		SyncTimeout:       time.Minute,
		SyncStallTimeout:  10 * time.Second,
		HolderTimeout:     time.Second,
		CompressAbove:     1024,
		MinFreeBytes:      64 << 20,
		BallastBytes:      16 << 20,
		MaxStoreBytes:     0,
		Now:               time.Now,

		MaxInvalidInputs:       10,
		BlockDuration:          10 * time.Minute,
		MaxSyncSessionsPerPeer: 2,
		Logger:                 slog.Default(),
	}
}

func (c *Config) validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, args...)...)
	}
	switch {
	case c.Mesh == "":
		return bad("Mesh must not be empty")
	case c.Partitions < 1 || c.Partitions > 1<<16:
		return bad("Partitions must be in [1, 65536], got %d", c.Partitions)
	case !c.Memory && c.Datastore == nil && c.DataDir == "":
		return bad("DataDir must be set unless Memory or Datastore is")
	case c.MaxKeyBytes < 1:
		return bad("MaxKeyBytes must be positive, got %d", c.MaxKeyBytes)
	case c.MaxValueBytes < 1:
		return bad("MaxValueBytes must be positive, got %d", c.MaxValueBytes)
	case c.MaxClockDrift < 0:
		return bad("MaxClockDrift must not be negative")
	case c.TombstoneGrace <= 0:
		return bad("TombstoneGrace must be positive")
	case c.SyncInterval <= 0:
		return bad("SyncInterval must be positive")
	case c.SyncJitter < 0 || c.SyncJitter > 1:
		return bad("SyncJitter must be in [0, 1], got %v", c.SyncJitter)
	case c.SyncTimeout <= 0:
		return bad("SyncTimeout must be positive")
	case c.SyncStallTimeout < 0:
		return bad("SyncStallTimeout must not be negative")
	case c.HolderTimeout <= 0:
		return bad("HolderTimeout must be positive")
	case c.Replication < 0:
		return bad("Replication must not be negative, got %d", c.Replication)
	case c.HeartbeatInterval <= 0:
		return bad("HeartbeatInterval must be positive")
	case c.CompressAbove < 0:
		return bad("CompressAbove must not be negative")
	case c.SwarmKeyFile != "" && len(c.SwarmKey) > 0:
		return bad("set SwarmKey or SwarmKeyFile, not both")
	case c.BlockDuration < 0:
		return bad("BlockDuration must not be negative")
	case c.MinFreeBytes < 0:
		return bad("MinFreeBytes must not be negative, got %d", c.MinFreeBytes)
	case c.BallastBytes < 0:
		return bad("BallastBytes must not be negative, got %d", c.BallastBytes)
	case c.MaxStoreBytes < 0:
		return bad("MaxStoreBytes must not be negative, got %d", c.MaxStoreBytes)
	case c.MaxStoreBytes > 0 && c.MaxStoreBytes < minDiskQuota && !c.Memory && c.Datastore == nil:
		return bad("MaxStoreBytes of an on-disk store must be 0 or at least %d (pebble's write-ahead log alone takes about half of that), got %d", minDiskQuota, c.MaxStoreBytes)
	}
	for _, p := range c.Pinned {
		if int(p) >= c.Partitions {
			return bad("pinned partition %d is outside [0, %d)", p, c.Partitions)
		}
	}
	if c.SyncStallTimeout == 0 || c.SyncStallTimeout > c.SyncTimeout {
		c.SyncStallTimeout = c.SyncTimeout
	}
	if c.SuspectAfter <= 0 {
		c.SuspectAfter = 3 * c.HeartbeatInterval
	}
	if c.DeadAfter <= c.SuspectAfter {
		c.DeadAfter = max(8*c.HeartbeatInterval, 2*c.SuspectAfter)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return nil
}
