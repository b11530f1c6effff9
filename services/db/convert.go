// Package db is the DBService: the platform's one persistence layer, served
// over Connect on top of a store.Store (SQLite or PostgreSQL). This file
// converts between the store's domain types and their protobuf messages, in
// both directions, for the handler here and for the remote client in
// services/db/remote.
package db

import (
	dbv1 "github.com/dot-do/platform/gen/go/dotdo/db/v1"
	"github.com/dot-do/platform/internal/pbtime"
	"github.com/dot-do/platform/services/db/store"
)

var statusToProto = map[store.Status]dbv1.DeploymentStatus{
	store.StatusPending:    dbv1.DeploymentStatus_DEPLOYMENT_STATUS_PENDING,
	store.StatusLive:       dbv1.DeploymentStatus_DEPLOYMENT_STATUS_LIVE,
	store.StatusFailed:     dbv1.DeploymentStatus_DEPLOYMENT_STATUS_FAILED,
	store.StatusSuperseded: dbv1.DeploymentStatus_DEPLOYMENT_STATUS_SUPERSEDED,
}

var kindToProto = map[store.Kind]dbv1.DeploymentKind{
	store.KindDeploy:   dbv1.DeploymentKind_DEPLOYMENT_KIND_DEPLOY,
	store.KindRollback: dbv1.DeploymentKind_DEPLOYMENT_KIND_ROLLBACK,
}

// StatusToProto converts a store status; UNSPECIFIED for "".
func StatusToProto(s store.Status) dbv1.DeploymentStatus { return statusToProto[s] }

// StatusFromProto converts a proto status; "" for UNSPECIFIED.
func StatusFromProto(s dbv1.DeploymentStatus) store.Status { return reverse(statusToProto, s) }

// KindToProto converts a store kind.
func KindToProto(k store.Kind) dbv1.DeploymentKind { return kindToProto[k] }

// KindFromProto converts a proto kind; "" for UNSPECIFIED.
func KindFromProto(k dbv1.DeploymentKind) store.Kind { return reverse(kindToProto, k) }

func reverse[K, V comparable](m map[K]V, v V) K {
	for k, mv := range m {
		if mv == v {
			return k
		}
	}
	var zero K
	return zero
}

// DeploymentToProto converts a stored deployment.
func DeploymentToProto(d store.Deployment) *dbv1.Deployment {
	return &dbv1.Deployment{
		Id:                d.ID,
		Service:           d.Service,
		Environment:       d.Environment,
		Namespace:         d.Namespace,
		Version:           d.Version,
		Status:            StatusToProto(d.Status),
		Kind:              KindToProto(d.Kind),
		RestoredVersion:   d.RestoredVersion,
		ScriptSha256:      d.ScriptSHA256,
		ScriptSize:        d.ScriptSize,
		MainModule:        d.MainModule,
		CompatibilityDate: d.CompatibilityDate,
		Tags:              d.Tags,
		Metadata:          d.Metadata,
		ActorKeyId:        d.ActorKeyID,
		ActorName:         d.ActorName,
		IdempotencyKey:    d.IdempotencyKey,
		CreatedAt:         pbtime.To(d.CreatedAt),
		FinishedAt:        pbtime.To(d.FinishedAt),
		Error:             d.Error,
		SupersededBy:      d.SupersededBy,
		Config:            d.Config,
	}
}

// DeploymentFromProto converts a deployment message.
func DeploymentFromProto(d *dbv1.Deployment) store.Deployment {
	return store.Deployment{
		ID:                d.GetId(),
		Service:           d.GetService(),
		Environment:       d.GetEnvironment(),
		Namespace:         d.GetNamespace(),
		Version:           d.GetVersion(),
		Status:            StatusFromProto(d.GetStatus()),
		Kind:              KindFromProto(d.GetKind()),
		RestoredVersion:   d.GetRestoredVersion(),
		ScriptSHA256:      d.GetScriptSha256(),
		ScriptSize:        d.GetScriptSize(),
		MainModule:        d.GetMainModule(),
		CompatibilityDate: d.GetCompatibilityDate(),
		Tags:              d.GetTags(),
		Metadata:          d.GetMetadata(),
		ActorKeyID:        d.GetActorKeyId(),
		ActorName:         d.GetActorName(),
		IdempotencyKey:    d.GetIdempotencyKey(),
		CreatedAt:         pbtime.From(d.GetCreatedAt()),
		FinishedAt:        pbtime.From(d.GetFinishedAt()),
		Error:             d.GetError(),
		SupersededBy:      d.GetSupersededBy(),
		Config:            d.GetConfig(),
	}
}

// DeploymentsToProto converts a list of stored deployments.
func DeploymentsToProto(ds []store.Deployment) []*dbv1.Deployment {
	out := make([]*dbv1.Deployment, len(ds))
	for i, d := range ds {
		out[i] = DeploymentToProto(d)
	}
	return out
}

