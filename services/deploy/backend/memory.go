package backend

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Memory is a Backend held in process memory. It keeps each script's
// settings and tags, not copies of its modules (it keeps the caller's
// slices), so an upload costs almost nothing: the benchmarks use it to
// measure the deploy path without a namespace backend, and tests use it to
// count uploads and inject failures.
type Memory struct {
	name string

	mu         sync.Mutex
	namespaces map[string]*memNamespace

	uploads atomic.Int64

	// scheduled records the runs of Scheduled, as "namespace/script cron".
	scheduled []string

	// hook, when set, runs before every upload; an error it returns fails
	// the upload.
	hook atomic.Pointer[func(ctx context.Context, namespace string, s Script) error]

	// dispatch holds the account-level dispatch Workers and their routes.
	dispatch memDispatch
}

type memNamespace struct {
	ns      Namespace
	scripts map[string]Script
	// secrets maps a script to its secrets, which outlive its uploads.
	secrets map[string]map[string]string
}

var _ Backend = (*Memory)(nil)

// NewMemory returns an empty Memory backend named "memory" that holds the
// given namespaces.
func NewMemory(namespaces ...string) *Memory {
	m := &Memory{name: "memory", namespaces: map[string]*memNamespace{}}
	for _, n := range namespaces {
		m.ensure(n)
	}
	return m
}

// Name implements Backend.
func (m *Memory) Name() string { return m.name }

func (m *Memory) ensure(name string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.namespaces[name]; ok {
		return false
	}
	m.namespaces[name] = &memNamespace{
		ns:      Namespace{Name: name, ID: fmt.Sprintf("mem-%d", len(m.namespaces)+1), CreatedOn: time.Now().UTC()},
		scripts: map[string]Script{},
	}
	return true
}

// EnsureNamespace implements Backend.
func (m *Memory) EnsureNamespace(_ context.Context, name string) (bool, error) {
	return m.ensure(name), nil
}

// NamespaceInfo implements Backend.
func (m *Memory) NamespaceInfo(_ context.Context, name string) (Namespace, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n, ok := m.namespaces[name]
	if !ok {
		return Namespace{}, &Error{Op: "get namespace " + name, Status: 404, Sentinel: ErrNotFound}
	}
	info := n.ns
	info.ScriptCount = int64(len(n.scripts))
	return info, nil
}

// Upload implements Backend.
func (m *Memory) Upload(ctx context.Context, namespace string, s Script) error {
	if h := m.hook.Load(); h != nil {
		if err := (*h)(ctx, namespace, s); err != nil {
			return err
		}
	}
	if err := ctx.Err(); err != nil {
		return &Error{Op: "upload script " + s.Name, Sentinel: ErrUnavailable, Cause: err}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	n, ok := m.namespaces[namespace]
	if !ok {
		return &Error{Op: "upload script " + s.Name + " to namespace " + namespace, Status: 404, Sentinel: ErrNotFound, Message: "dispatch namespace not found"}
	}
	s.Tags = slices.Clone(s.Tags)
	n.scripts[s.Name] = s
	m.uploads.Add(1)
	return nil
}

// ScriptTags implements Backend.
func (m *Memory) ScriptTags(_ context.Context, namespace, script string) ([]string, error) {
	s, ok := m.Script(namespace, script)
	if !ok {
		return nil, &Error{Op: "get tags of script " + script + " in namespace " + namespace, Status: 404, Sentinel: ErrNotFound}
	}
	return slices.Clone(s.Tags), nil
}

// Scheduled implements Backend: it records the run (see ScheduledRuns) of
// a script that exists.
func (m *Memory) Scheduled(_ context.Context, namespace, script, cron string) error {
	if _, ok := m.Script(namespace, script); !ok {
		return &Error{Op: "run the scheduled handler of " + script + " in namespace " + namespace, Status: 404, Sentinel: ErrNotFound}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.scheduled = append(m.scheduled, namespace+"/"+script+" "+cron)
	return nil
}

// ScheduledRuns returns the runs of Scheduled so far, each as
// "namespace/script cron".
func (m *Memory) ScheduledRuns() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.scheduled)
}

// Script returns the script last uploaded as name to namespace.
func (m *Memory) Script(namespace, name string) (Script, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n, ok := m.namespaces[namespace]
	if !ok {
		return Script{}, false
	}
	s, ok := n.scripts[name]
	return s, ok
}

// Uploads returns how many uploads succeeded.
func (m *Memory) Uploads() int64 { return m.uploads.Load() }

// SetUploadHook makes f run before every upload; an error from f fails the
// upload and nothing is stored. A nil f removes the hook.
func (m *Memory) SetUploadHook(f func(ctx context.Context, namespace string, s Script) error) {
	if f == nil {
		m.hook.Store(nil)
		return
	}
	m.hook.Store(&f)
}
