package cluster

import "errors"

// Sentinel errors. Callers match them with errors.Is; messages carry the
// detail.
var (
	// ErrNoDocker: no Docker engine answers (`docker info` fails). Tests
	// skip on it; meshsim exits 2.
	ErrNoDocker = errors.New("cluster: no Docker engine reachable")
	// ErrDocker: a docker command failed.
	ErrDocker = errors.New("cluster: docker command failed")
	// ErrBuild: building the static meshd binary or its image failed.
	ErrBuild = errors.New("cluster: build failed")
	// ErrUnknownScenario: the scenario is not one of Scenarios().
	ErrUnknownScenario = errors.New("cluster: unknown scenario")
	// ErrInvalidConfig: Config.validate refused a field.
	ErrInvalidConfig = errors.New("cluster: invalid config")
	// ErrNode: a node's HTTP API did not answer as expected.
	ErrNode = errors.New("cluster: node API")
)
