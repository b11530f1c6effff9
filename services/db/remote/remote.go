// Package remote implements store.Store over the DBService, so that the
// services that hold no database (auth, deploy) use the same interface as
// the db service does in process. Errors come back as Connect errors with
// the db service's codes, and are given the error kinds of those codes
// (rpcerr.FromConnect), so that callers test them with errors.Is as they
// would locally.
package remote

import (
	"context"
	"fmt"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/durationpb"

	dbv1 "github.com/dot-do/platform/gen/go/dotdo/db/v1"
	"github.com/dot-do/platform/gen/go/dotdo/db/v1/dbv1connect"
	"github.com/dot-do/platform/internal/errkind"
	"github.com/dot-do/platform/internal/pbtime"
	"github.com/dot-do/platform/internal/rpcerr"
	"github.com/dot-do/platform/services/db"
	"github.com/dot-do/platform/services/db/store"
)

// Store is a store.Store that calls a DBService.
type Store struct {
	client dbv1connect.DBServiceClient
}

var _ store.Store = (*Store)(nil)

// New returns a Store that calls client.
func New(client dbv1connect.DBServiceClient) *Store { return &Store{client: client} }

// Close implements store.Store; the client holds no resources of its own.
func (s *Store) Close() error { return nil }

// wrap gives an error of the db service the kind of its code.
func wrap(err error) error { return rpcerr.FromConnect("db", err) }

// call runs one unary RPC and maps its error.
func call[Req, Res any](ctx context.Context, rpc func(context.Context, *connect.Request[Req]) (*connect.Response[Res], error), req *Req) (*Res, error) {
	res, err := rpc(ctx, connect.NewRequest(req))
	if err != nil {
		return nil, wrap(err)
	}
	return res.Msg, nil
}

// BeginDeployment implements store.Deployments.
// It normalizes nd as the store would first, so that values the wire
// cannot carry (an unknown kind) are refused here.
func (s *Store) BeginDeployment(ctx context.Context, nd store.NewDeployment) (store.Deployment, bool, error) {
	nd, err := nd.Normalize()
	if err != nil {
		return store.Deployment{}, false, err
	}
	res, err := call(ctx, s.client.BeginDeployment, db.NewDeploymentToProto(nd))
	if err != nil {
		return store.Deployment{}, false, err
	}
	return db.DeploymentFromProto(res.GetDeployment()), res.GetCreated(), nil
}

// CompleteDeployment implements store.Deployments.
// The outcome is normalized (long errors truncated) as the store would.
func (s *Store) CompleteDeployment(ctx context.Context, id string, o store.Outcome) (store.Deployment, error) {
	o, err := o.Normalize()
	if err != nil {
		return store.Deployment{}, err
	}
	req := &dbv1.CompleteDeploymentRequest{Id: id, Status: db.StatusToProto(o.Status), Error: o.Error}
	if o.Lease != nil {
		req.Lease = &dbv1.LeaseFence{Holder: o.Lease.Holder, Token: o.Lease.Token}
	}
	res, err := call(ctx, s.client.CompleteDeployment, req)
	if err != nil {
		return store.Deployment{}, err
	}
	return db.DeploymentFromProto(res.GetDeployment()), nil
}

func (s *Store) getDeployment(ctx context.Context, req *dbv1.GetDeploymentRequest) (store.Deployment, error) {
	res, err := call(ctx, s.client.GetDeployment, req)
	if err != nil {
		return store.Deployment{}, err
	}
	return db.DeploymentFromProto(res.GetDeployment()), nil
}

// GetDeployment implements store.Deployments.
func (s *Store) GetDeployment(ctx context.Context, id string) (store.Deployment, error) {
	return s.getDeployment(ctx, &dbv1.GetDeploymentRequest{Id: id})
}

