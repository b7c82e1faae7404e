package cluster

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	gosync "sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// A slow, lossy link needs a delay the kernel's netem would give, and the
// kernel these runs use has no netem. NFQUEUE does the job instead: an
// iptables rule in the container's network namespace hands each packet of
// the link to a netlink socket, and the driver gives the verdict, ACCEPT
// after a random delay or DROP, asynchronously by packet ID so that one
// delayed packet holds up no other.
//
// The constants are those of the kernel's uapi header
// linux/netfilter/nfnetlink_queue.h, which golang.org/x/sys/unix does not
// carry.
const (
	nfqnlMsgPacket  = 0
	nfqnlMsgVerdict = 1
	nfqnlMsgConfig  = 2

	nfqaPacketHdr  = 1
	nfqaVerdictHdr = 2

	nfqaCfgCmd      = 1
	nfqaCfgParams   = 2
	nfqaCfgQueueMax = 3

	nfqnlCfgCmdBind = 1
	nfqnlCopyMeta   = 1 // the packet's metadata only: the payload is not needed

	nfDrop   = 0
	nfAccept = 1
)

// netem is what a slow link does to each packet, per direction.
type netem struct {
	Delay, Jitter time.Duration // delay drawn uniformly from Delay ± Jitter
	Loss          float64       // probability of dropping the packet
}

// nfqMaxLen is the queue's length in the kernel. Packets past it are
// dropped; at 200 ms of delay it holds 40,000 packets a second, far more
// than a node's mesh traffic.
const nfqMaxLen = 8192

// nfq is one NFQUEUE reader bound in one container's network namespace.
type nfq struct {
	fd     int
	queue  uint16
	em     netem
	rng    *rand.Rand // only the reading goroutine draws
	mu     gosync.Mutex
	closed bool // under mu: verdicts after close would hit a reused fd
	done   chan struct{}
	// Counts, for the progress line when the reader closes.
	accepted, dropped atomic.Int64
}

// openNFQ binds queue number queue inside the network namespace of the
// process pid and starts reading it. The netlink socket belongs to the
// namespace it was created in, so the goroutine creating it locks its OS
// thread and moves that thread into the namespace first; it never unlocks,
// so the thread ends with the goroutine instead of going back to Go's pool
// in a foreign namespace.
func openNFQ(pid int, queue uint16, em netem, seed uint64) (*nfq, error) {
	q := &nfq{queue: queue, em: em, rng: rand.New(rand.NewPCG(seed, uint64(pid))), done: make(chan struct{})}
	ready := make(chan error, 1)
	go func() {
		defer close(q.done)
		runtime.LockOSThread()
		if err := q.open(pid); err != nil {
			ready <- err
			return
		}
		ready <- nil
		q.read()
	}()
	if err := <-ready; err != nil {
		return nil, fmt.Errorf("cluster: nfqueue in netns of pid %d: %w", pid, err)
	}
	return q, nil
}

func (q *nfq) open(pid int) error {
	ns, err := os.Open(fmt.Sprintf("/proc/%d/ns/net", pid))
	if err != nil {
		return err
	}
	defer ns.Close()
	if err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWNET); err != nil {
		return fmt.Errorf("setns: %w", err)
	}
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_NETFILTER)
	if err != nil {
		return err
	}
	q.fd = fd
	// A large buffer, so that a burst of packets is not lost to ENOBUFS;
	// the timeout lets the reader notice close.
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 8<<20)
	tv := unix.NsecToTimeval(int64(200 * time.Millisecond))
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		unix.Close(fd)
		return err
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		unix.Close(fd)
		return err
	}
	if err := q.configure(); err != nil {
		unix.Close(fd)
		return err
	}
	return nil
}

