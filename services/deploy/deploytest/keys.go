package deploytest

import (
	"context"
	"time"

	"github.com/dot-do/platform/services/auth"
	"github.com/dot-do/platform/services/auth/apikey"
	"github.com/dot-do/platform/services/db/store"
	"github.com/dot-do/platform/services/deploy"
)

// LocalKeyManager returns a KeyManager over an in-process auth service,
// which acts as op.Principal.
func LocalKeyManager(svc *auth.Service) deploy.KeyManager { return localKeys{svc} }

type localKeys struct{ svc *auth.Service }

// CreateKey implements deploy.KeyManager.
func (l localKeys) CreateKey(ctx context.Context, op deploy.Operator, spec deploy.KeySpec) (apikey.Key, store.APIKey, error) {
	return l.svc.CreateKey(ctx, op.Principal, spec.Name, spec.Role, spec.Environments, spec.TTL)
}

// ListKeys implements deploy.KeyManager.
func (l localKeys) ListKeys(ctx context.Context, op deploy.Operator, includeRevoked bool) ([]store.APIKey, error) {
	return l.svc.ListKeys(ctx, op.Principal, includeRevoked)
}

// RevokeKey implements deploy.KeyManager.
func (l localKeys) RevokeKey(ctx context.Context, op deploy.Operator, keyID string) (store.APIKey, error) {
	return l.svc.RevokeKey(ctx, op.Principal, keyID)
}

// RotateKey implements deploy.KeyManager.
func (l localKeys) RotateKey(ctx context.Context, op deploy.Operator, keyID string, grace time.Duration) (deploy.RotatedKey, error) {
	k, rec, prev, err := l.svc.RotateKey(ctx, op.Principal, keyID, grace)
	if err != nil {
		return deploy.RotatedKey{}, err
	}
	return deploy.RotatedKey{Key: k, Record: rec, Previous: prev}, nil
}
