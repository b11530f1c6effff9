package deploy

import (
	"context"
	"errors"
	"net"
	"strings"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	deployv1 "github.com/dot-do/platform/gen/go/dotdo/deploy/v1"
	"github.com/dot-do/platform/gen/go/dotdo/deploy/v1/deployv1connect"
	"github.com/dot-do/platform/internal/pbtime"
	"github.com/dot-do/platform/internal/rpcerr"
	"github.com/dot-do/platform/services/db/store"
	"github.com/dot-do/platform/services/deploy/backend"
)

// RequestIDHeader is the request header whose value, when present, is kept
// as the request id in audit events.
const RequestIDHeader = "X-Request-Id"

// NewHandler returns the DeployService handler over svc. Mount it with
// deployv1connect.NewDeployServiceHandler and the options of
// rpc.HandlerOptions (which install rpcerr's interceptor); raise the read
// limit to svc.Config().ReadMaxBytes().
func NewHandler(svc *Service) deployv1connect.DeployServiceHandler { return &handler{svc: svc} }

type handler struct{ svc *Service }

var _ deployv1connect.DeployServiceHandler = (*handler)(nil)

// callerOf reads who makes req: the bearer token of its Authorization
// header, the peer's IP and the request id.
func callerOf(req connect.AnyRequest) Caller {
	c := Caller{Token: bearerToken(req.Header().Get("Authorization")), Client: req.Peer().Addr}
	if host, _, err := net.SplitHostPort(c.Client); err == nil {
		c.Client = host
	}
	if id := req.Header().Get(RequestIDHeader); len(id) <= 128 && isPrintableASCII(id) {
		c.RequestID = id
	}
	return c
}

// bearerToken returns the token of an "Authorization: Bearer <token>"
// header value, or "".
func bearerToken(h string) string {
	scheme, tok, ok := strings.Cut(strings.TrimSpace(h), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(tok)
}

func isPrintableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// Deploy implements deployv1connect.DeployServiceHandler.
func (h *handler) Deploy(ctx context.Context, req *connect.Request[deployv1.DeployRequest]) (*connect.Response[deployv1.DeployResponse], error) {
	m := req.Msg
	in := DeployInput{
		Service:            m.GetService(),
		Environment:        m.GetEnvironment(),
		Script:             m.GetScript(),
		MainModule:         m.GetMainModule(),
		CompatibilityDate:  m.GetCompatibilityDate(),
		CompatibilityFlags: m.GetCompatibilityFlags(),
		Tags:               m.GetTags(),
		Metadata: Metadata{
			Commit: m.GetMetadata().GetCommit(),
			Branch: m.GetMetadata().GetBranch(),
			Author: m.GetMetadata().GetAuthor(),
			Labels: m.GetMetadata().GetLabels(),
		},
		IdempotencyKey: m.GetIdempotencyKey(),
		Vars:           m.GetVars(),
		Crons:          m.GetCrons(),
		Limits:         Limits{CPUMs: m.GetLimits().GetCpuMs()},
	}
	for _, b := range m.GetServices() {
		in.Services = append(in.Services, ServiceBinding{Binding: b.GetBinding(), Service: b.GetService()})
	}
	for _, mod := range m.GetModules() {
		in.Modules = append(in.Modules, backend.Module{Name: mod.GetName(), Content: mod.GetContent(), Type: moduleTypeOf(mod.GetType())})
	}
	res, err := h.svc.Deploy(ctx, callerOf(req), in)
	if err != nil {
		return nil, deploymentErr(err)
	}
	return connect.NewResponse(&deployv1.DeployResponse{Deployment: deploymentProto(res.Deployment), Url: res.URL, Warnings: res.Warnings}), nil
}

// Rollback implements deployv1connect.DeployServiceHandler.
func (h *handler) Rollback(ctx context.Context, req *connect.Request[deployv1.RollbackRequest]) (*connect.Response[deployv1.RollbackResponse], error) {
	m := req.Msg
	res, err := h.svc.Rollback(ctx, callerOf(req), RollbackInput{
		Service:        m.GetService(),
		Environment:    m.GetEnvironment(),
		Version:        m.GetVersion(),
		Reason:         m.GetReason(),
		IdempotencyKey: m.GetIdempotencyKey(),
	})
	if err != nil {
		return nil, deploymentErr(err)
	}
	return connect.NewResponse(&deployv1.RollbackResponse{Deployment: deploymentProto(res.Deployment)}), nil
}

// ListDeployments implements deployv1connect.DeployServiceHandler.
func (h *handler) ListDeployments(ctx context.Context, req *connect.Request[deployv1.ListDeploymentsRequest]) (*connect.Response[deployv1.ListDeploymentsResponse], error) {
	m := req.Msg
	status, ok := statusOf(m.GetStatus())
	if !ok {
		return nil, invalid("status", "unknown status %d", int32(m.GetStatus()))
	}
	items, next, err := h.svc.ListDeployments(ctx, callerOf(req), ListInput{
		Service:     m.GetService(),
		Environment: m.GetEnvironment(),
		Status:      status,
		PageSize:    int(m.GetPageSize()),
		PageToken:   m.GetPageToken(),
	})
	if err != nil {
		return nil, err
	}
	out := &deployv1.ListDeploymentsResponse{NextPageToken: next, Deployments: make([]*deployv1.Deployment, len(items))}
	for i, d := range items {
		out.Deployments[i] = deploymentProto(d)
	}
	return connect.NewResponse(out), nil
}

// GetDeployment implements deployv1connect.DeployServiceHandler.
func (h *handler) GetDeployment(ctx context.Context, req *connect.Request[deployv1.GetDeploymentRequest]) (*connect.Response[deployv1.GetDeploymentResponse], error) {
	d, err := h.svc.GetDeployment(ctx, callerOf(req), req.Msg.GetId())
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&deployv1.GetDeploymentResponse{Deployment: deploymentProto(d)}), nil
}

