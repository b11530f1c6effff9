package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/dot-do/platform/services/db/store"
)

const apiKeyCols = `key_id, name, role, environments, secret_hash, created_at, created_by, expires_at, revoked_at, last_used_at, replaced_by`

// adminLock serializes the creation of admin keys with the bootstrap check.
const adminLock = "apikeys/admin"

func scanApiKey(r interface{ Scan(...any) error }) (store.ApiKey, error) {
	var (
		k                                store.ApiKey
		role, envs                       string
		createdAt                        int64
		expiresAt, revokedAt, lastUsedAt *int64
	)
	if err := r.Scan(&k.KeyID, &k.Name, &role, &envs, &k.SecretHash, &createdAt, &k.CreatedBy,
		&expiresAt, &revokedAt, &lastUsedAt, &k.ReplacedBy); err != nil {
		return k, err
	}
	k.Role = store.Role(role)
	k.CreatedAt = fromMicros(createdAt)
	k.ExpiresAt, k.RevokedAt, k.LastUsedAt = fromNullMicros(expiresAt), fromNullMicros(revokedAt), fromNullMicros(lastUsedAt)
	var err error
	k.Environments, err = unmarshalStrings(envs, fmt.Sprintf("api key %q environments", k.KeyID))
	return k, err
}

func (e *Engine) getApiKey(ctx context.Context, q Queryer, keyID, lock string) (store.ApiKey, error) {
	k, err := scanApiKey(q.QueryRow(ctx, `SELECT `+apiKeyCols+` FROM api_keys WHERE key_id = ?`+lock, keyID))
	if errors.Is(err, ErrNoRows) {
		return k, fmt.Errorf("api key %q: %w", keyID, store.ErrNotFound)
	}
	if err != nil {
		return k, fmt.Errorf("api key %q: %w", keyID, err)
	}
	return k, nil
}

// insertApiKey inserts a normalized key, holding the admin lock for admin
// keys. A taken key id is store.ErrAlreadyExists.
func (e *Engine) insertApiKey(ctx context.Context, tx Queryer, k store.ApiKey) error {
	if k.Role == store.RoleAdmin {
		if err := e.d.LockTx(ctx, tx, adminLock); err != nil {
			return err
		}
	}
	n, err := tx.Exec(ctx, `INSERT INTO api_keys (`+apiKeyCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL, '')
ON CONFLICT (key_id) DO NOTHING`,
		k.KeyID, k.Name, string(k.Role), stringsJSON(k.Environments), k.SecretHash, micros(k.CreatedAt), k.CreatedBy,
		nullMicros(k.ExpiresAt))
	if err != nil {
		return fmt.Errorf("insert api key %q: %w", k.KeyID, err)
	}
	if n == 0 {
		return fmt.Errorf("api key %q: %w", k.KeyID, store.ErrAlreadyExists)
	}
	return nil
}

// CreateApiKey implements store.ApiKeys.
func (e *Engine) CreateApiKey(ctx context.Context, k store.ApiKey) (store.ApiKey, error) {
	k, err := k.Normalize(e.now())
	if err != nil {
		return store.ApiKey{}, err
	}
	if err := e.d.InTx(ctx, func(tx Queryer) error { return e.insertApiKey(ctx, tx, k) }); err != nil {
		return store.ApiKey{}, fmt.Errorf("create api key: %w", err)
	}
	return k, nil
}

// CreateBootstrapApiKey implements store.ApiKeys.
func (e *Engine) CreateBootstrapApiKey(ctx context.Context, k store.ApiKey) (store.ApiKey, error) {
	if k.Role == "" {
		k.Role = store.RoleAdmin
	}
	if k.Role != store.RoleAdmin {
		return store.ApiKey{}, fmt.Errorf("bootstrap key must be an admin key, not %q: %w", k.Role, store.ErrInvalidArgument)
	}
	k.CreatedBy = store.BootstrapCreator
	k, err := k.Normalize(e.now())
	if err != nil {
		return store.ApiKey{}, err
	}
	err = e.d.InTx(ctx, func(tx Queryer) error {
		// Take the admin lock before counting so that two bootstraps (or a
		// bootstrap and an admin creation) cannot both see zero admins.
		if err := e.d.LockTx(ctx, tx, adminLock); err != nil {
			return err
		}
		var n int64
		// An admin key counts while it is active: not revoked and not
		// expired at the time of the bootstrap.
		if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM api_keys WHERE role = 'admin' AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?)`,
			k.CreatedAt.UnixMicro()).Scan(&n); err != nil {
			return fmt.Errorf("count admin keys: %w", err)
		}
		if n > 0 {
			return fmt.Errorf("%d active admin key(s) exist: %w", n, store.ErrAlreadyExists)
		}
		return e.insertApiKey(ctx, tx, k)
	})
	if err != nil {
		return store.ApiKey{}, fmt.Errorf("bootstrap api key: %w", err)
	}
	return k, nil
}

