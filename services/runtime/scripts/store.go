package scripts

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"
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
	Format      int       `json:"format"`
	Name        string    `json:"name"`
	CreatedOn   time.Time `json:"created_on"`
	ModifiedOn  time.Time `json:"modified_on"`
	LastVersion int64     `json:"last_version"`
	Versions    []int64   `json:"versions"`
	Tags        []string  `json:"tags,omitempty"`
	// Secrets maps a secret's name to its sealed value (see seal.go).
	Secrets map[string]string `json:"sealed_secrets,omitempty"`
	// PlainSecrets are secrets as a runtime before sealing wrote them;
	// Open seals them and removes them.
	PlainSecrets map[string]string `json:"secrets,omitempty"`
	SecretsGen   uint64            `json:"secrets_generation"`
	Current      VersionInfo       `json:"current"`
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

	seal *sealer // seals secret values at rest

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
	s := &Store{dir: abs, log: logger, lock: lock, seal: &sealer{path: filepath.Join(abs, KeyFile)}, now: func() time.Time { return time.Now().UTC().Truncate(time.Millisecond) }, ns: map[string]*nsState{}}
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

// lockWrite takes the mutation lock; it fails once the store is closed.
func (s *Store) lockWrite() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
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
