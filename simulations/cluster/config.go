package cluster

import (
	"fmt"
	"io"
	"time"

	"github.com/gossipmesh/gossipmesh/simulations"
)

// Config describes one cluster run. Start from DefaultConfig; Run
// validates it and refuses bad fields with ErrInvalidConfig.
type Config struct {
	// Scenario is one of Scenarios(). Default "partition-heal".
	Scenario string
	// Nodes is the number of meshd containers, at most 32. Default 5.
	Nodes int
	// Seed draws the fault schedule and the workload. Default 1.
	Seed int64
	// Duration is how long the workload runs; faults happen inside it and
	// have all ended by its end. Default 30 s.
	Duration time.Duration
	// Faults is the number of faults of the random-faults scenario.
	// Default 20.
	Faults int
	// PauseFor is how long a paused node stays frozen in the pause
	// scenario; random-faults draws each pause from 5 s to 20 s, bounded by
	// PauseFor. Default 30 s.
	PauseFor time.Duration
	// Replication is the nodes' replication factor R (meshd
	// --replication): the holders of each partition; 0 means every node
	// holds every partition. Default 0.
	Replication int
	// SlowDelay, SlowJitter and SlowLoss are what a slow link (FSlow) does
	// to each packet, in each direction: a delay drawn uniformly from
	// SlowDelay ± SlowJitter, or with probability SlowLoss a drop. Default
	// 200 ms ± 50 ms, 0.1.
	SlowDelay, SlowJitter time.Duration
	SlowLoss              float64
	// Workload is the client load, as in package simulations; zero fields
	// take their defaults there, except Rate, whose default here is 50 ops/s
	// over the whole mesh (every op is an HTTP call through docker's NAT-free
	// bridge, on a machine that also runs the nodes).
	Workload simulations.Workload
	// SyncInterval is the nodes' mean anti-entropy interval (meshd
	// --sync-interval). Default 1 s.
	SyncInterval time.Duration
	// Partitions is the mesh's partition count (meshd --partitions).
	// Default 16.
	Partitions int
	// Timeout bounds the wait for equal roots after the last fault and the
	// last write. Default 60 s.
	Timeout time.Duration
	// OpTimeout bounds one client call; a call that times out is
	// indeterminate. Default 10 s.
	OpTimeout time.Duration
	// Image is a meshd image to run; empty builds the static binary and
	// the image from this module (skipped when an image of an identical
	// binary exists). Default "".
	Image string
	// Out, when set, receives history.jsonl (one line per client call, with
	// its outcome), faults.jsonl (the schedule as applied), the nodes'
	// logs, and the time series of package simulations (series.csv,
	// converged.png, bytes.png), sampled every second. Default "".
	Out string
	// KeepOnFailure leaves the containers and networks of a failed run in
	// place for inspection (remove them later with Cleanup). Default false.
	KeepOnFailure bool
	// Progress receives human-readable progress lines. Default nil.
	Progress io.Writer
}

// DefaultConfig returns the configuration documented on each Config field.
func DefaultConfig() Config {
	return Config{
		Scenario:     "partition-heal",
		Nodes:        5,
		Seed:         1,
		Duration:     30 * time.Second,
		Faults:       20,
		PauseFor:     30 * time.Second,
		SlowDelay:    200 * time.Millisecond,
		SlowJitter:   50 * time.Millisecond,
		SlowLoss:     0.1,
		SyncInterval: time.Second,
		Partitions:   16,
		Timeout:      60 * time.Second,
		OpTimeout:    10 * time.Second,
	}
}

func (c *Config) validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, args...)...)
	}
	switch {
	case c.Nodes < 1 || c.Nodes > maxNodes:
		return bad("Nodes must be in [1, %d], got %d", maxNodes, c.Nodes)
	case c.Duration <= 0:
		return bad("Duration must be positive")
	case c.Faults < 0:
		return bad("Faults must not be negative")
	case c.PauseFor <= 0:
		return bad("PauseFor must be positive")
	case c.Replication < 0:
		return bad("Replication must not be negative, got %d", c.Replication)
	case c.SlowDelay < c.SlowJitter || c.SlowJitter < 0 || c.SlowLoss < 0 || c.SlowLoss > 1:
		return bad("want 0 <= SlowJitter <= SlowDelay and SlowLoss in [0, 1]")
	case c.SyncInterval <= 0:
		return bad("SyncInterval must be positive")
	case c.Partitions < 1:
		return bad("Partitions must be positive")
	case c.Timeout <= 0 || c.OpTimeout <= 0:
		return bad("Timeout and OpTimeout must be positive")
	case c.Workload.Zipf != 0 && c.Workload.Zipf <= 1:
		return bad("Workload.Zipf must be 0 (uniform) or > 1, got %v", c.Workload.Zipf)
	}
	if c.Workload.Rate <= 0 {
		c.Workload.Rate = 50
	}
	return nil
}
