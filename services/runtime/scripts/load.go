package scripts

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/dot-do/platform/internal/names"
)

func (s *Store) load() error {
	if err := os.RemoveAll(s.tmpDir()); err != nil {
		return err
	}
	if err := os.MkdirAll(s.tmpDir(), dirPerm); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(s.dir, "namespaces"), dirPerm); err != nil {
		return err
	}
	entries, err := os.ReadDir(filepath.Join(s.dir, "namespaces"))
	if err != nil {
		return err
	}
	for _, e := range entries {
		name := e.Name()
		if !e.IsDir() || !names.ValidScript(name) {
			s.log.Warn("runtime store: ignoring unexpected entry", "path", filepath.Join("namespaces", name))
			continue
		}
		var nf nsFile
		if err := readJSON(s.nsPath(name), &nf); err != nil {
			if errors.Is(err, os.ErrNotExist) {
				// Creation was interrupted before namespace.json landed.
				s.log.Warn("runtime store: removing incomplete namespace", "namespace", name)
				if err := os.RemoveAll(s.nsDir(name)); err != nil {
					return err
				}
				continue
			}
			return fmt.Errorf("namespace %s: %w", name, err)
		}
		st := &nsState{file: nf, scripts: map[string]*scriptState{}}
		if err := s.loadScripts(name, st); err != nil {
			return err
		}
		s.ns[name] = st
	}
	return nil
}

func (s *Store) loadScripts(ns string, st *nsState) error {
	entries, err := os.ReadDir(s.scriptsDir(ns))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range entries {
		name := e.Name()
		if !e.IsDir() || !names.ValidScript(name) {
			if strings.HasPrefix(name, ".tmp-") {
				_ = os.Remove(filepath.Join(s.scriptsDir(ns), name))
			}
			continue
		}
		var sf scriptFile
		if err := readJSON(s.scriptPath(ns, name), &sf); err != nil {
			if errors.Is(err, os.ErrNotExist) {
				// The first upload never completed: the script never existed.
				s.log.Warn("runtime store: removing incomplete script", "namespace", ns, "script", name)
				if err := os.RemoveAll(s.scriptDir(ns, name)); err != nil {
					return err
				}
				continue
			}
			return fmt.Errorf("script %s/%s: %w", ns, name, err)
		}
		bs, legacy, err := s.seal.openBindings(ns, name, sf.Current.Bindings)
		if err != nil {
			return fmt.Errorf("script %s/%s: %w", ns, name, err)
		}
		sf.Current.Bindings = bs
		ss := &scriptState{file: sf, versions: make(map[int64]struct{}, len(sf.Versions))}
		for _, v := range sf.Versions {
			ss.versions[v] = struct{}{}
		}
		// Remove temporaries and orphan versions (renamed into place before a
		// crash stopped script.json from naming them); keep their numbers burned.
		vents, err := os.ReadDir(s.versionsDir(ns, name))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		bumped := false
		for _, ve := range vents {
			vn := ve.Name()
			n, perr := strconv.ParseInt(strings.TrimSuffix(vn, ".json"), 10, 64)
			if perr == nil && strings.HasSuffix(vn, ".json") {
				if _, ok := ss.versions[n]; ok {
					continue
				}
				if n > ss.file.LastVersion {
					ss.file.LastVersion = n
					bumped = true
				}
			}
			s.log.Warn("runtime store: removing orphan file", "namespace", ns, "script", name, "file", vn)
			if err := os.Remove(filepath.Join(s.versionsDir(ns, name), vn)); err != nil {
				return err
			}
		}
		sealed, err := s.sealPlain(ns, name, &ss.file)
		if err != nil {
			return fmt.Errorf("script %s/%s: seal its secrets: %w", ns, name, err)
		}
		if bumped || sealed || legacy {
			if err := s.writeScriptFile(ns, name, ss.file); err != nil {
				return err
			}
		}
		st.scripts[name] = ss
	}
	return nil
}