// RotateApiKey implements store.ApiKeys.
func (e *Engine) RotateApiKey(ctx context.Context, oldKeyID string, newKey store.ApiKey, graceUntil time.Time) (store.ApiKey, store.ApiKey, error) {
	now := e.now()
	newKey, err := newKey.Normalize(now)
	if err != nil {
		return store.ApiKey{}, store.ApiKey{}, err
	}
	if newKey.KeyID == oldKeyID {
		return store.ApiKey{}, store.ApiKey{}, fmt.Errorf("rotate api key %q onto itself: %w", oldKeyID, store.ErrInvalidArgument)
	}
	if graceUntil.IsZero() {
		graceUntil = now
	}
	graceUntil = store.Timestamp(graceUntil)
	var old store.ApiKey
	err = e.d.InTx(ctx, func(tx Queryer) error {
		var err error
		if old, err = e.getApiKey(ctx, tx, oldKeyID, e.dialect.ForUpdate); err != nil {
			return err
		}
		if !old.RevokedAt.IsZero() {
			return fmt.Errorf("api key %q is revoked: %w", oldKeyID, store.ErrFailedPrecondition)
		}
		if old.ReplacedBy != "" {
			return fmt.Errorf("api key %q was already replaced by %q: %w", oldKeyID, old.ReplacedBy, store.ErrFailedPrecondition)
		}
		if err := e.insertApiKey(ctx, tx, newKey); err != nil {
			return err
		}
		if old.ExpiresAt.IsZero() || graceUntil.Before(old.ExpiresAt) {
			old.ExpiresAt = graceUntil
		}
		old.ReplacedBy = newKey.KeyID
		_, err = tx.Exec(ctx, `UPDATE api_keys SET replaced_by = ?, expires_at = ? WHERE key_id = ?`,
			old.ReplacedBy, micros(old.ExpiresAt), oldKeyID)
		return err
	})
	if err != nil {
		return store.ApiKey{}, store.ApiKey{}, fmt.Errorf("rotate api key: %w", err)
	}
	return old, newKey, nil
}

// GetApiKey implements store.ApiKeys.
func (e *Engine) GetApiKey(ctx context.Context, keyID string) (store.ApiKey, error) {
	return e.getApiKey(ctx, e.d.Reader(), keyID, "")
}

// ListApiKeys implements store.ApiKeys.
func (e *Engine) ListApiKeys(ctx context.Context, includeRevoked bool) ([]store.ApiKey, error) {
	q := `SELECT ` + apiKeyCols + ` FROM api_keys`
	if !includeRevoked {
		q += ` WHERE revoked_at IS NULL`
	}
	rows, err := e.d.Reader().Query(ctx, q+` ORDER BY created_at, key_id`)
	if err != nil {
		return nil, fmt.Errorf("list api keys: %w", err)
	}
	defer rows.Close()
	var ks []store.ApiKey
	for rows.Next() {
		k, err := scanApiKey(rows)
		if err != nil {
			return nil, fmt.Errorf("list api keys: %w", err)
		}
		ks = append(ks, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list api keys: %w", err)
	}
	return ks, nil
}

// updateApiKey runs a single-row UPDATE ... SET set WHERE guard RETURNING.
// When the guard (the key is not revoked) fails it reports
// store.ErrFailedPrecondition, or store.ErrNotFound for a missing key.
func (e *Engine) updateApiKey(ctx context.Context, keyID, op, set, guard string, args ...any) (store.ApiKey, error) {
	var k store.ApiKey
	err := e.d.InTx(ctx, func(tx Queryer) error {
		var err error
		k, err = scanApiKey(tx.QueryRow(ctx, `UPDATE api_keys SET `+set+` WHERE key_id = ? AND `+guard+` RETURNING `+apiKeyCols,
			append(args, keyID)...))
		if errors.Is(err, ErrNoRows) {
			if _, err := e.getApiKey(ctx, tx, keyID, ""); err != nil {
				return err
			}
			return fmt.Errorf("api key %q is revoked: %w", keyID, store.ErrFailedPrecondition)
		}
		return err
	})
	if err != nil {
		return store.ApiKey{}, fmt.Errorf("%s: %w", op, err)
	}
	return k, nil
}

// RevokeApiKey implements store.ApiKeys.
func (e *Engine) RevokeApiKey(ctx context.Context, keyID string, at time.Time) (store.ApiKey, error) {
	if at.IsZero() {
		at = e.now()
	}
	return e.updateApiKey(ctx, keyID, "revoke api key", `revoked_at = ?`, `revoked_at IS NULL`, micros(store.Timestamp(at)))
}

// SetApiKeyExpiry implements store.ApiKeys.
func (e *Engine) SetApiKeyExpiry(ctx context.Context, keyID string, at time.Time) (store.ApiKey, error) {
	return e.updateApiKey(ctx, keyID, "set api key expiry", `expires_at = ?`, `revoked_at IS NULL`, nullMicros(store.Timestamp(at)))
}

// TouchApiKey implements store.ApiKeys.
func (e *Engine) TouchApiKey(ctx context.Context, keyID string, at time.Time) error {
	if at.IsZero() {
		at = e.now()
	}
	us := micros(store.Timestamp(at))
	var n int64
	err := e.d.InTx(ctx, func(tx Queryer) error {
		var err error
		n, err = tx.Exec(ctx, `UPDATE api_keys SET last_used_at = ? WHERE key_id = ? AND (last_used_at IS NULL OR last_used_at < ?)`,
			us, keyID, us)
		return err
	})
	if err != nil {
		return fmt.Errorf("touch api key %q: %w", keyID, err)
	}
	if n == 0 {
		if _, err := e.GetApiKey(ctx, keyID); err != nil {
			return fmt.Errorf("touch api key: %w", err)
		}
	}
	return nil
}
