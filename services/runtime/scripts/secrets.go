package scripts

import (
	"fmt"

	"github.com/dot-do/platform/internal/names"
)

// PutSecret sets a secret of the script. Secrets belong to the script, not
// to a version: they reach the env of every version, taking precedence over
// bindings of the same name, from the next request on.
func (s *Store) PutSecret(ns, name, key, text string) error {
	if !names.ValidBinding(key) {
		return fmt.Errorf("%w: secret name", ErrInvalid)
	}
	_, err := s.updateScript(ns, name, func(f *scriptFile) error {
		f.Secrets[key] = text
		f.SecretsGen++
		return nil
	})
	return err
}

// DeleteSecret removes a secret of the script.
func (s *Store) DeleteSecret(ns, name, key string) error {
	_, err := s.updateScript(ns, name, func(f *scriptFile) error {
		if _, ok := f.Secrets[key]; !ok {
			return ErrSecretNotFound
		}
		delete(f.Secrets, key)
		f.SecretsGen++
		return nil
	})
	return err
}

// Secrets returns the script's secret values and their generation. Callers
// must never log or echo the values.
func (s *Store) Secrets(ns, name string) (map[string]string, uint64, error) {
	s.rmu.RLock()
	defer s.rmu.RUnlock()
	_, ss, err := s.getScript(ns, name)
	if err != nil {
		return nil, 0, err
	}
	return cloneMap(ss.file.Secrets), ss.file.SecretsGen, nil
}
