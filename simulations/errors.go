package simulations

import "errors"

// Sentinel errors. Callers match them with errors.Is; messages carry the
// detail.
var (
	// ErrUnknownScenario: the scenario name is not one of Scenarios().
	ErrUnknownScenario = errors.New("simulations: unknown scenario")
	// ErrInvalidConfig: Config.validate refused a field.
	ErrInvalidConfig = errors.New("simulations: invalid config")
	// ErrNotConverged: the replicas did not reach equal roots before the
	// deadline.
	ErrNotConverged = errors.New("simulations: not converged")
	// ErrLostWrites: the checker found an acknowledged write missing from the
	// converged state, or a state no write explains.
	ErrLostWrites = errors.New("simulations: model check failed")
	// ErrProbe: the datastore probe could not tell the timestamp a write got;
	// the register check cannot be made, so it fails loudly instead of
	// passing.
	ErrProbe = errors.New("simulations: write probe missing")
)
