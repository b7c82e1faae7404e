package node

import (
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/gossipmesh/gossipmesh/crdt"
	"github.com/gossipmesh/gossipmesh/sync/antientropy"
	"github.com/gossipmesh/gossipmesh/sync/merkle"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
)

// honestP99 is the put latency the attack tests hold the honest clients
// to. The target is 50 ms; the tests run attackers, several nodes and the
// clients on one machine (2 shared CPUs in CI), so they allow twice that
// and log what they measure.
const honestP99 = 100 * time.Millisecond

// The amplification request of issue 19: a 78 KB anti-entropy message
// naming whole partitions 19,480 times made a node send 1,183 times as
// much. Now it asks for what the exchange never offered: it is refused
// before a record is read, and counted, so a sender that keeps at it is
// blocked.
func TestAmplificationRequestIsRefusedAndTheSenderBlocked(t *testing.T) {
	ctx := context.Background()
	nodes, psk := privateMesh(t, 3, nil)
	a := nodes[0]
	acked := map[string]string{}
	for i := range 2000 { // 400 KB held, incompressible: five times the request
		k, v := fmt.Sprintf("held-%d", i), make([]byte, 200)
		crand.Read(v)
		if err := a.Put(ctx, []byte(k), v); err != nil {
			t.Fatal(err)
		}
		acked[k] = string(v)
	}
	waitFor(t, 20*time.Second, "mesh converges", converged(t, nodes))
	evil := insider(t, psk, a)
	load := startHonestLoad(a, "honest")

	// Whole partitions, again and again: streams and empty lists.
	var req antientropy.Message
	for i := range 19_480 {
		it := antientropy.Item{Kind: antientropy.ItemStream, Explicit: true, Node: antientropy.Node{Partition: uint32(i % a.cfg.Partitions)}}
		if i%2 == 1 {
			it.Kind = antientropy.ItemList
		}
		req.Items = append(req.Items, it)
	}
	b, err := antientropy.AppendMessage(nil, req)
	if err != nil {
		t.Fatal(err)
	}
	asked, sent, attempts := 0, 0, 0
	for ; attempts <= a.cfg.MaxInvalidInputs && a.SecurityStats().PeersBlocked == 0; attempts++ {
		s, f, err := openSession(ctx, evil, a)
		if err != nil {
			break // blocked meanwhile
		}
		if err := f.write(b); err == nil {
			asked += len(b)
		}
		// Read what the node answers, up to four times the request (the
		// unbounded answer would be gigabytes).
		before := f.received
		for f.received-before < uint64(4*len(b)) {
			if _, err := f.read(); err != nil {
				break
			}
		}
		sent += int(f.received - before)
		s.Reset()
	}
	t.Logf("%d requests of %d bytes: the node answered with %d bytes (%.3f of the request)", attempts, len(b), sent, float64(sent)/float64(max(asked, 1)))
	if sent > asked {
		t.Fatalf("the node sent %d bytes for %d requested: amplification", sent, asked)
	}
	waitFor(t, 10*time.Second, "attacker blocked", func() error {
		if a.SecurityStats().PeersBlocked == 0 {
			return fmt.Errorf("not blocked after %d requests (%d invalid inputs)", attempts, a.Stats().DeltasInvalid)
		}
		return nil
	})
	waitFor(t, 5*time.Second, "attacker disconnected", notConnected(a, evil.ID()))
	checkHonest(t, load, honestP99, nodes, acked)
}