// GetServiceInfo implements deployv1connect.DeployServiceHandler.
func (h *handler) GetServiceInfo(ctx context.Context, req *connect.Request[deployv1.GetServiceInfoRequest]) (*connect.Response[deployv1.GetServiceInfoResponse], error) {
	info, err := h.svc.ServiceInfo(ctx, callerOf(req))
	if err != nil {
		return nil, err
	}
	out := &deployv1.GetServiceInfoResponse{Name: info.Name, Version: info.Version, Backend: info.Backend}
	for _, e := range info.Environments {
		out.Environments = append(out.Environments, &deployv1.EnvironmentInfo{Name: e.Name, Namespace: e.Namespace})
	}
	return connect.NewResponse(out), nil
}

// Health implements deployv1connect.DeployServiceHandler.
func (h *handler) Health(ctx context.Context, req *connect.Request[deployv1.HealthRequest]) (*connect.Response[deployv1.HealthResponse], error) {
	rep, err := h.svc.Health(ctx, callerOf(req))
	if err != nil {
		return nil, err
	}
	out := &deployv1.HealthResponse{Status: "ok", Version: rep.Version, Time: timestamppb.New(rep.Time)}
	if !rep.OK {
		out.Status = "degraded"
	}
	for _, d := range rep.Dependencies {
		out.Dependencies = append(out.Dependencies, &deployv1.DependencyHealth{Name: d.Name, Healthy: d.Healthy, Error: d.Error})
	}
	return connect.NewResponse(out), nil
}

// ListNamespaces implements deployv1connect.DeployServiceHandler.
func (h *handler) ListNamespaces(ctx context.Context, req *connect.Request[deployv1.ListNamespacesRequest]) (*connect.Response[deployv1.ListNamespacesResponse], error) {
	nss, err := h.svc.ListNamespaces(ctx, callerOf(req))
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&deployv1.ListNamespacesResponse{Namespaces: namespacesProto(nss)}), nil
}

// EnsureNamespaces implements deployv1connect.DeployServiceHandler.
func (h *handler) EnsureNamespaces(ctx context.Context, req *connect.Request[deployv1.EnsureNamespacesRequest]) (*connect.Response[deployv1.EnsureNamespacesResponse], error) {
	nss, created, err := h.svc.EnsureNamespaces(ctx, callerOf(req), req.Msg.GetEnvironments())
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&deployv1.EnsureNamespacesResponse{Namespaces: namespacesProto(nss), Created: created}), nil
}

// TriggerScheduled implements deployv1connect.DeployServiceHandler.
func (h *handler) TriggerScheduled(ctx context.Context, req *connect.Request[deployv1.TriggerScheduledRequest]) (*connect.Response[deployv1.TriggerScheduledResponse], error) {
	m := req.Msg
	out, err := h.svc.TriggerScheduled(ctx, callerOf(req), TriggerInput{Service: m.GetService(), Environment: m.GetEnvironment(), Cron: m.GetCron()})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&deployv1.TriggerScheduledResponse{Version: out.Version, Cron: out.Cron}), nil
}

// deploymentErr attaches, for a *DeploymentError, the deployment as
// recorded as an error detail (a dotdo.deploy.v1.Deployment), so that a
// client learns its id, version and status; rpcerr maps the error itself
// (and logs it when it is a fault).
func deploymentErr(err error) error {
	var de *DeploymentError
	if !errors.As(err, &de) {
		return err
	}
	return rpcerr.WithDetails(err, deploymentProto(de.Deployment))
}

