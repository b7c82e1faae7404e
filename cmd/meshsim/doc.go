// Command meshsim runs a gossipmesh scenario on many real nodes over a
// simulated network and checks that they converge with no acknowledged write
// lost.
//
// Usage:
//
//	meshsim --scenario partition-heal --nodes 100 --seed 7 --out out/
//
// Progress goes to stderr. The last line on stdout is one JSON object with
// at least scenario, nodes, seed, converged, convergence_ms, acked_writes,
// lost_writes and bytes_sent. With --out, the directory receives series.csv
// (per node and sample: divergence, messages, bytes), converged.png and
// bytes.png.
//
// With --backend docker the scenario runs on real meshd containers instead
// (package simulations/cluster): a FROM scratch image of the static binary,
// built on the host, one container per node, partitions by `docker network
// disconnect`, `docker kill` then `docker start`, `docker pause` and
// `docker restart`, clients on the HTTP API. It prints the same summary
// line, with fault_kinds and run_id added; --out receives history.jsonl
// (every client call and its outcome), faults.jsonl and the node logs,
// besides series.csv, converged.png and bytes.png (nodes polled every
// second).
// Scenarios: steady, partition-heal, churn, pause and random-faults
// (--faults N over --duration, partitions, kills, pauses of --pause and
// restarts drawn from the seed):
//
//	meshsim --backend docker --scenario random-faults --nodes 5 --seed 1 --faults 20 --duration 3m --out out/
//
// Exit status: 0 when the mesh converged with nothing lost; 1 when it did
// not converge or the checker found a lost or unexplained write; 2 for bad
// usage and, with --backend docker, for a scenario it does not run or when
// no Docker engine is reachable.
package main