// A peer that opens sessions, asks for everything and never reads: the
// node builds a frame at a time, so it holds a few frames per session, and
// cuts each session at the stall timeout instead of the session deadline.
// Measured: the process's live heap (after a forced GC; node and attackers
// share it) above its level before the attack, and the time until every
// session is cut.
func TestPeerThatNeverReadsIsCut(t *testing.T) {
	const stall = time.Second
	// On pebble, whose reads copy: a state read for a frame is memory the
	// session holds (the in-memory store hands out its own slices).
	// Without gossip, so that the deltas of the setup's writes are not
	// still in flight when the attack's memory is measured.
	nodes, psk := privateMesh(t, 2, func(c *Config) {
		c.SyncStallTimeout = stall
		c.DisableGossip = true
		onDisk(t, c)
	})
	a := nodes[0]
	value := make([]byte, 16<<10)
	acked := map[string]string{}
	const keys = 3000
	for i := range keys { // 48 MiB the attackers ask for, incompressible
		k := fmt.Sprintf("big-%d", i)
		crand.Read(value)
		if err := a.Put(context.Background(), []byte(k), value); err != nil {
			t.Fatal(err)
		}
		acked[k] = string(value)
	}
	waitFor(t, 60*time.Second, "mesh converges", converged(t, nodes))
	load := startHonestLoad(a, "honest")
	peak := startHeapPeak()
	const identities, perIdentity = 3, 2 // the per-peer session cap
	sessions := identities * perIdentity
	stalledBefore := a.SecurityStats().Stalled
	start := time.Now()
	var streams []network.Stream
	for range identities {
		evil := insider(t, psk, a)
		for range perIdentity {
			s, f, err := openSession(context.Background(), evil, a)
			if err != nil {
				t.Fatal(err)
			}
			var roots antientropy.Message // "I hold nothing": stream every partition
			for p := range a.cfg.Partitions {
				roots.Roots = append(roots.Roots, antientropy.Root{Partition: uint32(p)})
			}
			b, _ := antientropy.AppendMessage(nil, roots)
			if err := f.write(b); err != nil {
				t.Fatal(err)
			}
			streams = append(streams, s) // and never read
		}
	}
	waitFor(t, 10*stall, "every non-reading session cut", func() error {
		if got := a.SecurityStats().Stalled - stalledBefore; got < uint64(sessions) {
			return fmt.Errorf("%d of %d sessions cut", got, sessions)
		}
		return nil
	})
	cut := time.Since(start)
	grew := peak.growth()
	for _, s := range streams {
		s.Reset()
	}
	// A session holds the frame being written and the next one, packed;
	// building that one takes its records and their encoding. Five frames
	// leave room for slack in the buffers, a tenth of what each asks for.
	limit := uint64(sessions) * 5 * uint64(a.syncConfig().MaxFrameBytes)
	t.Logf("%d sessions asking for %d MiB each: cut after %v (stall timeout %v, session timeout %v); heap grew %d MiB at most (limit %d MiB)",
		sessions, keys*len(value)>>20, cut.Round(time.Millisecond), stall, a.cfg.SyncTimeout, grew>>20, limit>>20)
	if grew > limit {
		t.Fatalf("heap grew by %d MiB for %d non-reading sessions, limit %d MiB", grew>>20, sessions, limit>>20)
	}
	if a.SecurityStats().PeersBlocked != 0 {
		t.Fatal("a peer that does not read is not invalid input, yet it was blocked")
	}
	checkHonest(t, load, honestP99, nodes, acked)
}

