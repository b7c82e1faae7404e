package node

import (
	_ "github.com/ipfs/go-datastore"
	_ "github.com/ipfs/go-ds-pebble"
	_ "github.com/klauspost/compress/zstd"
	_ "github.com/libp2p/go-libp2p"
	_ "github.com/libp2p/go-libp2p-pubsub"
	_ "github.com/multiformats/go-multiaddr"
	_ "pgregory.net/rapid"
)
