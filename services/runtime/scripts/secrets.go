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
		sealed, err := s.seal.seal(ns, name, key, text)
		if err != nil {
			return err
		}
		f.Secrets[key] = sealed
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

// Secrets returns the script's secret values, opened, and their
// generation. Callers must never log or echo the values.
func (s *Store) Secrets(ns, name string) (map[string]string, uint64, error) {
	s.rmu.RLock()
	_, ss, err := s.getScript(ns, name)
	if err != nil {
		s.rmu.RUnlock()
		return nil, 0, err
	}
	sealed, gen := ss.file.Secrets, ss.file.SecretsGen
	s.rmu.RUnlock()
	out := make(map[string]string, len(sealed))
	for k, v := range sealed {
		plain, err := s.seal.open(ns, name, k, v)
		if err != nil {
			return nil, 0, err
		}
		out[k] = plain
	}
	return out, gen, nil
}

// sealPlain seals the secrets a runtime before sealing left in plain text
// in sf and reports whether there were any.
func (s *Store) sealPlain(ns, name string, sf *scriptFile) (bool, error) {
	if len(sf.PlainSecrets) == 0 {
		return false, nil
	}
	if sf.Secrets == nil {
		sf.Secrets = map[string]string{}
	}
	for k, v := range sf.PlainSecrets {
		sealed, err := s.seal.seal(ns, name, k, v)
		if err != nil {
			return false, err
		}
		sf.Secrets[k] = sealed
	}
	sf.PlainSecrets = nil
	return true, nil
}
