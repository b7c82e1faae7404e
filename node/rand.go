package node

import "math/rand/v2"

// Scheduling randomness (sync jitter, peer choice) needs no reproducibility
// in a live node; the simulation drives nodes through TriggerSync instead.
func randFloat() float64 { return rand.Float64() }
func randIntN(n int) int { return rand.IntN(n) }