// NewDeploymentToProto converts the input of BeginDeployment.
func NewDeploymentToProto(nd store.NewDeployment) *dbv1.BeginDeploymentRequest {
	return &dbv1.BeginDeploymentRequest{
		Service:           nd.Service,
		Environment:       nd.Environment,
		Namespace:         nd.Namespace,
		Kind:              KindToProto(nd.Kind),
		RestoredVersion:   nd.RestoredVersion,
		ScriptSha256:      nd.ScriptSHA256,
		ScriptSize:        nd.ScriptSize,
		MainModule:        nd.MainModule,
		CompatibilityDate: nd.CompatibilityDate,
		Tags:              nd.Tags,
		Metadata:          nd.Metadata,
		ActorKeyId:        nd.ActorKeyID,
		ActorName:         nd.ActorName,
		IdempotencyKey:    nd.IdempotencyKey,
		Config:            nd.Config,
	}
}

// NewDeploymentFromProto converts a BeginDeployment request.
func NewDeploymentFromProto(r *dbv1.BeginDeploymentRequest) store.NewDeployment {
	return store.NewDeployment{
		Service:           r.GetService(),
		Environment:       r.GetEnvironment(),
		Namespace:         r.GetNamespace(),
		Kind:              KindFromProto(r.GetKind()),
		RestoredVersion:   r.GetRestoredVersion(),
		ScriptSHA256:      r.GetScriptSha256(),
		ScriptSize:        r.GetScriptSize(),
		MainModule:        r.GetMainModule(),
		CompatibilityDate: r.GetCompatibilityDate(),
		Tags:              r.GetTags(),
		Metadata:          r.GetMetadata(),
		ActorKeyID:        r.GetActorKeyId(),
		ActorName:         r.GetActorName(),
		IdempotencyKey:    r.GetIdempotencyKey(),
		Config:            r.GetConfig(),
	}
}

// LeaseToProto converts a lease.
func LeaseToProto(l store.Lease) *dbv1.Lease {
	return &dbv1.Lease{
		Name:       l.Name,
		Holder:     l.Holder,
		Token:      l.Token,
		AcquiredAt: pbtime.To(l.AcquiredAt),
		ExpiresAt:  pbtime.To(l.ExpiresAt),
	}
}

// LeaseFromProto converts a lease message.
func LeaseFromProto(l *dbv1.Lease) store.Lease {
	return store.Lease{
		Name:       l.GetName(),
		Holder:     l.GetHolder(),
		Token:      l.GetToken(),
		AcquiredAt: pbtime.From(l.GetAcquiredAt()),
		ExpiresAt:  pbtime.From(l.GetExpiresAt()),
	}
}

// AuditEventToProto converts an audit event.
func AuditEventToProto(e store.AuditEvent) *dbv1.AuditEvent {
	return &dbv1.AuditEvent{
		Seq:        e.Seq,
		Time:       pbtime.To(e.Time),
		ActorKeyId: e.Actor,
		ActorName:  e.ActorName,
		Action:     e.Action,
		Resource:   e.Resource,
		Outcome:    e.Outcome,
		Details:    e.Detail,
		RequestId:  e.RequestID,
		TraceId:    e.TraceID,
		PrevHash:   e.PrevHash,
		Hash:       e.Hash,
	}
}

// AuditEventFromProto converts an audit event message.
func AuditEventFromProto(e *dbv1.AuditEvent) store.AuditEvent {
	return store.AuditEvent{
		Seq:       e.GetSeq(),
		Time:      pbtime.From(e.GetTime()),
		Actor:     e.GetActorKeyId(),
		ActorName: e.GetActorName(),
		Action:    e.GetAction(),
		Resource:  e.GetResource(),
		Outcome:   e.GetOutcome(),
		Detail:    e.GetDetails(),
		RequestID: e.GetRequestId(),
		TraceID:   e.GetTraceId(),
		PrevHash:  e.GetPrevHash(),
		Hash:      e.GetHash(),
	}
}

// AuditEventsToProto converts a list of audit events.
func AuditEventsToProto(es []store.AuditEvent) []*dbv1.AuditEvent {
	out := make([]*dbv1.AuditEvent, len(es))
	for i, e := range es {
		out[i] = AuditEventToProto(e)
	}
	return out
}

// APIKeyToProto converts an API key record.
func APIKeyToProto(k store.APIKey) *dbv1.ApiKeyRecord {
	return &dbv1.ApiKeyRecord{
		KeyId:        k.KeyID,
		Name:         k.Name,
		Role:         string(k.Role),
		Environments: k.Environments,
		SecretHash:   k.SecretHash,
		CreatedAt:    pbtime.To(k.CreatedAt),
		CreatedBy:    k.CreatedBy,
		ExpiresAt:    pbtime.To(k.ExpiresAt),
		RevokedAt:    pbtime.To(k.RevokedAt),
		LastUsedAt:   pbtime.To(k.LastUsedAt),
		ReplacedBy:   k.ReplacedBy,
	}
}

// APIKeyFromProto converts an API key record message.
func APIKeyFromProto(k *dbv1.ApiKeyRecord) store.APIKey {
	return store.APIKey{
		KeyID:        k.GetKeyId(),
		Name:         k.GetName(),
		Role:         store.Role(k.GetRole()),
		Environments: k.GetEnvironments(),
		SecretHash:   k.GetSecretHash(),
		CreatedAt:    pbtime.From(k.GetCreatedAt()),
		CreatedBy:    k.GetCreatedBy(),
		ExpiresAt:    pbtime.From(k.GetExpiresAt()),
		RevokedAt:    pbtime.From(k.GetRevokedAt()),
		LastUsedAt:   pbtime.From(k.GetLastUsedAt()),
		ReplacedBy:   k.GetReplacedBy(),
	}
}