// Issue 19: four identities holding 48 unfinished 4 MiB kv frames each
// took a node to 3.1 GB, the frames buffered outside the resource manager
// and no stream cap on the kv protocol. Now each frame is reserved in the
// resource manager before it is read and refused when the peer's budget
// is spent, and a peer's kv streams are capped. Measured: the live heap's
// peak above the baseline, and the resource manager's view of the kv
// protocol.
func TestUnfinishedKVFramesAreBounded(t *testing.T) {
	nodes, psk := privateMesh(t, 2, nil)
	a := nodes[0]
	acked := writeKeys(t, a, "before", 20)
	load := startHonestLoad(a, "honest")
	const identities, streams = 4, 48
	var evil []host.Host
	for range identities {
		evil = append(evil, insider(t, psk, a))
	}
	memLimit := int64(identities) * int64(limitKVPerPeer.Memory)
	streamLimit := identities * int(limitKVPerPeer.StreamsInbound)

	// Frames claiming 4 MiB, 1 MiB of each sent, the rest never.
	body := make([]byte, 1<<20)
	head := binary.AppendUvarint(nil, uint64(a.syncConfig().MaxFrameBytes)+1)
	head = append(head, frameRaw)
	peak := startHeapPeak()
	refusedBefore := a.SecurityStats().FramesRefused
	maxStreams, maxMem := kvWave(a, evil, streams, 0, func(s network.Stream) {
		if _, err := s.Write(head); err == nil {
			s.Write(body)
		}
	})
	grew := peak.growth()
	refused := a.SecurityStats().FramesRefused - refusedBefore
	t.Logf("%d identities x %d unfinished frames: %d refused unread; kv memory reserved at most %d MiB (limit %d MiB); heap grew %d MiB at most",
		identities, streams, refused, maxMem>>20, memLimit>>20, grew>>20)
	if refused == 0 {
		t.Fatal("no frame was refused: the memory budget held nothing back")
	}
	if maxMem > memLimit {
		t.Fatalf("%d MiB of kv frames reserved, limit %d MiB", maxMem>>20, memLimit>>20)
	}
	// What a peer may reserve is what it may fill: its budget, for each
	// identity, with room for the streams' own buffers.
	if heapLimit := uint64(2 * memLimit); grew > heapLimit {
		t.Fatalf("heap grew by %d MiB, limit %d MiB", grew>>20, heapLimit>>20)
	}

	// Requests stalled in their first byte, held open: the per-peer
	// stream cap refuses those past it.
	maxStreams, _ = kvWave(a, evil, streams, time.Second, func(s network.Stream) { s.Write([]byte{0x80}) })
	t.Logf("%d identities x %d stalled kv requests: %d streams open at most (cap %d per peer, %d in all)",
		identities, streams, maxStreams, limitKVPerPeer.StreamsInbound, streamLimit)
	if maxStreams > streamLimit {
		t.Fatalf("%d kv streams open, per-peer cap %d x %d identities", maxStreams, limitKVPerPeer.StreamsInbound, identities)
	}
	checkHonest(t, load, honestP99, nodes, acked)
}

// kvWave opens streams kv streams from each attacker to a at once, each
// doing send, holds them hold longer, then resets them. It returns the
// most inbound kv streams and reserved kv memory the node's resource
// manager showed meanwhile.
func kvWave(a *Node, evil []host.Host, streams int, hold time.Duration, send func(network.Stream)) (maxStreams int, maxMem int64) {
	var mu sync.Mutex
	var open []network.Stream
	var wg sync.WaitGroup
	for _, h := range evil {
		for range streams {
			wg.Go(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				s, err := h.NewStream(ctx, a.ID(), kvProtocol)
				if err != nil {
					return
				}
				mu.Lock()
				open = append(open, s)
				mu.Unlock()
				_ = s.SetWriteDeadline(time.Now().Add(5 * time.Second))
				send(s)
			})
		}
	}
	sample := func() {
		a.Host().Network().ResourceManager().ViewProtocol(kvProtocol, func(s network.ProtocolScope) error {
			st := s.Stat()
			maxStreams = max(maxStreams, st.NumStreamsInbound)
			maxMem = max(maxMem, st.Memory)
			return nil
		})
	}
	all := make(chan struct{})
	go func() { wg.Wait(); close(all) }()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	done := (<-chan struct{})(all)
	var until <-chan time.Time
	for done != nil || until != nil {
		select {
		case <-done:
			done, until = nil, time.After(hold)
		case <-until:
			until = nil
		case <-tick.C:
		}
		sample()
	}
	for _, s := range open {
		s.Reset()
	}
	return maxStreams, maxMem
}

