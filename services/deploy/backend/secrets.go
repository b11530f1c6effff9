package backend

import (
	"context"
	"slices"
)

// Secrets is implemented by backends that keep per-script secrets, as
// Cloudflare does for the scripts of a dispatch namespace: a secret belongs
// to the script, outlives its uploads, and reaches the worker's env as a
// secret_text binding. Values go in and never come out.
type Secrets interface {
	// PutSecret creates or replaces the secret name of script in
	// namespace. It returns an error wrapping ErrNotFound when the script
	// does not exist. The error never holds value.
	PutSecret(ctx context.Context, namespace, script, name, value string) error
	// ListSecrets returns the names of script's secrets, sorted, or an
	// error wrapping ErrNotFound when the script does not exist.
	ListSecrets(ctx context.Context, namespace, script string) ([]string, error)
	// DeleteSecret removes the secret name of script, or returns an error
	// wrapping ErrNotFound when there is no such script or secret.
	DeleteSecret(ctx context.Context, namespace, script, name string) error
}

var _ Secrets = (*Memory)(nil)

// memSecrets returns the secrets of script in namespace, creating the map
// when create is set; the caller holds m.mu.
func (m *Memory) memSecrets(op, namespace, script string, create bool) (map[string]string, error) {
	n, ok := m.namespaces[namespace]
	if !ok {
		return nil, &Error{Op: op, Status: 404, Sentinel: ErrNotFound, Message: "no namespace " + namespace}
	}
	if _, ok := n.scripts[script]; !ok {
		return nil, &Error{Op: op, Status: 404, Sentinel: ErrNotFound, Message: "no script " + script}
	}
	if n.secrets == nil && create {
		n.secrets = map[string]map[string]string{}
	}
	s := n.secrets[script]
	if s == nil && create {
		s = map[string]string{}
		n.secrets[script] = s
	}
	return s, nil
}

// PutSecret implements Secrets.
func (m *Memory) PutSecret(_ context.Context, namespace, script, name, value string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, err := m.memSecrets("put secret "+name+" of script "+script, namespace, script, true)
	if err != nil {
		return err
	}
	s[name] = value
	return nil
}

// ListSecrets implements Secrets.
func (m *Memory) ListSecrets(_ context.Context, namespace, script string) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, err := m.memSecrets("list secrets of script "+script, namespace, script, false)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(s))
	for k := range s {
		out = append(out, k)
	}
	slices.Sort(out)
	return out, nil
}

// DeleteSecret implements Secrets.
func (m *Memory) DeleteSecret(_ context.Context, namespace, script, name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	op := "delete secret " + name + " of script " + script
	s, err := m.memSecrets(op, namespace, script, false)
	if err != nil {
		return err
	}
	if _, ok := s[name]; !ok {
		return &Error{Op: op, Status: 404, Sentinel: ErrNotFound, Message: "no secret " + name}
	}
	delete(s, name)
	return nil
}

// SecretValue returns the value of a secret, for tests of the callers.
func (m *Memory) SecretValue(namespace, script, name string) (string, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n, ok := m.namespaces[namespace]
	if !ok {
		return "", false
	}
	v, ok := n.secrets[script][name]
	return v, ok
}
