package db

import (
	"context"
	"time"

	"connectrpc.com/connect"

	dbv1 "github.com/dot-do/platform/gen/go/dotdo/db/v1"
	"github.com/dot-do/platform/gen/go/dotdo/db/v1/dbv1connect"
	"github.com/dot-do/platform/internal/pbtime"
	"github.com/dot-do/platform/services/db/store"
)

// handler serves DBService from a store. Request validation happens in the
// protovalidate interceptor before these methods run, and errors map to
// codes in internal/rpcerr.
type handler struct {
	store store.Store
	opts  options
}

var _ dbv1connect.DBServiceHandler = (*handler)(nil)

// Option configures the handler.
type Option func(*options)

type options struct {
	stop      <-chan struct{}
	heartbeat time.Duration
}

// WithStop ends the handler's watches (WatchEnvironment) with ErrStopping
// when stop is closed: give it the channel of the context the server runs
// under, so that a graceful shutdown need not wait for streams that never
// end by themselves.
func WithStop(stop <-chan struct{}) Option { return func(o *options) { o.stop = stop } }

// WithHeartbeat sets how often a watch sends a heartbeat while nothing
// changes (WatchHeartbeat by default).
func WithHeartbeat(d time.Duration) Option { return func(o *options) { o.heartbeat = d } }

// NewHandler returns the DBService handler backed by s. WatchEnvironment
// needs s to be a store.Notifier (both backends are).
func NewHandler(s store.Store, opts ...Option) dbv1connect.DBServiceHandler {
	o := options{heartbeat: WatchHeartbeat}
	for _, f := range opts {
		f(&o)
	}
	if o.heartbeat <= 0 {
		o.heartbeat = WatchHeartbeat
	}
	return &handler{store: s, opts: o}
}

func (h *handler) BeginDeployment(ctx context.Context, req *connect.Request[dbv1.BeginDeploymentRequest]) (*connect.Response[dbv1.BeginDeploymentResponse], error) {
	d, created, err := h.store.BeginDeployment(ctx, NewDeploymentFromProto(req.Msg))
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&dbv1.BeginDeploymentResponse{Deployment: DeploymentToProto(d), Created: created}), nil
}

func (h *handler) CompleteDeployment(ctx context.Context, req *connect.Request[dbv1.CompleteDeploymentRequest]) (*connect.Response[dbv1.CompleteDeploymentResponse], error) {
	o := store.Outcome{
		Status: StatusFromProto(req.Msg.GetStatus()),
		Error:  req.Msg.GetError(),
	}
	if f := req.Msg.GetLease(); f != nil {
		o.Lease = &store.LeaseFence{Holder: f.GetHolder(), Token: f.GetToken()}
	}
	d, err := h.store.CompleteDeployment(ctx, req.Msg.GetId(), o)
	if err != nil {
		return nil, err
	}
	res := &dbv1.CompleteDeploymentResponse{Deployment: DeploymentToProto(d)}
	return connect.NewResponse(res), nil
}

func (h *handler) GetDeployment(ctx context.Context, req *connect.Request[dbv1.GetDeploymentRequest]) (*connect.Response[dbv1.GetDeploymentResponse], error) {
	var (
		d   store.Deployment
		err error
	)
	if id := req.Msg.GetId(); id != "" {
		d, err = h.store.GetDeployment(ctx, id)
	} else {
		d, err = h.store.GetDeploymentByVersion(ctx, req.Msg.GetEnvironment(), req.Msg.GetService(), req.Msg.GetVersion())
	}
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&dbv1.GetDeploymentResponse{Deployment: DeploymentToProto(d)}), nil
}

func (h *handler) GetLiveDeployment(ctx context.Context, req *connect.Request[dbv1.GetLiveDeploymentRequest]) (*connect.Response[dbv1.GetLiveDeploymentResponse], error) {
	d, err := h.store.GetLive(ctx, req.Msg.GetEnvironment(), req.Msg.GetService())
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&dbv1.GetLiveDeploymentResponse{Deployment: DeploymentToProto(d)}), nil
}

func (h *handler) ListDeployments(ctx context.Context, req *connect.Request[dbv1.ListDeploymentsRequest]) (*connect.Response[dbv1.ListDeploymentsResponse], error) {
	items, next, err := h.store.ListDeployments(ctx, store.ListFilter{
		Service:     req.Msg.GetService(),
		Environment: req.Msg.GetEnvironment(),
		Status:      StatusFromProto(req.Msg.GetStatus()),
		PageSize:    int(req.Msg.GetPageSize()),
		PageToken:   req.Msg.GetPageToken(),
	})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&dbv1.ListDeploymentsResponse{Deployments: DeploymentsToProto(items), NextPageToken: next}), nil
}

