package scripts

import (
	"fmt"
	"os"
	"sort"

	"github.com/dot-do/platform/internal/names"
)

// CreateNamespace creates an empty namespace.
func (s *Store) CreateNamespace(name string) (Namespace, error) {
	if !names.ValidScript(name) {
		return Namespace{}, fmt.Errorf("%w: namespace name", ErrInvalid)
	}
	if err := s.lockWrite(); err != nil {
		return Namespace{}, err
	}
	defer s.mu.Unlock()
	if _, ok := s.ns[name]; ok {
		return Namespace{}, ErrNamespaceExists
	}
	now := s.now()
	nf := nsFile{Format: fileFormat, ID: newUUID(), Name: name, CreatedOn: now, ModifiedOn: now}
	if err := mkdirDurable(s.scriptsDir(name)); err != nil {
		return Namespace{}, err
	}
	if err := writeJSONAtomic(s.nsPath(name), nf); err != nil {
		_ = os.RemoveAll(s.nsDir(name))
		return Namespace{}, err
	}
	st := &nsState{file: nf, scripts: map[string]*scriptState{}}
	s.rmu.Lock()
	s.ns[name] = st
	s.rmu.Unlock()
	return st.view(), nil
}

func (st *nsState) view() Namespace {
	return Namespace{ID: st.file.ID, Name: st.file.Name, CreatedOn: st.file.CreatedOn, ModifiedOn: st.file.ModifiedOn, ScriptCount: len(st.scripts)}
}

// Namespaces lists all namespaces, ordered by name.
func (s *Store) Namespaces() []Namespace {
	s.rmu.RLock()
	defer s.rmu.RUnlock()
	out := make([]Namespace, 0, len(s.ns))
	for _, st := range s.ns {
		out = append(out, st.view())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Namespace returns one namespace.
func (s *Store) Namespace(name string) (Namespace, error) {
	s.rmu.RLock()
	defer s.rmu.RUnlock()
	st, ok := s.ns[name]
	if !ok {
		return Namespace{}, ErrNamespaceNotFound
	}
	return st.view(), nil
}

// DeleteNamespace deletes a namespace with all its scripts.
func (s *Store) DeleteNamespace(name string) error {
	if err := s.lockWrite(); err != nil {
		return err
	}
	defer s.mu.Unlock()
	if _, ok := s.ns[name]; !ok {
		return ErrNamespaceNotFound
	}
	if err := s.trash(s.nsDir(name)); err != nil {
		return err
	}
	s.rmu.Lock()
	delete(s.ns, name)
	s.rmu.Unlock()
	return nil
}
