package simulations

import (
	"fmt"
	"io"
	"log/slog"
	"time"
)

// Config describes one simulation run. Start from DefaultConfig; Run
// validates it and refuses bad fields with ErrInvalidConfig.
type Config struct {
	// Scenario is one of Scenarios(). Default "steady".
	Scenario string
	// Nodes is the mesh size N. Default 10.
	Nodes int
	// Seed draws the topology, identities, fault schedule and workload.
	// Default 1.
	Seed int64
	// Duration is how long the workload runs; faults happen inside it.
	// Default 3 s.
	Duration time.Duration
	// Workload is the client load; zero fields take their defaults.
	Workload Workload
	// Partitions is the partition count P of the mesh. Default 16.
	Partitions int
	// SyncInterval is the nodes' mean anti-entropy interval. Default 200 ms.
	SyncInterval time.Duration
	// Degree is the number of topology neighbours each node aims for.
	// Default 6.
	Degree int
	// Timeout bounds the wait for convergence after the last fault and the
	// last write. Default (0): 30 s, or 0.5 s per node when that is longer,
	// since a large mesh in one process is CPU-bound.
	Timeout time.Duration
	// Latency overrides the scenario's one-way link latency when positive.
	// Default 0: the scenario's (2 ms; 10 ms for lossy).
	Latency time.Duration
	// Bandwidth limits each link, in bytes per second, when positive.
	// Default 0: unlimited.
	Bandwidth float64
	// SampleEvery is the time-series sampling period. Default 100 ms, or
	// 2 ms per node when that is longer, so sampling stays cheap at scale.
	SampleEvery time.Duration
	// Progress receives human-readable progress lines. Default nil (silent).
	Progress io.Writer
	// NodeLogger receives the nodes' logs. Default: discarded.
	NodeLogger *slog.Logger
}

// DefaultConfig returns the configuration documented on each Config field.
func DefaultConfig() Config {
	return Config{
		Scenario:     "steady",
		Nodes:        10,
		Seed:         1,
		Duration:     3 * time.Second,
		Partitions:   16,
		SyncInterval: 200 * time.Millisecond,
		Degree:       6,
	}
}

func (c *Config) validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, args...)...)
	}
	switch {
	case c.Nodes < 1:
		return bad("Nodes must be positive, got %d", c.Nodes)
	case c.Duration <= 0:
		return bad("Duration must be positive")
	case c.Partitions < 1:
		return bad("Partitions must be positive, got %d", c.Partitions)
	case c.SyncInterval <= 0:
		return bad("SyncInterval must be positive")
	case c.Degree < 1:
		return bad("Degree must be positive, got %d", c.Degree)
	case c.Timeout < 0 || c.Latency < 0 || c.Bandwidth < 0:
		return bad("Timeout, Latency and Bandwidth must not be negative")
	case c.Workload.Zipf != 0 && c.Workload.Zipf <= 1:
		return bad("Workload.Zipf must be 0 (uniform) or > 1, got %v", c.Workload.Zipf)
	}
	if c.Timeout == 0 {
		c.Timeout = max(30*time.Second, time.Duration(c.Nodes)*500*time.Millisecond)
	}
	if c.SampleEvery <= 0 {
		c.SampleEvery = max(100*time.Millisecond, time.Duration(c.Nodes)*2*time.Millisecond)
	}
	if c.NodeLogger == nil {
		c.NodeLogger = slog.New(slog.DiscardHandler)
	}
	return nil
}