// GetDeploymentByVersion implements store.Deployments.
func (s *Store) GetDeploymentByVersion(ctx context.Context, environment, service string, version int64) (store.Deployment, error) {
	return s.getDeployment(ctx, &dbv1.GetDeploymentRequest{Environment: environment, Service: service, Version: version})
}

// GetLive implements store.Deployments.
func (s *Store) GetLive(ctx context.Context, environment, service string) (store.Deployment, error) {
	res, err := call(ctx, s.client.GetLiveDeployment, &dbv1.GetLiveDeploymentRequest{Environment: environment, Service: service})
	if err != nil {
		return store.Deployment{}, err
	}
	return db.DeploymentFromProto(res.GetDeployment()), nil
}

// ListDeployments implements store.Deployments.
func (s *Store) ListDeployments(ctx context.Context, f store.ListFilter) ([]store.Deployment, string, error) {
	if f.Status != "" && !f.Status.Valid() {
		return nil, "", fmt.Errorf("db: unknown status %q: %w", f.Status, errkind.Invalid)
	}
	res, err := call(ctx, s.client.ListDeployments, &dbv1.ListDeploymentsRequest{
		Service:     f.Service,
		Environment: f.Environment,
		Status:      db.StatusToProto(f.Status),
		PageSize:    int32(min(f.PageSize, store.MaxPageSize)),
		PageToken:   f.PageToken,
	})
	if err != nil {
		return nil, "", err
	}
	return deploymentsFromProto(res.GetDeployments()), res.GetNextPageToken(), nil
}

// ListPending implements store.Deployments.
func (s *Store) ListPending(ctx context.Context, p store.Page) ([]store.Deployment, string, error) {
	res, err := call(ctx, s.client.ListPendingDeployments, &dbv1.ListPendingDeploymentsRequest{
		PageSize: int32(min(max(p.PageSize, 0), store.MaxPageSize)), PageToken: p.PageToken,
	})
	if err != nil {
		return nil, "", err
	}
	return deploymentsFromProto(res.GetDeployments()), res.GetNextPageToken(), nil
}

func deploymentsFromProto(ds []*dbv1.Deployment) []store.Deployment {
	out := make([]store.Deployment, len(ds))
	for i, d := range ds {
		out[i] = db.DeploymentFromProto(d)
	}
	return out
}

// PutBlob implements store.Blobs.
func (s *Store) PutBlob(ctx context.Context, data []byte) (string, error) {
	res, err := call(ctx, s.client.PutScriptBlob, &dbv1.PutScriptBlobRequest{Data: data})
	if err != nil {
		return "", err
	}
	return res.GetSha256(), nil
}

// GetBlob implements store.Blobs. The db service checks the hash; the bytes
// are checked again here, since they crossed the network.
func (s *Store) GetBlob(ctx context.Context, sha256Hex string) ([]byte, error) {
	res, err := call(ctx, s.client.GetScriptBlob, &dbv1.GetScriptBlobRequest{Sha256: sha256Hex})
	if err != nil {
		return nil, err
	}
	if store.SHA256Hex(res.GetData()) != sha256Hex {
		return nil, fmt.Errorf("db: blob %s does not match its hash: %w", sha256Hex, errkind.Corrupt)
	}
	return res.GetData(), nil
}

// AppendAudit implements store.Audit.
func (s *Store) AppendAudit(ctx context.Context, e store.AuditEvent) (store.AuditEvent, error) {
	res, err := call(ctx, s.client.AppendAuditEvent, &dbv1.AppendAuditEventRequest{Event: db.AuditEventToProto(e)})
	if err != nil {
		return store.AuditEvent{}, err
	}
	return db.AuditEventFromProto(res.GetEvent()), nil
}

