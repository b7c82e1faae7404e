package antientropy

import "fmt"

// MaxKeyBytes is the largest key a Record may carry.
const MaxKeyBytes = 1024

// Config tunes a session. Zero fields take their defaults.
type Config struct {
	// MaxFrameBytes bounds the encoded size of every Message the session
	// emits; larger turns are split into several frames. Default 4 MiB.
	// Minimum 4 KiB; a record larger than a frame fails the session with
	// ErrRecordTooLarge.
	MaxFrameBytes int
	// Fanout is log2 of the number of children a differing node is expanded
	// into when many nodes differ. Default 4 (16 children). Range 1..8.
	Fanout int
	// ListMax: a differing subtree holding at most this many local keys is
	// listed by fingerprint (4 bytes per key) instead of expanded. Default 4.
	ListMax int
	// FewNodes: when at most this many subtrees are expanded in one turn (few
	// differences), the session expands up to 8 bits at once and lists
	// subtrees of up to FewListMax keys, spending bytes to save round trips.
	// Default 16.
	FewNodes int
	// FewListMax is ListMax when few nodes differ. Default 32.
	FewListMax int
}

// DefaultConfig returns the defaults documented on Config's fields.
func DefaultConfig() Config {
	return Config{MaxFrameBytes: 4 << 20, Fanout: 4, ListMax: 4, FewNodes: 16, FewListMax: 32}
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.MaxFrameBytes == 0 {
		c.MaxFrameBytes = d.MaxFrameBytes
	}
	if c.Fanout == 0 {
		c.Fanout = d.Fanout
	}
	if c.ListMax == 0 {
		c.ListMax = d.ListMax
	}
	if c.FewNodes == 0 {
		c.FewNodes = d.FewNodes
	}
	if c.FewListMax == 0 {
		c.FewListMax = d.FewListMax
	}
	return c
}

func (c Config) validate() error {
	switch {
	case c.MaxFrameBytes < 4<<10:
		return fmt.Errorf("%w: MaxFrameBytes %d < 4096", ErrInvalidConfig, c.MaxFrameBytes)
	case c.Fanout < 1 || c.Fanout > 8:
		return fmt.Errorf("%w: Fanout %d not in 1..8", ErrInvalidConfig, c.Fanout)
	case c.ListMax < 1 || c.ListMax > 1024:
		return fmt.Errorf("%w: ListMax %d not in 1..1024", ErrInvalidConfig, c.ListMax)
	case c.FewNodes < 0:
		return fmt.Errorf("%w: FewNodes %d < 0", ErrInvalidConfig, c.FewNodes)
	case c.FewListMax < 1 || c.FewListMax > 1024:
		return fmt.Errorf("%w: FewListMax %d not in 1..1024", ErrInvalidConfig, c.FewListMax)
	}
	return nil
}