// Issue 19: a hello, a few hundred bytes, could be a 4 MiB frame, and 96
// stalled ones held 738 MB. A hello is read with its own limit, derived
// from the partitions: a larger one is refused at its length, unread, and
// its sender refused as another mesh's peer.
func TestOversizedHelloIsRefusedAtTheLimit(t *testing.T) {
	// Long timeouts: the refusal must come from the limit, not a deadline.
	nodes, psk := privateMesh(t, 2, func(c *Config) { c.SyncStallTimeout = 30 * time.Second })
	a := nodes[0]
	acked := writeKeys(t, a, "before", 20)
	load := startHonestLoad(a, "honest")
	limit := helloMaxBytes(a.cfg.Partitions)
	if real := len(ownHello(a)); real > limit {
		t.Fatalf("a real hello of %d bytes is over the limit of %d", real, limit)
	}
	for _, claim := range []int{limit + 1, a.syncConfig().MaxFrameBytes} {
		evil := insider(t, psk, a)
		s, err := evil.NewStream(context.Background(), a.ID(), syncProtocol)
		if err != nil {
			t.Fatal(err)
		}
		f, _ := newFramer(s, a.syncConfig().MaxFrameBytes, 0)
		if _, err := f.read(); err != nil { // the node's hello
			t.Fatal(err)
		}
		invalid := a.Stats().DeltasInvalid
		start := time.Now()
		frame := binary.AppendUvarint(nil, uint64(claim)+1)
		frame = append(frame, frameRaw)
		s.Write(append(frame, make([]byte, 1000)...)) // and the rest never comes
		s.SetReadDeadline(time.Now().Add(10 * time.Second))
		var buf [1]byte
		_, err = s.Read(buf[:])
		took := time.Since(start)
		t.Logf("hello of %d bytes (limit %d): stream ended after %v (%v)", claim, limit, took.Round(time.Millisecond), err)
		if err == nil || took > 2*time.Second {
			t.Fatalf("a hello of %d bytes over a limit of %d held the stream %v", claim, limit, took)
		}
		waitFor(t, 5*time.Second, "refusal counted", func() error {
			if a.Stats().DeltasInvalid == invalid || !a.members.isForeign(evil.ID()) {
				return errors.New("not yet")
			}
			return nil
		})
		s.Reset()
	}
	checkHonest(t, load, honestP99, nodes, acked)
}

