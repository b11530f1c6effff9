package scripts

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"

	"github.com/dot-do/platform/internal/names"
)

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
		Limits:             d.Limits,
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
	disk := info
	var err error
	if disk.Bindings, err = s.seal.sealBindings(ns, name, info.Bindings); err != nil {
		return Script{}, err
	}
	b, err := json.Marshal(versionFile{Format: fileFormat, Info: disk, Contents: contents})
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
	if err := s.writeScriptFile(ns, name, sf); err != nil {
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
	if vf.Info.Bindings, _, err = s.seal.openBindings(ns, name, vf.Info.Bindings); err != nil {
		return nil, err
	}
	return &Version{VersionInfo: vf.Info, Contents: vf.Contents}, nil
}
