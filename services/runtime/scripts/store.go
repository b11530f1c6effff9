// Package scripts keeps the local runtime's dispatch namespaces, scripts, their
// versions and secrets on disk.
//
// Layout under the data directory:
//
//	LOCK                                        advisory lock: one runtime per directory
//	tmp/                                        staging and trash, emptied on open
//	namespaces/<ns>/namespace.json              id, times, last version of deleted scripts
//	namespaces/<ns>/scripts/<script>/script.json   versions, tags, secrets, current metadata
//	namespaces/<ns>/scripts/<script>/versions/<n>.json  one immutable file per version
//
// Every write is atomic: a temporary file is written and fsynced, renamed into
// place and its directory fsynced. A version file is renamed into place before
// script.json names it, so a crash leaves at worst an orphan version file,
// which Open removes while keeping its number burned. Version numbers are per
// script, start at 1, increase monotonically and are never reused, not even
// after the script is deleted and uploaded again.
//
// Mutations are serialized by one mutex and do their disk I/O under it;
// readers (Lookup, Script, ...) use a separate read lock that mutations hold
// only to publish the new in-memory state, so the invocation path never
// waits for an fsync.
package scripts

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dot-do/platform/internal/names"
)

const fileFormat = 1

type nsFile struct {
	Format     int              `json:"format"`
	ID         string           `json:"id"`
	Name       string           `json:"name"`
	CreatedOn  time.Time        `json:"created_on"`
	ModifiedOn time.Time        `json:"modified_on"`
	Tombstones map[string]int64 `json:"tombstones,omitempty"`
}

type scriptFile struct {
	Format      int               `json:"format"`
	Name        string            `json:"name"`
	CreatedOn   time.Time         `json:"created_on"`
	ModifiedOn  time.Time         `json:"modified_on"`
	LastVersion int64             `json:"last_version"`
	Versions    []int64           `json:"versions"`
	Tags        []string          `json:"tags,omitempty"`
	Secrets     map[string]string `json:"secrets,omitempty"`
	SecretsGen  uint64            `json:"secrets_generation"`
	Current     VersionInfo       `json:"current"`
}

type versionFile struct {
	Format   int         `json:"format"`
	Info     VersionInfo `json:"info"`
	Contents [][]byte    `json:"contents"`
}

type nsState struct {
	file    nsFile
	scripts map[string]*scriptState
}

type scriptState struct {
	file     scriptFile
	versions map[int64]struct{}
}

// Store is the on-disk store of one runtime. It is safe for concurrent use.
type Store struct {
	dir  string
	log  *slog.Logger
	lock *os.File
	now  func() time.Time

	mu  sync.Mutex   // serializes mutations and their disk I/O
	rmu sync.RWMutex // guards ns for readers; mutations hold it only to publish
	ns  map[string]*nsState

	closed bool
}

// Open opens (creating if needed) the store in dir, takes its lock, removes
// leftovers of interrupted writes and loads the index into memory.
func Open(dir string, logger *slog.Logger) (*Store, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(abs, dirPerm); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	lock, err := lockDir(abs)
	if err != nil {
		return nil, err
	}
	s := &Store{dir: abs, log: logger, lock: lock, now: func() time.Time { return time.Now().UTC().Truncate(time.Millisecond) }, ns: map[string]*nsState{}}
	if err := s.load(); err != nil {
		_ = lock.Close()
		return nil, err
	}
	return s, nil
}

// Dir returns the store's absolute data directory.
func (s *Store) Dir() string { return s.dir }

// Close releases the data directory lock.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	return s.lock.Close()
}