// Issue 19: a million tiny records offered in 7 sessions were merged
// 80,000 per event-loop batch, and the honest client's put p99 rose to
// 10 s. Now a frame is merged in pieces of at most half a batch, so a
// batch never holds more than a batch's worth of merges. One invalid
// record among them is refused on its own; the rest are stored.
func TestFloodOfTinyRecordsKeepsWritesFast(t *testing.T) {
	ctx := context.Background()
	// On pebble, as deployed: the in-memory store's prefix scans (the
	// hint handoff's, every SyncInterval) lock the whole map for as long
	// as it takes to walk it, which with the flood's keys is itself a
	// stall of 100 ms and more.
	// The flood's records are valid: the other node pulls them all while
	// the attack runs, on the same two CPUs, and every put waits for an
	// fsync. The honest puts are held to twice the other tests' bound;
	// merged 20,000 a batch they took 350 to 700 ms.
	nodes, psk := privateMesh(t, 2, func(c *Config) { onDisk(t, c) })
	a := nodes[0]
	acked := writeKeys(t, a, "before", 20)
	const sessions = 7
	perFrame := 20_000
	if raceDetector { // ten times slower: a smaller flood still converges in time
		perFrame = 4_000
	}
	now := time.Now()
	frames := make([][]byte, sessions)
	for s := range sessions {
		var m antientropy.Message
		m.More = true // a turn that never ends
		for i := range perFrame {
			k := fmt.Appendf(nil, "f%d/%d", s, i)
			st := (&crdt.LWW{}).Set([]byte("x"), crdt.Timestamp{Wall: now.UnixNano(), Node: 7})
			m.Records = append(m.Records, antientropy.Record{Partition: partitionOf(k, a.cfg.Partitions), Key: k, State: crdt.Encode(st)})
		}
		bad := []byte(fmt.Sprintf("bad/%d", s)) // from the future
		far := (&crdt.LWW{}).Set([]byte("x"), crdt.Timestamp{Wall: now.Add(time.Hour).UnixNano(), Node: 7})
		m.Records = append(m.Records, antientropy.Record{Partition: partitionOf(bad, a.cfg.Partitions), Key: bad, State: crdt.Encode(far)})
		frames[s], _ = antientropy.AppendMessage(nil, m)
	}
	merged := a.Stats().KeysRepaired
	load := startHonestLoad(a, "honest")
	var evil []host.Host // two sessions each: the per-peer cap
	for range (sessions + 1) / 2 {
		evil = append(evil, insider(t, psk, a))
	}
	var wg sync.WaitGroup
	for s := range sessions {
		wg.Go(func() {
			st, f, err := openSession(ctx, evil[s/2], a)
			if err != nil {
				t.Error(err)
				return
			}
			defer st.Close()
			if err := f.write(frames[s]); err != nil {
				t.Error(err)
			}
			st.CloseWrite()
		})
	}
	wg.Wait()
	waitFor(t, 60*time.Second, "flood merged", func() error {
		if got := a.Stats().KeysRepaired - merged; got < uint64(sessions*perFrame) {
			return fmt.Errorf("%d of %d merged", got, sessions*perFrame)
		}
		return nil
	})
	t.Logf("%d records of %d bytes in %d sessions merged", sessions*perFrame, len(frames[0])/perFrame, sessions)
	for s := range sessions {
		if _, err := a.Get(ctx, fmt.Appendf(nil, "bad/%d", s)); !errors.Is(err, ErrNotFound) {
			t.Fatalf("a record from the future was stored: %v", err)
		}
		if _, err := a.Get(ctx, fmt.Appendf(nil, "f%d/%d", s, perFrame-1)); err != nil {
			t.Fatalf("a valid record beside an invalid one was lost: %v", err)
		}
	}
	checkHonest(t, load, 2*honestP99, nodes, acked)
}

// The hello and heartbeat limits fit the largest valid message of the
// mesh, and nothing larger.
func TestHelloAndHeartbeatLimits(t *testing.T) {
	for _, p := range []int{1, 16, 1 << 16} {
		h := hello{partitions: p, name: string(make([]byte, maxMeshName)), replication: 1 << 30,
			roots: make([]merkle.Hash, p), stores: make([]byte, bitmapLen(p)), fresh: make([]byte, bitmapLen(p))}
		if got, limit := len(appendHello(nil, h)), helloMaxBytes(p); got > limit {
			t.Errorf("%d partitions: largest hello %d bytes, limit %d", p, got, limit)
		}
		hb := heartbeat{incarnation: ^uint64(0)}
		for i := range p {
			hb.pins = append(hb.pins, uint32(i))
			hb.roots = append(hb.roots, partitionRoot{partition: uint32(i)})
		}
		for range maxHeartbeatAddrs {
			hb.addrs = append(hb.addrs, make([]byte, maxHeartbeatAddrSize))
		}
		if got, limit := len(appendHeartbeat(nil, hb)), heartbeatMaxBytes(p); got > limit {
			t.Errorf("%d partitions: largest heartbeat %d bytes, limit %d", p, got, limit)
		}
	}
	n := &Node{cfg: Config{Partitions: 16}}
	if _, err := n.checkHeartbeat(make([]byte, heartbeatMaxBytes(16)+1)); !errors.Is(err, ErrBadEnvelope) {
		t.Fatalf("oversized heartbeat: %v", err)
	}
}
