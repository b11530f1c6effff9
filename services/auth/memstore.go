package auth

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
	"time"
)

// MemStore is the in-process KeyStore: records live in a map guarded by a
// mutex. It is safe for concurrent use and implements every atomicity
// requirement of KeyStore, but it is not durable. Use it in tests, local
// development and single-process tools; production uses the DB-backed store.
type MemStore struct {
	mu   sync.RWMutex
	keys map[string]KeyRecord
}

var _ KeyStore = (*MemStore)(nil)

// NewMemStore returns an empty MemStore.
func NewMemStore() *MemStore {
	return &MemStore{keys: make(map[string]KeyRecord)}
}

// CreateKey implements KeyStore.
func (m *MemStore) CreateKey(ctx context.Context, rec KeyRecord) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.insertLocked(rec)
}

func (m *MemStore) insertLocked(rec KeyRecord) error {
	if rec.KeyID == "" {
		return fmt.Errorf("memstore: %w: empty key id", ErrInvalidArgument)
	}
	if _, ok := m.keys[rec.KeyID]; ok {
		return fmt.Errorf("memstore: key %q: %w", rec.KeyID, ErrAlreadyExists)
	}
	m.keys[rec.KeyID] = rec.Clone()
	return nil
}

// CreateBootstrapKey implements KeyStore.
func (m *MemStore) CreateBootstrapKey(ctx context.Context, rec KeyRecord) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, r := range m.keys {
		if r.Role == RoleAdmin && r.Active(rec.CreatedAt) {
			return fmt.Errorf("memstore: an active admin key exists: %w", ErrAlreadyExists)
		}
	}
	return m.insertLocked(rec)
}

// GetKey implements KeyStore.
func (m *MemStore) GetKey(ctx context.Context, keyID string) (KeyRecord, error) {
	if err := ctx.Err(); err != nil {
		return KeyRecord{}, err
	}
	m.mu.RLock()
	r, ok := m.keys[keyID]
	m.mu.RUnlock()
	if !ok {
		return KeyRecord{}, fmt.Errorf("memstore: key %q: %w", keyID, ErrNotFound)
	}
	return r.Clone(), nil
}

// ListKeys implements KeyStore.
func (m *MemStore) ListKeys(ctx context.Context, includeRevoked bool) ([]KeyRecord, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.RLock()
	out := make([]KeyRecord, 0, len(m.keys))
	for _, r := range m.keys {
		if includeRevoked || r.RevokedAt.IsZero() {
			out = append(out, r.Clone())
		}
	}
	m.mu.RUnlock()
	slices.SortFunc(out, func(a, b KeyRecord) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.KeyID, b.KeyID))
	})
	return out, nil
}

// update applies fn to the record of keyID under the write lock.
func (m *MemStore) update(ctx context.Context, keyID string, fn func(*KeyRecord)) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.keys[keyID]
	if !ok {
		return fmt.Errorf("memstore: key %q: %w", keyID, ErrNotFound)
	}
	fn(&r)
	m.keys[keyID] = r
	return nil
}

// RevokeKey implements KeyStore.
func (m *MemStore) RevokeKey(ctx context.Context, keyID string, at time.Time) error {
	return m.update(ctx, keyID, func(r *KeyRecord) {
		if r.RevokedAt.IsZero() {
			r.RevokedAt = at
		}
	})
}

// SetKeyExpiry implements KeyStore.
func (m *MemStore) SetKeyExpiry(ctx context.Context, keyID string, at time.Time) error {
	return m.update(ctx, keyID, func(r *KeyRecord) { r.ExpiresAt = at })
}

// TouchKey implements KeyStore.
func (m *MemStore) TouchKey(ctx context.Context, keyID string, at time.Time) error {
	return m.update(ctx, keyID, func(r *KeyRecord) {
		if at.After(r.LastUsedAt) {
			r.LastUsedAt = at
		}
	})
}

// ReplaceKey implements KeyStore.
func (m *MemStore) ReplaceKey(ctx context.Context, oldKeyID string, replacement KeyRecord, oldExpiresAt time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	old, ok := m.keys[oldKeyID]
	switch {
	case !ok:
		return fmt.Errorf("memstore: key %q: %w", oldKeyID, ErrNotFound)
	case !old.RevokedAt.IsZero():
		return fmt.Errorf("memstore: key %q is revoked: %w", oldKeyID, ErrFailedPrecondition)
	case old.ReplacedBy != "":
		return fmt.Errorf("memstore: key %q was already replaced by %q: %w", oldKeyID, old.ReplacedBy, ErrFailedPrecondition)
	}
	if err := m.insertLocked(replacement); err != nil {
		return err
	}
	old.ExpiresAt = oldExpiresAt
	old.ReplacedBy = replacement.KeyID
	m.keys[oldKeyID] = old
	return nil
}