func (h *handler) ListPendingDeployments(ctx context.Context, req *connect.Request[dbv1.ListPendingDeploymentsRequest]) (*connect.Response[dbv1.ListPendingDeploymentsResponse], error) {
	items, next, err := h.store.ListPending(ctx, store.Page{PageSize: int(req.Msg.GetPageSize()), PageToken: req.Msg.GetPageToken()})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&dbv1.ListPendingDeploymentsResponse{Deployments: DeploymentsToProto(items), NextPageToken: next}), nil
}

func (h *handler) AcquireLease(ctx context.Context, req *connect.Request[dbv1.AcquireLeaseRequest]) (*connect.Response[dbv1.AcquireLeaseResponse], error) {
	l, err := h.store.AcquireLease(ctx, req.Msg.GetName(), req.Msg.GetHolder(), req.Msg.GetTtl().AsDuration())
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&dbv1.AcquireLeaseResponse{Lease: LeaseToProto(l)}), nil
}

func (h *handler) RenewLease(ctx context.Context, req *connect.Request[dbv1.RenewLeaseRequest]) (*connect.Response[dbv1.RenewLeaseResponse], error) {
	l, err := h.store.RenewLease(ctx, req.Msg.GetName(), req.Msg.GetHolder(), req.Msg.GetTtl().AsDuration())
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&dbv1.RenewLeaseResponse{Lease: LeaseToProto(l)}), nil
}

func (h *handler) ReleaseLease(ctx context.Context, req *connect.Request[dbv1.ReleaseLeaseRequest]) (*connect.Response[dbv1.ReleaseLeaseResponse], error) {
	if err := h.store.ReleaseLease(ctx, req.Msg.GetName(), req.Msg.GetHolder()); err != nil {
		return nil, err
	}
	return connect.NewResponse(&dbv1.ReleaseLeaseResponse{}), nil
}

func (h *handler) GetLease(ctx context.Context, req *connect.Request[dbv1.GetLeaseRequest]) (*connect.Response[dbv1.GetLeaseResponse], error) {
	l, err := h.store.GetLease(ctx, req.Msg.GetName())
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&dbv1.GetLeaseResponse{Lease: LeaseToProto(l)}), nil
}

func (h *handler) PutScriptBlob(ctx context.Context, req *connect.Request[dbv1.PutScriptBlobRequest]) (*connect.Response[dbv1.PutScriptBlobResponse], error) {
	sum, err := h.store.PutBlob(ctx, req.Msg.GetData())
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&dbv1.PutScriptBlobResponse{Sha256: sum}), nil
}

func (h *handler) GetScriptBlob(ctx context.Context, req *connect.Request[dbv1.GetScriptBlobRequest]) (*connect.Response[dbv1.GetScriptBlobResponse], error) {
	data, err := h.store.GetBlob(ctx, req.Msg.GetSha256())
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&dbv1.GetScriptBlobResponse{Data: data}), nil
}

func (h *handler) AppendAuditEvent(ctx context.Context, req *connect.Request[dbv1.AppendAuditEventRequest]) (*connect.Response[dbv1.AppendAuditEventResponse], error) {
	e := AuditEventFromProto(req.Msg.GetEvent())
	e.Seq, e.PrevHash, e.Hash = 0, "", "" // assigned by the store
	stored, err := h.store.AppendAudit(ctx, e)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&dbv1.AppendAuditEventResponse{Event: AuditEventToProto(stored)}), nil
}

func (h *handler) ListAuditEvents(ctx context.Context, req *connect.Request[dbv1.ListAuditEventsRequest]) (*connect.Response[dbv1.ListAuditEventsResponse], error) {
	items, next, err := h.store.ListAudit(ctx, store.AuditFilter{
		Actor:     req.Msg.GetActorKeyId(),
		Action:    req.Msg.GetAction(),
		Resource:  req.Msg.GetResource(),
		PageSize:  int(req.Msg.GetPageSize()),
		PageToken: req.Msg.GetPageToken(),
	})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&dbv1.ListAuditEventsResponse{Events: AuditEventsToProto(items), NextPageToken: next}), nil
}

func (h *handler) VerifyAuditLog(ctx context.Context, req *connect.Request[dbv1.VerifyAuditLogRequest]) (*connect.Response[dbv1.VerifyAuditLogResponse], error) {
	var head *store.AuditHead
	if hd := req.Msg.GetHead(); hd != nil {
		head = &store.AuditHead{Seq: hd.GetSeq(), Hash: hd.GetHash()}
	}
	r, err := store.VerifyAuditLog(ctx, h.store, head, req.Msg.GetFromCheckpoint())
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&dbv1.VerifyAuditLogResponse{
		Ok: r.OK, Checked: r.Checked, FirstBrokenSeq: r.FirstBrokenSeq, Reason: r.Reason, Keyed: r.Keyed, FromSeq: r.FromSeq,
	}), nil
}

