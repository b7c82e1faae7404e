//go:build !race

package node

// raceDetector reports whether the tests run under the race detector,
// which slows libp2p and GossipSub several times over.
const raceDetector = false