// nlAttr appends one netlink attribute, padded to 4 bytes.
func nlAttr(b []byte, typ uint16, val []byte) []byte {
	b = binary.NativeEndian.AppendUint16(b, uint16(4+len(val)))
	b = binary.NativeEndian.AppendUint16(b, typ)
	b = append(b, val...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

// nfMsg builds a netfilter netlink message of the queue subsystem: the
// netlink header, then nfgenmsg (family, version, queue number big-endian),
// then the attributes.
func (q *nfq) nfMsg(typ uint16, flags uint16, attrs []byte) []byte {
	b := make([]byte, 16, 20+len(attrs))
	binary.NativeEndian.PutUint32(b[0:], uint32(20+len(attrs)))
	binary.NativeEndian.PutUint16(b[4:], unix.NFNL_SUBSYS_QUEUE<<8|typ)
	binary.NativeEndian.PutUint16(b[6:], flags)
	binary.NativeEndian.PutUint32(b[8:], 1) // seq: only acks are matched, one at a time
	b = append(b, unix.AF_UNSPEC, unix.NFNETLINK_V0)
	b = binary.BigEndian.AppendUint16(b, q.queue)
	return append(b, attrs...)
}

// configure binds the queue, asks for metadata only and sets its length,
// and waits for the kernel's acknowledgement.
func (q *nfq) configure() error {
	var cmd [4]byte
	cmd[0] = nfqnlCfgCmdBind
	binary.BigEndian.PutUint16(cmd[2:], unix.AF_INET)
	params := binary.BigEndian.AppendUint32(nil, 0)
	params = append(params, nfqnlCopyMeta)
	attrs := nlAttr(nil, nfqaCfgCmd, cmd[:])
	attrs = nlAttr(attrs, nfqaCfgParams, params)
	attrs = nlAttr(attrs, nfqaCfgQueueMax, binary.BigEndian.AppendUint32(nil, nfqMaxLen))
	msg := q.nfMsg(nfqnlMsgConfig, unix.NLM_F_REQUEST|unix.NLM_F_ACK, attrs)
	if err := unix.Sendto(q.fd, msg, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return err
	}
	buf := make([]byte, 4096)
	n, _, err := unix.Recvfrom(q.fd, buf, 0)
	if err != nil {
		return fmt.Errorf("config ack: %w", err)
	}
	msgs, err := syscall.ParseNetlinkMessage(buf[:n])
	if err != nil {
		return err
	}
	for _, m := range msgs {
		if m.Header.Type == unix.NLMSG_ERROR && len(m.Data) >= 4 {
			if code := int32(binary.NativeEndian.Uint32(m.Data)); code != 0 {
				return fmt.Errorf("bind queue %d: %w", q.queue, unix.Errno(-code))
			}
			return nil
		}
	}
	return errors.New("no acknowledgement of the queue's configuration")
}

// read takes queued packets until close, giving each its verdict: DROP at
// once with probability Loss, else ACCEPT after its drawn delay.
func (q *nfq) read() {
	buf := make([]byte, 1<<16)
	for {
		n, _, err := unix.Recvfrom(q.fd, buf, 0)
		if q.isClosed() {
			return
		}
		if err != nil {
			// EAGAIN is the receive timeout; ENOBUFS means the kernel lost
			// notifications in a burst (those packets stay queued until the
			// reader closes, then are dropped, like a lossy link's).
			continue
		}
		msgs, err := syscall.ParseNetlinkMessage(buf[:n])
		if err != nil {
			continue
		}
		for _, m := range msgs {
			if m.Header.Type != unix.NFNL_SUBSYS_QUEUE<<8|nfqnlMsgPacket {
				continue
			}
			id, ok := packetID(m.Data)
			if !ok {
				continue
			}
			if q.rng.Float64() < q.em.Loss {
				q.verdict(id, nfDrop)
				continue
			}
			d := q.em.Delay + time.Duration((2*q.rng.Float64()-1)*float64(q.em.Jitter))
			time.AfterFunc(d, func() { q.verdict(id, nfAccept) })
		}
	}
}

// packetID finds NFQA_PACKET_HDR in a packet message (after its 4-byte
// nfgenmsg) and returns the packet's ID.
func packetID(data []byte) (uint32, bool) {
	for b := data[min(4, len(data)):]; len(b) >= 4; {
		l := int(binary.NativeEndian.Uint16(b))
		typ := binary.NativeEndian.Uint16(b[2:]) & 0x3fff // without the nested / byte-order flags
		if l < 4 || l > len(b) {
			return 0, false
		}
		if typ == nfqaPacketHdr && l >= 8 {
			return binary.BigEndian.Uint32(b[4:]), true
		}
		b = b[min((l+3)&^3, len(b)):]
	}
	return 0, false
}

func (q *nfq) verdict(id uint32, v uint32) {
	hdr := binary.BigEndian.AppendUint32(nil, v)
	hdr = binary.BigEndian.AppendUint32(hdr, id)
	msg := q.nfMsg(nfqnlMsgVerdict, unix.NLM_F_REQUEST, nlAttr(nil, nfqaVerdictHdr, hdr))
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return
	}
	if unix.Sendto(q.fd, msg, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}) == nil {
		if v == nfAccept {
			q.accepted.Add(1)
		} else {
			q.dropped.Add(1)
		}
	}
}

func (q *nfq) isClosed() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.closed
}

// close stops the reader and closes the socket, which unbinds the queue:
// the kernel drops the packets still waiting for a verdict. The iptables
// rules sending packets to the queue must be gone first, or the link
// drops everything.
func (q *nfq) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	<-q.done
	unix.Close(q.fd)
}
