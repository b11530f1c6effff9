package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/dot-do/platform/internal/errkind"
	"github.com/dot-do/platform/services/db/store"
)

const apiKeyCols = `key_id, name, role, environments, secret_hash, created_at, created_by, expires_at, revoked_at, last_used_at, replaced_by`

// adminLock serializes the creation of admin keys with the bootstrap check.
const adminLock = "apikeys/admin"

func scanAPIKey(r interface{ Scan(...any) error }) (store.APIKey, error) {
	var (
		k                                store.APIKey
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

func (e *Engine) getAPIKey(ctx context.Context, q Queryer, keyID, lock string) (store.APIKey, error) {
	k, err := scanAPIKey(q.QueryRow(ctx, `SELECT `+apiKeyCols+` FROM api_keys WHERE key_id = ?`+lock, keyID))
	if errors.Is(err, ErrNoRows) {
		return k, fmt.Errorf("api key %q: %w", keyID, errkind.NotFound)
	}
	if err != nil {
		return k, fmt.Errorf("api key %q: %w", keyID, err)
	}
	return k, nil
}

// insertAPIKey inserts a normalized key, holding the admin lock for admin
// keys, and appends its store.ActionAPIKeyStored audit event in tx (op
// says how the key came to be). A taken key id is errkind.Exists.
func (e *Engine) insertAPIKey(ctx context.Context, tx Queryer, k store.APIKey, op string) error {
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
		return fmt.Errorf("api key %q: %w", k.KeyID, errkind.Exists)
	}
	ev, err := keyStoredEvent(k, op).Normalize(e.now())
	if err != nil {
		return err
	}
	if _, err := e.appendAuditTx(ctx, tx, ev); err != nil {
		return fmt.Errorf("audit api key %q: %w", k.KeyID, err)
	}
	return nil
}

// keyStoredEvent is the audit event of storing k by op.
func keyStoredEvent(k store.APIKey, op string) store.AuditEvent {
	envs := "all"
	if len(k.Environments) > 0 {
		envs = strings.Join(k.Environments, ",")
	}
	expires := "never"
	if !k.ExpiresAt.IsZero() {
		expires = k.ExpiresAt.UTC().Format(time.RFC3339)
	}
	return store.AuditEvent{
		Time: k.CreatedAt, Actor: k.CreatedBy, Action: store.ActionAPIKeyStored, Resource: "api_key/" + k.KeyID, Outcome: "success",
		Detail: map[string]string{"op": op, "key_id": k.KeyID, "name": k.Name, "role": string(k.Role), "environments": envs, "expires_at": expires},
	}
}

// CreateAPIKey implements store.APIKeys.
func (e *Engine) CreateAPIKey(ctx context.Context, k store.APIKey) (store.APIKey, error) {
	k, err := k.Normalize(e.now())
	if err != nil {
		return store.APIKey{}, err
	}
	if err := e.d.InTx(ctx, func(tx Queryer) error { return e.insertAPIKey(ctx, tx, k, "create") }); err != nil {
		return store.APIKey{}, fmt.Errorf("create api key: %w", err)
	}
	return k, nil
}

// CreateBootstrapAPIKey implements store.APIKeys.
func (e *Engine) CreateBootstrapAPIKey(ctx context.Context, k store.APIKey) (store.APIKey, error) {
	if k.Role == "" {
		k.Role = store.RoleAdmin
	}
	if k.Role != store.RoleAdmin {
		return store.APIKey{}, fmt.Errorf("bootstrap key must be an admin key, not %q: %w", k.Role, errkind.Invalid)
	}
	k.CreatedBy = store.BootstrapCreator
	k, err := k.Normalize(e.now())
	if err != nil {
		return store.APIKey{}, err
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
			return fmt.Errorf("%d active admin key(s) exist: %w", n, errkind.Exists)
		}
		return e.insertAPIKey(ctx, tx, k, "bootstrap")
	})
	if err != nil {
		return store.APIKey{}, fmt.Errorf("bootstrap api key: %w", err)
	}
	return k, nil
}

