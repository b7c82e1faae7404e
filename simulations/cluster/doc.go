// Package cluster runs the simulations package's scenarios on real meshd
// processes: one Docker container per node (a FROM scratch image around
// the static binary), on private bridge networks, driven through the HTTP
// API with the docker CLI. The workload, the model and the checker are the
// in-process harness's (simulations.Workload, simulations.Check), so the
// two backends answer the same question: did the mesh converge, and was
// any acknowledged write lost?
//
// Network: every node pair has a network of its own, so a partition of any
// shape (two halves, a bridge node between two sides, an isolated node) is
// a set of `docker network disconnect` calls, and the heal connects the
// same ends again at the same addresses. A control network with
// inter-container traffic disabled carries only the driver's HTTP calls.
// Nodes find each other with meshd --join (by the peer's API address);
// mDNS is off so that partitions are only what the schedule says.
//
// Faults: partitions, `docker kill` (SIGKILL) then `docker start` on the
// kept store, `docker pause`/`unpause` (the process frozen, its sockets
// open), and `docker restart` (a clean stop). Clients write concurrently to
// every node through the HTTP API and record every call. A register write's
// timestamp is known to lie between the wall times its call began and
// returned (the containers share the host's clock), which is the window
// the register check uses (simulations.Record.StampMax).
//
// After the final heal the driver polls GET /v1/status on every node until
// all per-partition roots are equal, fetches every node's states (POST
// /v1/backup) and requires them identical, reads every key back from every
// node through GET /v1/kv, /v1/counter and /v1/set, and checks the states
// against the history. Containers and networks carry a label with the run
// ID and are removed at the end, on failure too; Cleanup removes those of a
// driver that was killed.
//
// Usage:
//
//	cfg := cluster.DefaultConfig()
//	cfg.Scenario = "random-faults"
//	cfg.Nodes, cfg.Seed, cfg.Faults, cfg.Duration = 5, 7, 20, 3*time.Minute
//	cfg.Out = "out"                  // history.jsonl, faults.jsonl, node logs, series.csv, PNG plots
//	res, err := cluster.Run(ctx, cfg) // err wraps ErrNoDocker without an engine
//	if err != nil { ... }
//	if err := res.Err(); err != nil { ... } // not converged, or writes lost
//
// The command meshsim runs it with --backend docker.
package cluster