func (s *Store) tmpDir() string              { return filepath.Join(s.dir, "tmp") }
func (s *Store) nsDir(ns string) string      { return filepath.Join(s.dir, "namespaces", ns) }
func (s *Store) nsPath(ns string) string     { return filepath.Join(s.nsDir(ns), "namespace.json") }
func (s *Store) scriptsDir(ns string) string { return filepath.Join(s.nsDir(ns), "scripts") }
func (s *Store) scriptDir(ns, sc string) string {
	return filepath.Join(s.scriptsDir(ns), sc)
}
func (s *Store) scriptPath(ns, sc string) string {
	return filepath.Join(s.scriptDir(ns, sc), "script.json")
}
func (s *Store) versionsDir(ns, sc string) string {
	return filepath.Join(s.scriptDir(ns, sc), "versions")
}
func (s *Store) versionPath(ns, sc string, n int64) string {
	return filepath.Join(s.versionsDir(ns, sc), strconv.FormatInt(n, 10)+".json")
}

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
		if bumped {
			if err := writeJSONAtomic(s.scriptPath(ns, name), ss.file); err != nil {
				return err
			}
		}
		st.scripts[name] = ss
	}
	return nil
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

func writeJSONAtomic(path string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return writeFileAtomic(path, b)
}

// lockWrite takes the mutation lock; it fails once the store is closed.
func (s *Store) lockWrite() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	return nil
}

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

// trash moves dir into tmp/ atomically, then removes it. After the rename
// the entry is gone even if the removal is interrupted (tmp/ is emptied on
// open).
func (s *Store) trash(dir string) error {
	dst := filepath.Join(s.tmpDir(), "trash-"+randomHex(8))
	if err := renameDurable(dir, dst); err != nil {
		return err
	}
	if err := os.RemoveAll(dst); err != nil {
		s.log.Warn("runtime store: removing trash", "err", err)
	}
	return nil
}

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

// PutVersion stores d as the script's next version, creating the script on
// its first upload, and returns the script with the new version current. The
// draft must have been validated by ValidateDraft (it is checked again).
//
// The next version is the last one plus one, unless the draft's tags pin it
// (see PinnedVersion): the Deploy API tags every upload with its deployment
// version, so that the runtime's version numbers are the platform's and the
// dispatcher can invoke a deployment's version without a lookup. A pinned
// number must be above the last version (ErrVersionConflict otherwise);
// numbers may skip, as failed deployments do. Uploading the pinned version
// just stored again, with the same content, returns it unchanged, so that a
// client retrying an upload whose answer was lost does not fail.
func (s *Store) PutVersion(ns, name string, d Draft) (Script, error) {
	if !names.ValidScript(ns) || !names.ValidScript(name) {
		return Script{}, fmt.Errorf("%w: name", ErrInvalid)
	}
	if err := ValidateDraft(&d); err != nil {
		return Script{}, err
	}
	info := VersionInfo{
		CreatedOn:          s.now(),
		MainModule:         d.MainModule,
		CompatibilityDate:  d.CompatibilityDate,
		CompatibilityFlags: d.CompatibilityFlags,
		Bindings:           d.Bindings,
		Logpush:            d.Logpush,
		UsageModel:         d.UsageModel,
		StartupTimeMs:      d.StartupTimeMs,
	}
	contents := make([][]byte, len(d.Modules))
	for i, m := range d.Modules {
		mi := m.ModuleInfo
		mi.Size = int64(len(m.Content))
		info.Modules = append(info.Modules, mi)
		info.Size += mi.Size
		contents[i] = m.Content
	}
	info.Etag = Etag(info, contents)
	// The large write happens before taking the lock; the file does not
	// depend on the version number (taken from the file name).
	b, err := json.Marshal(versionFile{Format: fileFormat, Info: info, Contents: contents})
	if err != nil {
		return Script{}, err
	}
	tmp, err := writeTemp(s.tmpDir(), b)
	if err != nil {
		return Script{}, err
	}
	committed := false
	defer func() {
		if !committed {
			_ = os.Remove(tmp)
		}
	}()

	if err := s.lockWrite(); err != nil {
		return Script{}, err
	}
	defer s.mu.Unlock()
	st, ok := s.ns[ns]
	if !ok {
		return Script{}, ErrNamespaceNotFound
	}
	now := s.now()
	old := st.scripts[name]
	var sf scriptFile
	if old != nil {
		sf = old.file
		sf.Versions = slices.Clone(sf.Versions)
	} else {
		sf = scriptFile{Format: fileFormat, Name: name, CreatedOn: now, LastVersion: st.file.Tombstones[name]}
		if err := mkdirDurable(s.versionsDir(ns, name)); err != nil {
			return Script{}, err
		}
	}
	n := sf.LastVersion + 1
	if pinned, ok := PinnedVersion(d.Tags); ok {
		// LastVersion can be above Current.Number when a crashed upload's
		// number was burned at Open: only a stored current version counts.
		if old != nil && pinned == sf.LastVersion && sf.Current.Number == pinned && sf.Current.Etag == info.Etag {
			// A retried upload of the version just stored (its answer was
			// lost): idempotent.
			return old.view(ns), nil
		}
		if pinned <= sf.LastVersion {
			return Script{}, fmt.Errorf("%w: version %d is not above the last version %d of %s/%s", ErrVersionConflict, pinned, sf.LastVersion, ns, name)
		}
		n = pinned
	}
	info.Number = n
	if err := renameDurable(tmp, s.versionPath(ns, name, n)); err != nil {
		return Script{}, err
	}
	committed = true
	sf.LastVersion = n
	sf.Versions = append(sf.Versions, n)
	sf.ModifiedOn = now
	sf.Current = info
	if d.Tags != nil {
		sf.Tags = slices.Clone(d.Tags)
	}
	if err := writeJSONAtomic(s.scriptPath(ns, name), sf); err != nil {
		// The version file is an orphan now; Open removes it and keeps n burned.
		return Script{}, err
	}
	ss := &scriptState{file: sf, versions: make(map[int64]struct{}, len(sf.Versions))}
	for _, v := range sf.Versions {
		ss.versions[v] = struct{}{}
	}
	s.rmu.Lock()
	st.scripts[name] = ss
	st.file.ModifiedOn = now
	s.rmu.Unlock()
	return ss.view(ns), nil
}

