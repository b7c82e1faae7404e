package node

// Check validates the configuration the way New does, files included (the
// swarm key, the allowlist and the encryption key are read and parsed),
// without opening the store or the network: for a daemon's --check.
// Errors wrap ErrInvalidConfig.
func (c Config) Check() error {
	if err := c.validate(); err != nil {
		return err
	}
	if _, err := loadSwarmKey(&c); err != nil {
		return err
	}
	if _, err := configuredAllowlist(&c); err != nil {
		return err
	}
	if c.EncryptionKeyFile != "" {
		if _, err := readEncryptionKey(c.EncryptionKeyFile); err != nil {
			return err
		}
	}
	return nil
}
