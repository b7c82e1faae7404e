package node

import (
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/multiformats/go-multiaddr"
)

// A bootstrap peer that cannot be reached is reported once, at WARN, with
// the reason; the retries that follow stay at debug level.
func TestUnreachableBootstrapIsReportedOnce(t *testing.T) {
	_, id := newIdentity(t)
	dead := multiaddr.StringCast("/ip4/127.0.0.1/tcp/1/p2p/" + id.String())
	var log syncBuffer
	cfg := testConfig()
	cfg.Bootstrap = []multiaddr.Multiaddr{dead}
	cfg.Logger = slog.New(slog.NewTextHandler(&log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	startNode(t, cfg)
	waitFor(t, 20*time.Second, "a retry after the first failure", func() error {
		if !strings.Contains(log.String(), "level=DEBUG msg=\"connect failed\"") {
			return errors.New("no retry yet")
		}
		return nil
	})
	warns := strings.Count(log.String(), "level=WARN msg=\"cannot reach known peer")
	if warns != 1 {
		t.Fatalf("%d warnings for one unreachable peer, want 1:\n%s", warns, log.String())
	}
	if !strings.Contains(log.String(), id.String()) {
		t.Fatal("the warning does not name the peer")
	}
}