// ListAudit implements store.Audit. Since and Until are not part of the
// RPC; a filter that sets them gets errkind.Invalid.
func (s *Store) ListAudit(ctx context.Context, f store.AuditFilter) ([]store.AuditEvent, string, error) {
	if !f.Since.IsZero() || !f.Until.IsZero() {
		return nil, "", fmt.Errorf("db: audit time filters are not served remotely: %w", errkind.Invalid)
	}
	res, err := call(ctx, s.client.ListAuditEvents, &dbv1.ListAuditEventsRequest{
		ActorKeyId: f.Actor,
		Action:     f.Action,
		Resource:   f.Resource,
		PageSize:   int32(min(f.PageSize, store.MaxPageSize)),
		PageToken:  f.PageToken,
	})
	if err != nil {
		return nil, "", err
	}
	out := make([]store.AuditEvent, len(res.GetEvents()))
	for i, e := range res.GetEvents() {
		out[i] = db.AuditEventFromProto(e)
	}
	return out, res.GetNextPageToken(), nil
}

// VerifyAudit implements store.Audit.
func (s *Store) VerifyAudit(ctx context.Context, head *store.AuditHead) (store.VerifyResult, error) {
	return s.VerifyAuditFrom(ctx, store.AuditVerifyOptions{Head: head})
}

var _ store.AuditCheckpointer = (*Store)(nil)

// VerifyAuditFrom implements store.AuditCheckpointer. The db service
// records a checkpoint whenever a keyed chain verifies, whatever
// opts.SaveCheckpoint says.
func (s *Store) VerifyAuditFrom(ctx context.Context, opts store.AuditVerifyOptions) (store.VerifyResult, error) {
	head := opts.Head
	req := &dbv1.VerifyAuditLogRequest{FromCheckpoint: opts.FromCheckpoint}
	if head != nil {
		req.Head = &dbv1.AuditHead{Seq: head.Seq, Hash: head.Hash}
	}
	res, err := call(ctx, s.client.VerifyAuditLog, req)
	if err != nil {
		return store.VerifyResult{}, err
	}
	return store.VerifyResult{OK: res.GetOk(), Checked: res.GetChecked(), FirstBrokenSeq: res.GetFirstBrokenSeq(), Reason: res.GetReason(),
		Keyed: res.GetKeyed(), FromSeq: res.GetFromSeq()}, nil
}

// AuditHead implements store.Audit.
func (s *Store) AuditHead(ctx context.Context) (store.AuditHead, error) {
	res, err := call(ctx, s.client.GetAuditHead, &dbv1.GetAuditHeadRequest{})
	if err != nil {
		return store.AuditHead{}, err
	}
	return store.AuditHead{Seq: res.GetHead().GetSeq(), Hash: res.GetHead().GetHash(), Keyed: res.GetKeyed()}, nil
}

// CreateAPIKey implements store.APIKeys.
func (s *Store) CreateAPIKey(ctx context.Context, k store.APIKey) (store.APIKey, error) {
	res, err := call(ctx, s.client.CreateApiKey, &dbv1.CreateApiKeyRequest{Record: db.APIKeyToProto(k)})
	if err != nil {
		return store.APIKey{}, err
	}
	return db.APIKeyFromProto(res.GetRecord()), nil
}

// CreateBootstrapAPIKey implements store.APIKeys.
func (s *Store) CreateBootstrapAPIKey(ctx context.Context, k store.APIKey) (store.APIKey, error) {
	res, err := call(ctx, s.client.CreateBootstrapApiKey, &dbv1.CreateBootstrapApiKeyRequest{Record: db.APIKeyToProto(k)})
	if err != nil {
		return store.APIKey{}, err
	}
	return db.APIKeyFromProto(res.GetRecord()), nil
}

// RotateAPIKey implements store.APIKeys.
func (s *Store) RotateAPIKey(ctx context.Context, oldKeyID string, newKey store.APIKey, graceUntil time.Time) (store.APIKey, store.APIKey, error) {
	res, err := call(ctx, s.client.RotateApiKey, &dbv1.RotateApiKeyRequest{
		OldKeyId: oldKeyID, Record: db.APIKeyToProto(newKey), GraceUntil: pbtime.To(graceUntil),
	})
	if err != nil {
		return store.APIKey{}, store.APIKey{}, err
	}
	return db.APIKeyFromProto(res.GetPrevious()), db.APIKeyFromProto(res.GetRecord()), nil
}

