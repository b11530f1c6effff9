package auth

import (
	"context"
	"time"

	"github.com/dot-do/platform/services/db/store"
)

// Store is the persistence the auth service needs: API key records and the
// audit log. A store.Store satisfies it in process (SQLite, PostgreSQL); the
// platform passes the DBService client (services/db/remote). The key
// records are store.APIKey and their contract is store.APIKeys, checked by
// the one conformance suite in services/db/store/storetest.
type Store interface {
	store.APIKeys
	// AppendAudit appends an event to the hash-chained audit log.
	AppendAudit(ctx context.Context, e store.AuditEvent) (store.AuditEvent, error)
}

// Audit actions recorded by the Service.
const (
	// ActionAuthenticate is a failed authentication (Outcome denied) or a
	// client entering cool-down (Outcome throttled).
	ActionAuthenticate = "auth.authenticate"
	// ActionAuthorize is a permission denial of an authenticated key.
	ActionAuthorize = "auth.authorize"
	// ActionKeyCreate is a key creation.
	ActionKeyCreate = "keys.create"
	// ActionKeyBootstrap is the creation of the bootstrap admin key.
	ActionKeyBootstrap = "keys.bootstrap"
	// ActionKeyRevoke is a key revocation.
	ActionKeyRevoke = "keys.revoke"
	// ActionKeyRotate is a key rotation (KeyID is the old key; Reason names
	// the new one).
	ActionKeyRotate = "keys.rotate"
	// ActionKeySetExpiry is a change of a key's expiry.
	ActionKeySetExpiry = "keys.set_expiry"
)

// Audit outcomes.
const (
	// OutcomeSuccess marks a completed key-management operation.
	OutcomeSuccess = "success"
	// OutcomeDenied marks a failed authentication or authorization.
	OutcomeDenied = "denied"
	// OutcomeThrottled marks a client being put into cool-down.
	OutcomeThrottled = "throttled"
)

// Event is an audit record emitted by the Service. It never contains a token,
// a secret or a secret hash.
type Event struct {
	// Time is when the event happened (the Service clock).
	Time time.Time
	// Action is one of the Action* constants.
	Action string
	// Outcome is one of the Outcome* constants.
	Outcome string
	// KeyID is the key concerned, if known (the key id parsed from a
	// well-formed token, or the managed key). Empty for missing or
	// malformed tokens.
	KeyID string
	// Actor is the key id of the principal that performed a key-management
	// operation ("bootstrap" for Bootstrap); empty for authentication events.
	Actor string
	// Client is the caller-supplied client identifier (remote IP).
	Client string
	// Reason is an internal explanation, e.g. "expired" or "unknown key id".
	// It is for operators only and must never be returned to API callers.
	Reason string
}

// auditEvent is ev as the audit log stores it: the actor is the acting key
// (or the key concerned, or "anonymous"), the resource the key concerned,
// and the reason and client go into the details.
func (ev Event) auditEvent() store.AuditEvent {
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
	return store.AuditEvent{Time: ev.Time, Actor: actor, Action: ev.Action, Resource: resource, Outcome: ev.Outcome, Detail: detail}
}
