package deploy

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/dot-do/platform/services/auth/apikey"
	"github.com/dot-do/platform/services/auth/authz"
	"github.com/dot-do/platform/services/db/store"
)

// KeyManager manages API keys on behalf of an operator whose key Admin has
// authorized. It must enforce the auth policy for the operator (keys.manage,
// and covering the environments of the keys it creates or manages), as
// the auth service does. The platform implements it over the AuthService
// client (authremote), forwarding op.Token as the operator's bearer key;
// tests use deploytest.LocalKeyManager over an in-process auth service.
type KeyManager interface {
	// CreateKey creates the key spec describes.
	CreateKey(ctx context.Context, op Operator, spec KeySpec) (apikey.Key, store.APIKey, error)
	// ListKeys lists the keys the operator covers, oldest first.
	ListKeys(ctx context.Context, op Operator, includeRevoked bool) ([]store.APIKey, error)
	// RevokeKey revokes keyID at once.
	RevokeKey(ctx context.Context, op Operator, keyID string) (store.APIKey, error)
	// RotateKey replaces keyID with a new key; the old one works for grace
	// more (the default grace when 0).
	RotateKey(ctx context.Context, op Operator, keyID string, grace time.Duration) (RotatedKey, error)
}

// Operator is who a KeyManager acts for: the caller (whose bearer token a
// remote KeyManager forwards) and the principal Admin authorized it as. Like
// Caller, it never prints the token.
type Operator struct {
	Caller
	// Principal is the operator's authorized key.
	Principal authz.Principal
}

// RotatedKey is the outcome of a rotation.
type RotatedKey struct {
	// Key is the new key; its Token is shown once.
	Key apikey.Key
	// Record describes the new key.
	Record store.APIKey
	// Previous describes the old key, expiring at the end of the grace
	// period.
	Previous store.APIKey
}

// Admin is the operators' side of the Deploy API: API keys and the audit
// log. Every call checks the caller's key (keys.manage or audit.read) and
// is audited; an action whose audit event cannot be written fails.
type Admin struct {
	authz   Authorizer
	keys    KeyManager
	audit   store.Audit
	auditor auditor
}

// NewAdmin returns an Admin checking callers with authz, managing keys with
// keys and reading and writing the audit log audit.
func NewAdmin(authz Authorizer, keys KeyManager, audit store.Audit, opts ...Option) *Admin {
	o := buildOptions(opts)
	return &Admin{authz: authz, keys: keys, audit: audit, auditor: auditor{audit: audit, log: o.logger}}
}

// KeySpec describes a key to create.
type KeySpec struct {
	// Name says what the key is for.
	Name string
	// Role is the key's role.
	Role store.Role
	// Environments limits the key; all when empty.
	Environments []string
	// TTL is how long the key works; forever when 0.
	TTL time.Duration
}

// CreateKey creates a key. The returned Key's Token is the secret, to be
// shown once. If the audit event cannot be written the new key is revoked
// and the call fails.
func (a *Admin) CreateKey(ctx context.Context, c Caller, spec KeySpec) (apikey.Key, store.APIKey, error) {
	p, err := a.authz.Authorize(ctx, c.Token, authz.PermKeysManage, "", c.Client)
	if err != nil {
		return apikey.Key{}, store.APIKey{}, err
	}
	op := Operator{Caller: c, Principal: p}
	k, rec, err := a.keys.CreateKey(ctx, op, spec)
	if err != nil {
		return apikey.Key{}, store.APIKey{}, err
	}
	if err := a.auditor.append(ctx, event(ctx, c, p, ActionKeyCreate, keyResource(rec.KeyID), OutcomeSuccess, keyDetail(rec))); err != nil {
		a.undo(ctx, op, rec.KeyID)
		return apikey.Key{}, store.APIKey{}, err
	}
	return k, rec, nil
}

// ListKeys lists keys, without secrets.
func (a *Admin) ListKeys(ctx context.Context, c Caller, includeRevoked bool) ([]store.APIKey, error) {
	p, err := a.authz.Authorize(ctx, c.Token, authz.PermKeysManage, "", c.Client)
	if err != nil {
		return nil, err
	}
	recs, err := a.keys.ListKeys(ctx, Operator{Caller: c, Principal: p}, includeRevoked)
	if err != nil {
		return nil, err
	}
	detail := map[string]string{"include_revoked": strconv.FormatBool(includeRevoked), "count": strconv.Itoa(len(recs))}
	if err := a.auditor.append(ctx, event(ctx, c, p, ActionKeyList, "keys", OutcomeSuccess, detail)); err != nil {
		return nil, err
	}
	return recs, nil
}

// RevokeKey revokes keyID at once.
func (a *Admin) RevokeKey(ctx context.Context, c Caller, keyID string) (store.APIKey, error) {
	p, err := a.authz.Authorize(ctx, c.Token, authz.PermKeysManage, "", c.Client)
	if err != nil {
		return store.APIKey{}, err
	}
	rec, err := a.keys.RevokeKey(ctx, Operator{Caller: c, Principal: p}, keyID)
	if err != nil {
		return store.APIKey{}, err
	}
	if err := a.auditor.append(ctx, event(ctx, c, p, ActionKeyRevoke, keyResource(keyID), OutcomeSuccess, keyDetail(rec))); err != nil {
		// The revocation stands: undoing it would be the unsafe choice.
		return store.APIKey{}, err
	}
	return rec, nil
}

