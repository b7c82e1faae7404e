// Command meshctl is the command-line client of meshd's HTTP API, built on
// package client (node/httpapi/client), so it links neither the node nor
// libp2p nor the store.
//
//	meshctl [--api HOST[:PORT]] [--json] [--encoding raw|hex|base64] [--token-file F] COMMAND
//
// --api is HOST:PORT, a bare HOST (port 7700, meshd's default) or a URL.
// MESHCTL_API and MESHCTL_TOKEN_FILE in the environment set the defaults of
// --api and --token-file.
//
// Commands: put KEY [VALUE] (VALUE from stdin when omitted), get KEY, del KEY,
// keys [--prefix P] [--local], incr KEY [N], counter KEY, sadd KEY MEMBER,
// srem KEY MEMBER, smembers KEY, watch [PREFIX] [--once], id, peers,
// members, join ADDR, leave, wait --ready [--timeout D], status,
// backup FILE, restore FILE, keygen [swarm|store], token, version, health, completion SHELL.
//
// Plain output is the bare value, fit for shell scripts: get prints the value
// (its exact bytes; a newline is added only on a terminal), counter and incr
// the integer, keys and smembers one item per line. --json prints JSON
// instead, errors included ({"error","code"} on stderr). --encoding hex or
// base64 reads KEY, VALUE and MEMBER arguments in that encoding and prints
// keys, values and members in it, for binary data. keys lists the whole
// mesh, asking holders of partitions this node does not store; --local only
// this node's. watch reconnects and resumes after the last event it printed.
// Errors are one line on stderr; the exit status is 1 for a failed command
// (absent key, meshd unreachable or refusing) and 2 for bad usage.
//
// Example:
//
//	meshctl put greeting hello
//	meshctl get greeting            # hello
//	meshctl incr visits 5           # 5
//	meshctl --json status | jq .keys
//	meshctl --encoding hex get "$(meshctl --encoding hex keys | head -1)"
//	meshctl wait --ready --timeout 30s && meshctl members
//	meshctl backup mesh.gmbk && meshctl --api 10.0.0.2:7700 restore mesh.gmbk
package main
