// Package dbstore adapts the platform's persistence layer (store.ApiKeys and
// store.Audit, in process or over the DBService) to the auth service's
// KeyStore and AuditSink.
package dbstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/dot-do/platform/services/auth"
	"github.com/dot-do/platform/services/db/store"
)

// Keys is an auth.KeyStore over store.ApiKeys.
type Keys struct {
	s store.ApiKeys
}

var _ auth.KeyStore = (*Keys)(nil)

// NewKeys returns a KeyStore that keeps its records in s.
func NewKeys(s store.ApiKeys) *Keys { return &Keys{s: s} }

// mapErr translates the store's sentinels to the auth package's.
func mapErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, store.ErrNotFound):
		return fmt.Errorf("%w: %w", auth.ErrNotFound, err)
	case errors.Is(err, store.ErrAlreadyExists):
		return fmt.Errorf("%w: %w", auth.ErrAlreadyExists, err)
	case errors.Is(err, store.ErrFailedPrecondition):
		return fmt.Errorf("%w: %w", auth.ErrFailedPrecondition, err)
	case errors.Is(err, store.ErrInvalidArgument):
		return fmt.Errorf("%w: %w", auth.ErrInvalidArgument, err)
	}
	return err
}

func toStore(r auth.KeyRecord) store.ApiKey {
	return store.ApiKey{
		KeyID:        r.KeyID,
		Name:         r.Name,
		Role:         store.Role(r.Role),
		Environments: r.Environments,
		SecretHash:   r.SecretHash,
		CreatedAt:    r.CreatedAt,
		CreatedBy:    r.CreatedBy,
		ExpiresAt:    r.ExpiresAt,
		RevokedAt:    r.RevokedAt,
		LastUsedAt:   r.LastUsedAt,
		ReplacedBy:   r.ReplacedBy,
	}
}

func fromStore(k store.ApiKey) auth.KeyRecord {
	return auth.KeyRecord{
		KeyID:        k.KeyID,
		Name:         k.Name,
		Role:         auth.Role(k.Role),
		Environments: k.Environments,
		SecretHash:   k.SecretHash,
		CreatedAt:    k.CreatedAt,
		CreatedBy:    k.CreatedBy,
		ExpiresAt:    k.ExpiresAt,
		RevokedAt:    k.RevokedAt,
		LastUsedAt:   k.LastUsedAt,
		ReplacedBy:   k.ReplacedBy,
	}
}

// CreateKey implements auth.KeyStore.
func (k *Keys) CreateKey(ctx context.Context, rec auth.KeyRecord) error {
	_, err := k.s.CreateApiKey(ctx, toStore(rec))
	return mapErr(err)
}

// CreateBootstrapKey implements auth.KeyStore.
func (k *Keys) CreateBootstrapKey(ctx context.Context, rec auth.KeyRecord) error {
	_, err := k.s.CreateBootstrapApiKey(ctx, toStore(rec))
	return mapErr(err)
}

// GetKey implements auth.KeyStore.
func (k *Keys) GetKey(ctx context.Context, keyID string) (auth.KeyRecord, error) {
	rec, err := k.s.GetApiKey(ctx, keyID)
	if err != nil {
		return auth.KeyRecord{}, mapErr(err)
	}
	return fromStore(rec), nil
}

// ListKeys implements auth.KeyStore.
func (k *Keys) ListKeys(ctx context.Context, includeRevoked bool) ([]auth.KeyRecord, error) {
	recs, err := k.s.ListApiKeys(ctx, includeRevoked)
	if err != nil {
		return nil, mapErr(err)
	}
	out := make([]auth.KeyRecord, len(recs))
	for i, r := range recs {
		out[i] = fromStore(r)
	}
	return out, nil
}

// RevokeKey implements auth.KeyStore. Revoking a revoked key is a no-op
// that keeps the first revocation time, as the KeyStore contract asks.
func (k *Keys) RevokeKey(ctx context.Context, keyID string, at time.Time) error {
	_, err := k.s.RevokeApiKey(ctx, keyID, at)
	if errors.Is(err, store.ErrFailedPrecondition) {
		rec, gerr := k.s.GetApiKey(ctx, keyID)
		if gerr == nil && !rec.RevokedAt.IsZero() {
			return nil
		}
	}
	return mapErr(err)
}

// SetKeyExpiry implements auth.KeyStore.
func (k *Keys) SetKeyExpiry(ctx context.Context, keyID string, at time.Time) error {
	_, err := k.s.SetApiKeyExpiry(ctx, keyID, at)
	return mapErr(err)
}

// TouchKey implements auth.KeyStore.
func (k *Keys) TouchKey(ctx context.Context, keyID string, at time.Time) error {
	return mapErr(k.s.TouchApiKey(ctx, keyID, at))
}

// ReplaceKey implements auth.KeyStore with the store's atomic rotation.
func (k *Keys) ReplaceKey(ctx context.Context, oldKeyID string, replacement auth.KeyRecord, oldExpiresAt time.Time) error {
	_, _, err := k.s.RotateApiKey(ctx, oldKeyID, toStore(replacement), oldExpiresAt)
	return mapErr(err)
}

// Audit is an auth.AuditSink that appends to the audit trail.
type Audit struct {
	s store.Audit
}

var _ auth.AuditSink = (*Audit)(nil)

// NewAudit returns an AuditSink that appends to s.
func NewAudit(s store.Audit) *Audit { return &Audit{s: s} }

// Record implements auth.AuditSink. The event's reason and client go into
// the details; the resource is the key concerned.
func (a *Audit) Record(ctx context.Context, ev auth.Event) error {
	actor := ev.Actor
	if actor == "" {
		actor = ev.KeyID
	}
	if actor == "" {
		actor = "anonymous"
	}
	detail := map[string]string{}
	if ev.Client != "" {
		detail["client"] = ev.Client
	}
	if ev.Reason != "" {
		detail["reason"] = ev.Reason
	}
	resource := ""
	if ev.KeyID != "" {
		resource = "api_key/" + ev.KeyID
	}
	_, err := a.s.AppendAudit(ctx, store.AuditEvent{
		Time:     ev.Time,
		Actor:    actor,
		Action:   ev.Action,
		Resource: resource,
		Outcome:  ev.Outcome,
		Detail:   detail,
	})
	return err
}
