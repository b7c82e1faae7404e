// Package simulations runs many real gossipmesh nodes (package node) in one
// process on a simulated libp2p network (go-libp2p's mocknet), plays a
// seeded workload and fault schedule against them, waits for convergence
// and checks the converged state against a model of every acknowledged
// write.
//
// A run is reproducible from its seed as far as the seed can reach: the
// topology, node identities (and so HLC tie breaks), fault schedule, clock
// skews and the operation schedule are drawn from it. Goroutine scheduling,
// the nodes' own choice of anti-entropy peer and the loss model's draws
// interleave nondeterministically, so timings and byte counts vary a little
// between runs of one seed.
//
// Faults: partitions (links cut and connections closed, then relinked),
// crash and restart of a node on its kept in-memory store, late joiners,
// per-node clock skew, link latency and bandwidth, and message loss (see
// lossModel for what loss means on mocknet's reliable streams).
//
// The checker (Check) proves convergence and no lost acknowledged write:
// every register ends at the write with the highest HLC timestamp, every
// counter at the exact sum of acknowledged increments, and every set member
// as add-wins dictates where the history decides it.
//
// Usage:
//
//	cfg := simulations.DefaultConfig()
//	cfg.Scenario = "partition-heal"
//	cfg.Nodes = 20
//	cfg.Seed = 42
//	res, err := simulations.Run(ctx, cfg)
//	if err != nil { ... }           // the run could not be carried out
//	if err := res.Err(); err != nil { ... } // not converged, or writes lost
//	fmt.Println(res.ConvergenceMS, res.AckedWrites, res.LostWrites)
//	_ = simulations.WriteOutputs("out", res) // series.csv, converged.png, bytes.png
//
// The command meshsim wraps Run with flags and prints the Result as JSON.
package simulations