// Version reads a stored version with its module contents from disk.
func (s *Store) Version(ns, name string, n int64) (*Version, error) {
	s.rmu.RLock()
	_, ss, err := s.getScript(ns, name)
	if err == nil {
		if _, ok := ss.versions[n]; !ok {
			err = ErrVersionNotFound
		}
	}
	s.rmu.RUnlock()
	if err != nil {
		return nil, err
	}
	var vf versionFile
	if err := readJSON(s.versionPath(ns, name, n), &vf); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, ErrVersionNotFound // deleted meanwhile
		}
		return nil, err
	}
	if len(vf.Contents) != len(vf.Info.Modules) {
		return nil, fmt.Errorf("version file %s/%s/%d is corrupt", ns, name, n)
	}
	vf.Info.Number = n
	return &Version{VersionInfo: vf.Info, Contents: vf.Contents}, nil
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
	if err := writeJSONAtomic(s.scriptPath(ns, name), sf); err != nil {
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

// SetTags replaces the script's tags.
func (s *Store) SetTags(ns, name string, tags []string) ([]string, error) {
	tags, err := ValidateTags(tags)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	sc, err := s.updateScript(ns, name, func(f *scriptFile) error {
		f.Tags = tags
		return nil
	})
	return sc.Tags, err
}

// AddTag adds one tag to the script (no-op when present).
func (s *Store) AddTag(ns, name, tag string) ([]string, error) {
	sc, err := s.updateScript(ns, name, func(f *scriptFile) error {
		tags, err := ValidateTags(append(f.Tags, tag))
		if err != nil {
			return fmt.Errorf("%w: %v", ErrInvalid, err)
		}
		f.Tags = tags
		return nil
	})
	return sc.Tags, err
}

// RemoveTag removes one tag from the script (no-op when absent).
func (s *Store) RemoveTag(ns, name, tag string) ([]string, error) {
	sc, err := s.updateScript(ns, name, func(f *scriptFile) error {
		f.Tags = slices.DeleteFunc(f.Tags, func(t string) bool { return t == tag })
		return nil
	})
	return sc.Tags, err
}

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