func (h *handler) GetAuditHead(ctx context.Context, _ *connect.Request[dbv1.GetAuditHeadRequest]) (*connect.Response[dbv1.GetAuditHeadResponse], error) {
	hd, err := h.store.AuditHead(ctx)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&dbv1.GetAuditHeadResponse{Head: &dbv1.AuditHead{Seq: hd.Seq, Hash: hd.Hash}, Keyed: hd.Keyed}), nil
}

func (h *handler) CreateApiKey(ctx context.Context, req *connect.Request[dbv1.CreateApiKeyRequest]) (*connect.Response[dbv1.CreateApiKeyResponse], error) {
	k, err := h.store.CreateAPIKey(ctx, APIKeyFromProto(req.Msg.GetRecord()))
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&dbv1.CreateApiKeyResponse{Record: APIKeyToProto(k)}), nil
}

func (h *handler) CreateBootstrapApiKey(ctx context.Context, req *connect.Request[dbv1.CreateBootstrapApiKeyRequest]) (*connect.Response[dbv1.CreateBootstrapApiKeyResponse], error) {
	k, err := h.store.CreateBootstrapAPIKey(ctx, APIKeyFromProto(req.Msg.GetRecord()))
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&dbv1.CreateBootstrapApiKeyResponse{Record: APIKeyToProto(k)}), nil
}

func (h *handler) GetApiKey(ctx context.Context, req *connect.Request[dbv1.GetApiKeyRequest]) (*connect.Response[dbv1.GetApiKeyResponse], error) {
	k, err := h.store.GetAPIKey(ctx, req.Msg.GetKeyId())
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&dbv1.GetApiKeyResponse{Record: APIKeyToProto(k)}), nil
}

func (h *handler) ListApiKeys(ctx context.Context, req *connect.Request[dbv1.ListApiKeysRequest]) (*connect.Response[dbv1.ListApiKeysResponse], error) {
	keys, err := h.store.ListAPIKeys(ctx, req.Msg.GetIncludeRevoked())
	if err != nil {
		return nil, err
	}
	out := make([]*dbv1.ApiKeyRecord, len(keys))
	for i, k := range keys {
		out[i] = APIKeyToProto(k)
	}
	return connect.NewResponse(&dbv1.ListApiKeysResponse{Records: out}), nil
}

func (h *handler) RevokeApiKey(ctx context.Context, req *connect.Request[dbv1.RevokeApiKeyRequest]) (*connect.Response[dbv1.RevokeApiKeyResponse], error) {
	k, err := h.store.RevokeAPIKey(ctx, req.Msg.GetKeyId(), pbtime.From(req.Msg.GetRevokedAt()))
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&dbv1.RevokeApiKeyResponse{Record: APIKeyToProto(k)}), nil
}

func (h *handler) SetApiKeyExpiry(ctx context.Context, req *connect.Request[dbv1.SetApiKeyExpiryRequest]) (*connect.Response[dbv1.SetApiKeyExpiryResponse], error) {
	k, err := h.store.SetAPIKeyExpiry(ctx, req.Msg.GetKeyId(), pbtime.From(req.Msg.GetExpiresAt()))
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&dbv1.SetApiKeyExpiryResponse{Record: APIKeyToProto(k)}), nil
}

func (h *handler) TouchApiKey(ctx context.Context, req *connect.Request[dbv1.TouchApiKeyRequest]) (*connect.Response[dbv1.TouchApiKeyResponse], error) {
	if err := h.store.TouchAPIKey(ctx, req.Msg.GetKeyId(), pbtime.From(req.Msg.GetUsedAt())); err != nil {
		return nil, err
	}
	return connect.NewResponse(&dbv1.TouchApiKeyResponse{}), nil
}

func (h *handler) RotateApiKey(ctx context.Context, req *connect.Request[dbv1.RotateApiKeyRequest]) (*connect.Response[dbv1.RotateApiKeyResponse], error) {
	old, created, err := h.store.RotateAPIKey(ctx, req.Msg.GetOldKeyId(), APIKeyFromProto(req.Msg.GetRecord()), pbtime.From(req.Msg.GetGraceUntil()))
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&dbv1.RotateApiKeyResponse{Previous: APIKeyToProto(old), Record: APIKeyToProto(created)}), nil
}
