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
// built on the host, one container per node, silent partitions and slow,
// lossy links (iptables rules in each container's network namespace, the
// delays given by an NFQUEUE reader in meshsim), `docker kill` then
// `docker start`, `docker pause` and `docker restart`, clients on the HTTP
// API; --replication R runs the nodes with R holders per partition. It
// prints the same summary line, with fault_kinds, replication and run_id
// added; --out receives history.jsonl
// (every client call and its outcome), faults.jsonl and the node logs,
// besides series.csv, converged.png and bytes.png (nodes polled every
// second).
// Scenarios: steady, partition-heal, churn, pause and random-faults
// (--faults N over --duration: partitions, slow links, kills, pauses of
// 5-20 s and restarts drawn from the seed; the pause scenario pauses for
// --pause):
//
//	meshsim --backend docker --scenario random-faults --nodes 7 --replication 3 --seed 1 --faults 20 --duration 3m --out out/
//
// Exit status: 0 when the mesh converged with nothing lost; 1 when it did
// not converge or the checker found a lost or unexplained write; 2 for bad
// usage and, with --backend docker, for a scenario it does not run or when
// no Docker engine is reachable.
package main