// RotateAPIKey implements store.APIKeys.
func (e *Engine) RotateAPIKey(ctx context.Context, oldKeyID string, newKey store.APIKey, graceUntil time.Time) (store.APIKey, store.APIKey, error) {
	now := e.now()
	newKey, err := newKey.Normalize(now)
	if err != nil {
		return store.APIKey{}, store.APIKey{}, err
	}
	if newKey.KeyID == oldKeyID {
		return store.APIKey{}, store.APIKey{}, fmt.Errorf("rotate api key %q onto itself: %w", oldKeyID, errkind.Invalid)
	}
	if graceUntil.IsZero() {
		graceUntil = now
	}
	graceUntil = store.Timestamp(graceUntil)
	var old store.APIKey
	err = e.d.InTx(ctx, func(tx Queryer) error {
		var err error
		if old, err = e.getAPIKey(ctx, tx, oldKeyID, e.dialect.ForUpdate); err != nil {
			return err
		}
		if !old.RevokedAt.IsZero() {
			return fmt.Errorf("api key %q is revoked: %w", oldKeyID, errkind.Precondition)
		}
		if old.ReplacedBy != "" {
			return fmt.Errorf("api key %q was already replaced by %q: %w", oldKeyID, old.ReplacedBy, errkind.Precondition)
		}
		if err := e.insertAPIKey(ctx, tx, newKey, "rotate"); err != nil {
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
		return store.APIKey{}, store.APIKey{}, fmt.Errorf("rotate api key: %w", err)
	}
	return old, newKey, nil
}

// GetAPIKey implements store.APIKeys.
func (e *Engine) GetAPIKey(ctx context.Context, keyID string) (store.APIKey, error) {
	return e.getAPIKey(ctx, e.d.Reader(), keyID, "")
}

// ListAPIKeys implements store.APIKeys.
func (e *Engine) ListAPIKeys(ctx context.Context, includeRevoked bool) ([]store.APIKey, error) {
	q := `SELECT ` + apiKeyCols + ` FROM api_keys`
	if !includeRevoked {
		q += ` WHERE revoked_at IS NULL`
	}
	rows, err := e.d.Reader().Query(ctx, q+` ORDER BY created_at, key_id`)
	if err != nil {
		return nil, fmt.Errorf("list api keys: %w", err)
	}
	defer rows.Close()
	var ks []store.APIKey
	for rows.Next() {
		k, err := scanAPIKey(rows)
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

// updateAPIKey runs a single-row UPDATE ... SET set WHERE key_id = ? AND
// revoked_at IS NULL RETURNING. For a revoked key it returns the record
// unchanged when revokedOK is set, and errkind.Precondition otherwise; a
// missing key is errkind.NotFound.
func (e *Engine) updateAPIKey(ctx context.Context, keyID, op, set string, revokedOK bool, args ...any) (store.APIKey, error) {
	var k store.APIKey
	err := e.d.InTx(ctx, func(tx Queryer) error {
		var err error
		k, err = scanAPIKey(tx.QueryRow(ctx, `UPDATE api_keys SET `+set+` WHERE key_id = ? AND revoked_at IS NULL RETURNING `+apiKeyCols,
			append(args, keyID)...))
		if errors.Is(err, ErrNoRows) {
			if k, err = e.getAPIKey(ctx, tx, keyID, ""); err != nil || revokedOK {
				return err
			}
			return fmt.Errorf("api key %q is revoked: %w", keyID, errkind.Precondition)
		}
		return err
	})
	if err != nil {
		return store.APIKey{}, fmt.Errorf("%s: %w", op, err)
	}
	return k, nil
}

// RevokeAPIKey implements store.APIKeys.
func (e *Engine) RevokeAPIKey(ctx context.Context, keyID string, at time.Time) (store.APIKey, error) {
	if at.IsZero() {
		at = e.now()
	}
	return e.updateAPIKey(ctx, keyID, "revoke api key", `revoked_at = ?`, true, micros(store.Timestamp(at)))
}

// SetAPIKeyExpiry implements store.APIKeys.
func (e *Engine) SetAPIKeyExpiry(ctx context.Context, keyID string, at time.Time) (store.APIKey, error) {
	return e.updateAPIKey(ctx, keyID, "set api key expiry", `expires_at = ?`, false, nullMicros(store.Timestamp(at)))
}

// TouchAPIKey implements store.APIKeys.
func (e *Engine) TouchAPIKey(ctx context.Context, keyID string, at time.Time) error {
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
		if _, err := e.GetAPIKey(ctx, keyID); err != nil {
			return fmt.Errorf("touch api key: %w", err)
		}
	}
	return nil
}
