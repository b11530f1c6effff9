package deploy

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"

	"go.opentelemetry.io/otel/trace"

	"github.com/dot-do/platform/services/auth/authz"
	"github.com/dot-do/platform/services/db/store"
)

// Audit actions written by the Deploy API.
const (
	// ActionDeploy is a deploy: outcome OutcomeStarted before the upload,
	// then OutcomeSuccess or OutcomeFailure.
	ActionDeploy = "deployment.create"
	// ActionRollback is a rollback, with the same outcomes as ActionDeploy.
	ActionRollback = "deployment.rollback"
	// ActionReconcile is the resolution of a deployment left pending:
	// OutcomeSuccess when it went live, OutcomeFailure when it failed.
	ActionReconcile = "deployment.reconcile"
	// ActionEnsureNamespaces is a call of EnsureNamespaces.
	ActionEnsureNamespaces = "namespaces.ensure"
	// ActionKeyCreate, ActionKeyList, ActionKeyRevoke and ActionKeyRotate
	// are the operators' key actions.
	ActionKeyCreate = "admin.keys.create"
	// ActionKeyList lists keys.
	ActionKeyList = "admin.keys.list"
	// ActionKeyRevoke revokes a key.
	ActionKeyRevoke = "admin.keys.revoke"
	// ActionKeyRotate rotates a key.
	ActionKeyRotate = "admin.keys.rotate"
	// ActionAuditList lists audit events.
	ActionAuditList = "admin.audit.list"
	// ActionAuditVerify verifies the audit chain.
	ActionAuditVerify = "admin.audit.verify"
	// ActionAuditHead exports the head of the audit chain.
	ActionAuditHead = "admin.audit.head"
	// ActionRoutesSet is a new routing table set by an operator: outcome
	// OutcomeStarted before it is stored, then OutcomeSuccess or
	// OutcomeFailure; resource "routes/<env>/<version>".
	ActionRoutesSet = "routes.set"
	// ActionRoutesRollback restores an earlier routing table, with the
	// outcomes of ActionRoutesSet.
	ActionRoutesRollback = "routes.rollback"
	// ActionRoutesSeed stores the initial routing table of an environment
	// (actor SystemActor).
	ActionRoutesSeed = "routes.seed"
	// ActionDispatcherDeploy is a deploy of an environment's dispatch
	// Worker, with the outcomes of ActionDeploy; resource
	// "dispatcher/<env>/<version>".
	ActionDispatcherDeploy = "dispatcher.deploy"
	// ActionDispatcherRollback restores an earlier dispatch Worker.
	ActionDispatcherRollback = "dispatcher.rollback"
	// ActionTriggerScheduled runs a worker's scheduled() handler by hand:
	// OutcomeSuccess or OutcomeFailure; resource that of its live
	// deployment.
	ActionTriggerScheduled = "deployment.trigger_scheduled"
)

// Audit outcomes written by the Deploy API.
const (
	// OutcomeStarted is written before an upload.
	OutcomeStarted = "started"
	// OutcomeSuccess is a completed action.
	OutcomeSuccess = "success"
	// OutcomeFailure is a failed action.
	OutcomeFailure = "failure"
)

// SystemActor is the audit actor of actions the platform takes by itself,
// such as Reconcile.
const SystemActor = "system"

// event builds an audit event of p's action on resource for c.
func event(ctx context.Context, c Caller, p authz.Principal, action, resource, outcome string, detail map[string]string) store.AuditEvent {
	if c.Client != "" {
		if detail == nil {
			detail = map[string]string{}
		}
		detail["client"] = c.Client
	}
	for k, v := range detail {
		if len(v) > store.MaxAuditFieldLen {
			detail[k] = truncate(v, store.MaxAuditFieldLen)
		}
	}
	e := store.AuditEvent{
		Actor:     p.KeyID,
		ActorName: p.Name,
		Action:    action,
		Resource:  resource,
		Outcome:   outcome,
		Detail:    detail,
		RequestID: truncate(c.RequestID, 128),
	}
	if sc := trace.SpanContextFromContext(ctx); sc.HasTraceID() {
		e.TraceID = sc.TraceID().String()
	}
	return e
}

// auditor writes audit events.
type auditor struct {
	audit store.Audit
	log   *slog.Logger
}

// append writes e. A failure is logged in full and returned as an error
// wrapping ErrAuditUnavailable whose message holds no detail of the store.
func (a auditor) append(ctx context.Context, e store.AuditEvent) error {
	if _, err := a.audit.AppendAudit(ctx, e); err != nil {
		a.log.ErrorContext(ctx, "audit write failed", "action", e.Action, "resource", e.Resource, "outcome", e.Outcome, "err", err.Error())
		return fmt.Errorf("%w: the %s event of %s could not be written", ErrAuditUnavailable, e.Action, e.Resource)
	}
	return nil
}

// deploymentDetail describes d for an audit event.
func deploymentDetail(d store.Deployment) map[string]string {
	m := map[string]string{
		"deployment_id": d.ID,
		"version":       strconv.FormatInt(d.Version, 10),
		"namespace":     d.Namespace,
		"kind":          string(d.Kind),
		"status":        string(d.Status),
		"script_sha256": d.ScriptSHA256,
	}
	if d.RestoredVersion != 0 {
		m["restored_version"] = strconv.FormatInt(d.RestoredVersion, 10)
	}
	if d.Error != "" {
		m["error"] = d.Error
	}
	if c := d.Metadata[metaCommit]; c != "" {
		m["commit"] = c
	}
	return m
}

// deploymentResource names d in audit events:
// "deployment/<environment>/<service>/<version>".
func deploymentResource(d store.Deployment) string {
	return fmt.Sprintf("deployment/%s/%s/%d", d.Environment, d.Service, d.Version)
}

// truncate cuts s to at most n bytes, on a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && n < len(s) && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}