// GetAPIKey implements store.APIKeys.
func (s *Store) GetAPIKey(ctx context.Context, keyID string) (store.APIKey, error) {
	res, err := call(ctx, s.client.GetApiKey, &dbv1.GetApiKeyRequest{KeyId: keyID})
	if err != nil {
		return store.APIKey{}, err
	}
	return db.APIKeyFromProto(res.GetRecord()), nil
}

// ListAPIKeys implements store.APIKeys.
func (s *Store) ListAPIKeys(ctx context.Context, includeRevoked bool) ([]store.APIKey, error) {
	res, err := call(ctx, s.client.ListApiKeys, &dbv1.ListApiKeysRequest{IncludeRevoked: includeRevoked})
	if err != nil {
		return nil, err
	}
	out := make([]store.APIKey, len(res.GetRecords()))
	for i, k := range res.GetRecords() {
		out[i] = db.APIKeyFromProto(k)
	}
	return out, nil
}

// RevokeAPIKey implements store.APIKeys.
func (s *Store) RevokeAPIKey(ctx context.Context, keyID string, at time.Time) (store.APIKey, error) {
	res, err := call(ctx, s.client.RevokeApiKey, &dbv1.RevokeApiKeyRequest{KeyId: keyID, RevokedAt: pbtime.To(at)})
	if err != nil {
		return store.APIKey{}, err
	}
	return db.APIKeyFromProto(res.GetRecord()), nil
}

// SetAPIKeyExpiry implements store.APIKeys.
func (s *Store) SetAPIKeyExpiry(ctx context.Context, keyID string, at time.Time) (store.APIKey, error) {
	res, err := call(ctx, s.client.SetApiKeyExpiry, &dbv1.SetApiKeyExpiryRequest{KeyId: keyID, ExpiresAt: pbtime.To(at)})
	if err != nil {
		return store.APIKey{}, err
	}
	return db.APIKeyFromProto(res.GetRecord()), nil
}

// TouchAPIKey implements store.APIKeys.
func (s *Store) TouchAPIKey(ctx context.Context, keyID string, at time.Time) error {
	_, err := call(ctx, s.client.TouchApiKey, &dbv1.TouchApiKeyRequest{KeyId: keyID, UsedAt: pbtime.To(at)})
	return err
}

// AcquireLease implements store.Leases.
func (s *Store) AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (store.Lease, error) {
	res, err := call(ctx, s.client.AcquireLease, &dbv1.AcquireLeaseRequest{Name: name, Holder: holder, Ttl: durationpb.New(ttl)})
	if err != nil {
		return store.Lease{}, err
	}
	return db.LeaseFromProto(res.GetLease()), nil
}

// RenewLease implements store.Leases.
func (s *Store) RenewLease(ctx context.Context, name, holder string, ttl time.Duration) (store.Lease, error) {
	res, err := call(ctx, s.client.RenewLease, &dbv1.RenewLeaseRequest{Name: name, Holder: holder, Ttl: durationpb.New(ttl)})
	if err != nil {
		return store.Lease{}, err
	}
	return db.LeaseFromProto(res.GetLease()), nil
}

// ReleaseLease implements store.Leases.
func (s *Store) ReleaseLease(ctx context.Context, name, holder string) error {
	_, err := call(ctx, s.client.ReleaseLease, &dbv1.ReleaseLeaseRequest{Name: name, Holder: holder})
	return err
}

// GetLease implements store.Leases.
func (s *Store) GetLease(ctx context.Context, name string) (store.Lease, error) {
	res, err := call(ctx, s.client.GetLease, &dbv1.GetLeaseRequest{Name: name})
	if err != nil {
		return store.Lease{}, err
	}
	return db.LeaseFromProto(res.GetLease()), nil
}
