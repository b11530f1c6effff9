package deploy

import (
	"context"

	"connectrpc.com/connect"

	authv1 "github.com/dot-do/platform/gen/go/dotdo/auth/v1"
	dbv1 "github.com/dot-do/platform/gen/go/dotdo/db/v1"
	deployv1 "github.com/dot-do/platform/gen/go/dotdo/deploy/v1"
	"github.com/dot-do/platform/gen/go/dotdo/deploy/v1/deployv1connect"
	"github.com/dot-do/platform/internal/pbtime"
	"github.com/dot-do/platform/services/auth/authz"
	"github.com/dot-do/platform/services/db/store"
)

// NewAdminHandler returns the AdminService handler over admin. Mount it
// with deployv1connect.NewAdminServiceHandler and rpc.HandlerOptions.
func NewAdminHandler(admin *Admin) deployv1connect.AdminServiceHandler {
	return &adminHandler{admin: admin}
}

type adminHandler struct{ admin *Admin }

var _ deployv1connect.AdminServiceHandler = (*adminHandler)(nil)

// CreateAPIKey implements deployv1connect.AdminServiceHandler.
func (h *adminHandler) CreateApiKey(ctx context.Context, req *connect.Request[deployv1.CreateApiKeyRequest]) (*connect.Response[deployv1.CreateApiKeyResponse], error) {
	m := req.Msg
	role := authz.RoleFromProto(m.GetRole())
	if role == "" {
		return nil, invalid("role", "unknown role %d", int32(m.GetRole()))
	}
	k, rec, err := h.admin.CreateKey(ctx, callerOf(req), KeySpec{
		Name: m.GetName(), Role: role, Environments: m.GetEnvironments(), TTL: m.GetTtl().AsDuration(),
	})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&deployv1.CreateApiKeyResponse{ApiKey: authz.KeyToProto(rec), Secret: k.Token}), nil
}

// ListAPIKeys implements deployv1connect.AdminServiceHandler.
func (h *adminHandler) ListApiKeys(ctx context.Context, req *connect.Request[deployv1.ListApiKeysRequest]) (*connect.Response[deployv1.ListApiKeysResponse], error) {
	recs, err := h.admin.ListKeys(ctx, callerOf(req), req.Msg.GetIncludeRevoked())
	if err != nil {
		return nil, err
	}
	out := &deployv1.ListApiKeysResponse{ApiKeys: make([]*authv1.ApiKey, len(recs))}
	for i, r := range recs {
		out.ApiKeys[i] = authz.KeyToProto(r)
	}
	return connect.NewResponse(out), nil
}

// RevokeAPIKey implements deployv1connect.AdminServiceHandler.
func (h *adminHandler) RevokeApiKey(ctx context.Context, req *connect.Request[deployv1.RevokeApiKeyRequest]) (*connect.Response[deployv1.RevokeApiKeyResponse], error) {
	rec, err := h.admin.RevokeKey(ctx, callerOf(req), req.Msg.GetKeyId())
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&deployv1.RevokeApiKeyResponse{ApiKey: authz.KeyToProto(rec)}), nil
}

// RotateAPIKey implements deployv1connect.AdminServiceHandler.
func (h *adminHandler) RotateApiKey(ctx context.Context, req *connect.Request[deployv1.RotateApiKeyRequest]) (*connect.Response[deployv1.RotateApiKeyResponse], error) {
	r, err := h.admin.RotateKey(ctx, callerOf(req), req.Msg.GetKeyId(), req.Msg.GetGracePeriod().AsDuration())
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&deployv1.RotateApiKeyResponse{ApiKey: authz.KeyToProto(r.Record), Secret: r.Key.Token, Previous: authz.KeyToProto(r.Previous)}), nil
}

// ListAuditEvents implements deployv1connect.AdminServiceHandler.
func (h *adminHandler) ListAuditEvents(ctx context.Context, req *connect.Request[deployv1.ListAuditEventsRequest]) (*connect.Response[deployv1.ListAuditEventsResponse], error) {
	m := req.Msg
	events, next, err := h.admin.ListAudit(ctx, callerOf(req), store.AuditFilter{
		Actor: m.GetActorKeyId(), Action: m.GetAction(), Resource: m.GetResource(),
		PageSize: int(m.GetPageSize()), PageToken: m.GetPageToken(),
	})
	if err != nil {
		return nil, err
	}
	out := &deployv1.ListAuditEventsResponse{NextPageToken: next, Events: make([]*dbv1.AuditEvent, len(events))}
	for i, e := range events {
		out.Events[i] = &dbv1.AuditEvent{
			Seq: e.Seq, Time: pbtime.To(e.Time), ActorKeyId: e.Actor, ActorName: e.ActorName, Action: e.Action,
			Resource: e.Resource, Outcome: e.Outcome, RequestId: e.RequestID, TraceId: e.TraceID,
			PrevHash: e.PrevHash, Hash: e.Hash, Details: e.Detail,
		}
	}
	return connect.NewResponse(out), nil
}

// VerifyAuditLog implements deployv1connect.AdminServiceHandler.
func (h *adminHandler) VerifyAuditLog(ctx context.Context, req *connect.Request[deployv1.VerifyAuditLogRequest]) (*connect.Response[deployv1.VerifyAuditLogResponse], error) {
	var head *store.AuditHead
	if hd := req.Msg.GetHead(); hd != nil {
		head = &store.AuditHead{Seq: hd.GetSeq(), Hash: hd.GetHash()}
	}
	res, err := h.admin.VerifyAudit(ctx, callerOf(req), head, req.Msg.GetFromCheckpoint())
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&deployv1.VerifyAuditLogResponse{Ok: res.OK, Checked: res.Checked, FirstBrokenSeq: res.FirstBrokenSeq, Reason: res.Reason,
		Keyed: res.Keyed, FromSeq: res.FromSeq}), nil
}

// GetAuditHead implements deployv1connect.AdminServiceHandler.
func (h *adminHandler) GetAuditHead(ctx context.Context, req *connect.Request[deployv1.GetAuditHeadRequest]) (*connect.Response[deployv1.GetAuditHeadResponse], error) {
	hd, err := h.admin.AuditHead(ctx, callerOf(req))
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&deployv1.GetAuditHeadResponse{Head: &dbv1.AuditHead{Seq: hd.Seq, Hash: hd.Hash}, Keyed: hd.Keyed}), nil
}