func namespacesProto(nss []NamespaceStatus) []*deployv1.Namespace {
	out := make([]*deployv1.Namespace, len(nss))
	for i, n := range nss {
		out[i] = &deployv1.Namespace{Environment: n.Environment, Name: n.Name, Exists: n.Exists, ScriptCount: n.ScriptCount}
	}
	return out
}

var moduleTypes = map[deployv1.ModuleType]backend.ModuleType{
	deployv1.ModuleType_MODULE_TYPE_UNSPECIFIED: backend.ModuleInferred,
	deployv1.ModuleType_MODULE_TYPE_ESM:         backend.ModuleESM,
	deployv1.ModuleType_MODULE_TYPE_WASM:        backend.ModuleWasm,
	deployv1.ModuleType_MODULE_TYPE_TEXT:        backend.ModuleText,
	deployv1.ModuleType_MODULE_TYPE_JSON:        backend.ModuleJSON,
}

// moduleTypeOf maps a proto module type; an undefined one maps to a value
// the domain refuses.
func moduleTypeOf(t deployv1.ModuleType) backend.ModuleType {
	if mt, ok := moduleTypes[t]; ok {
		return mt
	}
	return backend.ModuleType(-1)
}

var statuses = map[deployv1.DeploymentStatus]store.Status{
	deployv1.DeploymentStatus_DEPLOYMENT_STATUS_UNSPECIFIED: "",
	deployv1.DeploymentStatus_DEPLOYMENT_STATUS_PENDING:     store.StatusPending,
	deployv1.DeploymentStatus_DEPLOYMENT_STATUS_LIVE:        store.StatusLive,
	deployv1.DeploymentStatus_DEPLOYMENT_STATUS_FAILED:      store.StatusFailed,
	deployv1.DeploymentStatus_DEPLOYMENT_STATUS_SUPERSEDED:  store.StatusSuperseded,
}

func statusOf(s deployv1.DeploymentStatus) (store.Status, bool) {
	st, ok := statuses[s]
	return st, ok
}

func statusProto(s store.Status) deployv1.DeploymentStatus {
	for k, v := range statuses {
		if v == s && s != "" {
			return k
		}
	}
	return deployv1.DeploymentStatus_DEPLOYMENT_STATUS_UNSPECIFIED
}

func kindProto(k store.Kind) deployv1.DeploymentKind {
	switch k {
	case store.KindDeploy:
		return deployv1.DeploymentKind_DEPLOYMENT_KIND_DEPLOY
	case store.KindRollback:
		return deployv1.DeploymentKind_DEPLOYMENT_KIND_ROLLBACK
	default:
		return deployv1.DeploymentKind_DEPLOYMENT_KIND_UNSPECIFIED
	}
}

// limitsProto converts a worker's limits; nil when it sets none.
func limitsProto(l Limits) *deployv1.Limits {
	if l == (Limits{}) {
		return nil
	}
	return &deployv1.Limits{CpuMs: l.CPUMs}
}

// deploymentProto converts a recorded deployment. A configuration that
// does not decode (which the store never holds) is left out.
func deploymentProto(d store.Deployment) *deployv1.Deployment {
	meta := MetadataOf(d.Metadata)
	cfg, _ := ConfigOf(d.Config)
	var services []*deployv1.ServiceBinding
	for _, b := range cfg.Services {
		services = append(services, &deployv1.ServiceBinding{Binding: b.Binding, Service: b.Service})
	}
	return &deployv1.Deployment{
		Vars:              cfg.Vars,
		Services:          services,
		Crons:             cfg.Crons,
		Limits:            limitsProto(cfg.Limits),
		Id:                d.ID,
		Service:           d.Service,
		Environment:       d.Environment,
		Namespace:         d.Namespace,
		Version:           d.Version,
		Status:            statusProto(d.Status),
		Kind:              kindProto(d.Kind),
		RestoredVersion:   d.RestoredVersion,
		ScriptSha256:      d.ScriptSHA256,
		ScriptSize:        d.ScriptSize,
		Metadata:          &deployv1.Metadata{Commit: meta.Commit, Branch: meta.Branch, Author: meta.Author, Labels: meta.Labels},
		Actor:             &deployv1.Actor{KeyId: d.ActorKeyID, Name: d.ActorName},
		CreatedAt:         pbtime.To(d.CreatedAt),
		FinishedAt:        pbtime.To(d.FinishedAt),
		Error:             d.Error,
		MainModule:        d.MainModule,
		CompatibilityDate: d.CompatibilityDate,
		Tags:              d.Tags,
	}
}
