package scripts

import (
	"slices"
	"sort"
)

func (s *Store) getScript(ns, name string) (*nsState, *scriptState, error) {
	st, ok := s.ns[ns]
	if !ok {
		return nil, nil, ErrNamespaceNotFound
	}
	ss, ok := st.scripts[name]
	if !ok {
		return st, nil, ErrScriptNotFound
	}
	return st, ss, nil
}

func (ss *scriptState) view(ns string) Script {
	f := &ss.file
	names := make([]string, 0, len(f.Secrets))
	for k := range f.Secrets {
		names = append(names, k)
	}
	sort.Strings(names)
	return Script{
		Namespace:         ns,
		Name:              f.Name,
		CreatedOn:         f.CreatedOn,
		ModifiedOn:        f.ModifiedOn,
		Versions:          slices.Clone(f.Versions),
		Tags:              slices.Clone(f.Tags),
		SecretNames:       names,
		SecretsGeneration: f.SecretsGen,
		Current:           f.Current,
	}
}

// Script returns a script and its current version's metadata.
func (s *Store) Script(ns, name string) (Script, error) {
	s.rmu.RLock()
	defer s.rmu.RUnlock()
	_, ss, err := s.getScript(ns, name)
	if err != nil {
		return Script{}, err
	}
	return ss.view(ns), nil
}

// Scripts lists the scripts of a namespace for which match returns true (all
// when match is nil), ordered by name.
func (s *Store) Scripts(ns string, match func(Script) bool) ([]Script, error) {
	s.rmu.RLock()
	defer s.rmu.RUnlock()
	st, ok := s.ns[ns]
	if !ok {
		return nil, ErrNamespaceNotFound
	}
	out := make([]Script, 0, len(st.scripts))
	for _, ss := range st.scripts {
		v := ss.view(ns)
		if match == nil || match(v) {
			out = append(out, v)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Lookup reports whether version exists for the script and returns the
// script's secrets generation. It only reads memory.
func (s *Store) Lookup(ns, name string, version int64) (uint64, bool) {
	s.rmu.RLock()
	defer s.rmu.RUnlock()
	st, ok := s.ns[ns]
	if !ok {
		return 0, false
	}
	ss, ok := st.scripts[name]
	if !ok {
		return 0, false
	}
	if _, ok := ss.versions[version]; !ok {
		return 0, false
	}
	return ss.file.SecretsGen, true
}

// DeleteScript deletes a script with all its versions and secrets. Its
// version numbers stay burned for a later script of the same name.
func (s *Store) DeleteScript(ns, name string) error {
	if err := s.lockWrite(); err != nil {
		return err
	}
	defer s.mu.Unlock()
	return s.deleteScriptLocked(ns, name)
}

func (s *Store) deleteScriptLocked(ns, name string) error {
	st, ss, err := s.getScript(ns, name)
	if err != nil {
		return err
	}
	nf := st.file
	nf.Tombstones = make(map[string]int64, len(st.file.Tombstones)+1)
	for k, v := range st.file.Tombstones {
		nf.Tombstones[k] = v
	}
	nf.Tombstones[name] = ss.file.LastVersion
	nf.ModifiedOn = s.now()
	// Record the tombstone first: a crash after it but before the removal
	// leaves the script in place with its numbers burned either way.
	if err := writeJSONAtomic(s.nsPath(ns), nf); err != nil {
		return err
	}
	if err := s.trash(s.scriptDir(ns, name)); err != nil {
		return err
	}
	s.rmu.Lock()
	st.file = nf
	delete(st.scripts, name)
	s.rmu.Unlock()
	return nil
}

// DeleteScripts deletes every script of the namespace for which match
// returns true and returns their names.
func (s *Store) DeleteScripts(ns string, match func(Script) bool) ([]string, error) {
	if err := s.lockWrite(); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	st, ok := s.ns[ns]
	if !ok {
		return nil, ErrNamespaceNotFound
	}
	var names []string
	for name, ss := range st.scripts {
		if match(ss.view(ns)) {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	for i, name := range names {
		if err := s.deleteScriptLocked(ns, name); err != nil {
			return names[:i], err
		}
	}
	return names, nil
}

// updateScript applies fn to a copy of the script's file, writes it and
// publishes it.
func (s *Store) updateScript(ns, name string, fn func(*scriptFile) error) (Script, error) {
	if err := s.lockWrite(); err != nil {
		return Script{}, err
	}
	defer s.mu.Unlock()
	st, ss, err := s.getScript(ns, name)
	if err != nil {
		return Script{}, err
	}
	sf := ss.file
	sf.Tags = slices.Clone(sf.Tags)
	sf.Secrets = cloneMap(sf.Secrets)
	if err := fn(&sf); err != nil {
		return Script{}, err
	}
	now := s.now()
	sf.ModifiedOn = now
	if err := s.writeScriptFile(ns, name, sf); err != nil {
		return Script{}, err
	}
	nss := &scriptState{file: sf, versions: ss.versions}
	s.rmu.Lock()
	st.scripts[name] = nss
	st.file.ModifiedOn = now
	s.rmu.Unlock()
	return nss.view(ns), nil
}

func cloneMap(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// writeScriptFile writes sf as the script's script.json, with the values
// of its current version's secret_text bindings sealed (sf keeps them
// open, in memory).
func (s *Store) writeScriptFile(ns, name string, sf scriptFile) error {
	bs, err := s.seal.sealBindings(ns, name, sf.Current.Bindings)
	if err != nil {
		return err
	}
	sf.Current.Bindings = bs
	return writeJSONAtomic(s.scriptPath(ns, name), sf)
}
