// Package cluster runs the simulations package's scenarios on real meshd
// processes: one Docker container per node (a FROM scratch image around
// the static binary), on private bridge networks, driven through the HTTP
// API with the docker CLI. The workload, the model and the checker are the
// in-process harness's (simulations.Workload, simulations.Check), so the
// two backends answer the same question: did the mesh converge, and was
// any acknowledged write lost?
//
// Network: every node pair has a network of its own, the link, so a
// partition of any shape (two halves, a bridge node between two sides, an
// isolated node) is a set of cut links. A cut link drops its packets
// silently: iptables DROP rules for the peer's link address, at both ends,
// set from the host in each container's network namespace (nsenter, since
// the image has no tools), the interfaces left up. A slow link sends its
// packets, at one end, to an NFQUEUE reader in the driver that accepts each
// after a delay of Config.SlowDelay ± SlowJitter, or drops it with
// probability SlowLoss (the kernel's netem is not needed). A start or
// restart gives a container a new namespace, and its rules are set again.
// The driver must run as root on the Docker host. A control network with
// inter-container traffic disabled carries only the driver's HTTP calls.
// Nodes find each other with meshd --join (by the peer's API address);
// mDNS is off so that partitions are only what the schedule says.
//
// Faults: partitions, slow links, `docker kill` (SIGKILL) then `docker
// start` on the kept store, `docker pause`/`unpause` (the process frozen,
// its sockets open; in random-faults for 5-20 s, mostly past meshd's 8 s
// dead-after, so the others declare it dead), and `docker restart` (a
// clean stop). Config.Replication runs the nodes with R holders per
// partition; convergence is then the in-process harness's settled
// placement (every partition on exactly min(R, N) holders, which agree on
// its root, nothing left to hand off). Clients write concurrently to
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
//	cfg.Nodes, cfg.Seed, cfg.Faults, cfg.Duration = 7, 7, 20, 3*time.Minute
//	cfg.Replication = 3
//	cfg.Out = "out"                  // history.jsonl, faults.jsonl, node logs, series.csv, PNG plots
//	res, err := cluster.Run(ctx, cfg) // err wraps ErrNoDocker without an engine
//	if err != nil { ... }
//	if err := res.Err(); err != nil { ... } // not converged, or writes lost
//
// The command meshsim runs it with --backend docker.
package cluster