// RotateKey replaces keyID with a new key; the old one keeps working for
// grace. If the audit event cannot be written the new key is revoked and
// the call fails.
func (a *Admin) RotateKey(ctx context.Context, c Caller, keyID string, grace time.Duration) (RotatedKey, error) {
	p, err := a.authz.Authorize(ctx, c.Token, authz.PermKeysManage, "", c.Client)
	if err != nil {
		return RotatedKey{}, err
	}
	op := Operator{Caller: c, Principal: p}
	r, err := a.keys.RotateKey(ctx, op, keyID, grace)
	if err != nil {
		return RotatedKey{}, err
	}
	detail := keyDetail(r.Record)
	detail["previous_key_id"] = keyID
	if !r.Previous.ExpiresAt.IsZero() {
		detail["previous_expires_at"] = r.Previous.ExpiresAt.UTC().Format(time.RFC3339)
	}
	if err := a.auditor.append(ctx, event(ctx, c, p, ActionKeyRotate, keyResource(keyID), OutcomeSuccess, detail)); err != nil {
		a.undo(ctx, op, r.Record.KeyID)
		return RotatedKey{}, err
	}
	return r, nil
}

// undo revokes a key created by an action that could not be audited.
func (a *Admin) undo(ctx context.Context, op Operator, keyID string) {
	if _, err := a.keys.RevokeKey(context.WithoutCancel(ctx), op, keyID); err != nil {
		a.auditor.log.ErrorContext(ctx, "revoke a key whose creation could not be audited", "key_id", keyID, "err", err.Error())
	}
}

// ListAudit returns one page of audit events, newest first, and the next
// page's token. The caller needs audit.read.
func (a *Admin) ListAudit(ctx context.Context, c Caller, f store.AuditFilter) ([]store.AuditEvent, string, error) {
	p, err := a.authz.Authorize(ctx, c.Token, authz.PermAuditRead, "", c.Client)
	if err != nil {
		return nil, "", err
	}
	events, next, err := a.audit.ListAudit(ctx, f)
	if err != nil {
		return nil, "", err
	}
	detail := map[string]string{"actor": f.Actor, "action": f.Action, "resource": f.Resource}
	if err := a.auditor.append(ctx, event(ctx, c, p, ActionAuditList, "audit", OutcomeSuccess, detail)); err != nil {
		return nil, "", err
	}
	return events, next, nil
}

// VerifyAudit walks the audit log's hash chain and, given a head exported
// earlier (AuditHead), checks that the log still holds it. With
// fromCheckpoint it resumes after the newest verified checkpoint instead
// of at event 1 (see store.AuditVerifyOptions). The caller needs
// audit.read.
func (a *Admin) VerifyAudit(ctx context.Context, c Caller, head *store.AuditHead, fromCheckpoint bool) (store.VerifyResult, error) {
	p, err := a.authz.Authorize(ctx, c.Token, authz.PermAuditRead, "", c.Client)
	if err != nil {
		return store.VerifyResult{}, err
	}
	res, err := store.VerifyAuditLog(ctx, a.audit, head, fromCheckpoint)
	if err != nil {
		return store.VerifyResult{}, err
	}
	detail := map[string]string{"ok": strconv.FormatBool(res.OK), "checked": strconv.FormatInt(res.Checked, 10), "keyed": strconv.FormatBool(res.Keyed)}
	if head != nil {
		detail["head_seq"] = strconv.FormatInt(head.Seq, 10)
	}
	if res.FromSeq > 0 {
		detail["from_checkpoint_seq"] = strconv.FormatInt(res.FromSeq, 10)
	}
	if !res.OK {
		detail["first_broken_seq"] = strconv.FormatInt(res.FirstBrokenSeq, 10)
	}
	if err := a.auditor.append(ctx, event(ctx, c, p, ActionAuditVerify, "audit", OutcomeSuccess, detail)); err != nil {
		return store.VerifyResult{}, err
	}
	return res, nil
}

// AuditHead returns the last event of the audit log (seq and MAC), to be
// kept outside the database and checked later with VerifyAudit. The
// caller needs audit.read.
func (a *Admin) AuditHead(ctx context.Context, c Caller) (store.AuditHead, error) {
	p, err := a.authz.Authorize(ctx, c.Token, authz.PermAuditRead, "", c.Client)
	if err != nil {
		return store.AuditHead{}, err
	}
	// Audit the export first, then read the head: the exported head is
	// then at least as new as the event recording its export.
	if err := a.auditor.append(ctx, event(ctx, c, p, ActionAuditHead, "audit", OutcomeSuccess, nil)); err != nil {
		return store.AuditHead{}, err
	}
	return a.audit.AuditHead(ctx)
}

func keyResource(id string) string { return "apikey/" + id }

func keyDetail(r store.APIKey) map[string]string {
	m := map[string]string{"key_id": r.KeyID, "name": r.Name, "role": string(r.Role), "environments": strings.Join(r.Environments, ",")}
	if !r.ExpiresAt.IsZero() {
		m["expires_at"] = r.ExpiresAt.UTC().Format(time.RFC3339)
	}
	return m
}
