// Command meshctl is the command-line client of meshd's HTTP API.
//
//	meshctl [--api HOST:PORT] [--json] [--token-file F] COMMAND
//
// MESHCTL_API and MESHCTL_TOKEN_FILE in the environment set the defaults of
// --api and --token-file.
//
// Commands: put KEY [VALUE] (VALUE from stdin when omitted), get KEY, del KEY,
// keys [--prefix P], incr KEY [N], counter KEY, sadd KEY MEMBER,
// srem KEY MEMBER, smembers KEY, watch [PREFIX], id, peers, status,
// backup FILE, restore FILE.
//
// Plain output is the bare value, fit for shell scripts: get prints the value
// (its exact bytes; a newline is added only on a terminal), counter and incr
// the integer, keys and smembers one item per line. --json prints JSON
// instead. Errors are one line on stderr; the exit status is 1 for a failed
// command (absent key, meshd unreachable or refusing) and 2 for bad usage.
//
// Example:
//
//	meshctl put greeting hello
//	meshctl get greeting            # hello
//	meshctl incr visits 5           # 5
//	meshctl --json status | jq .keys
//	meshctl backup mesh.gmbk && meshctl --api 10.0.0.2:7700 restore mesh.gmbk
package main
