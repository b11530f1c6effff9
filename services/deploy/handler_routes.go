package deploy

import (
	"context"

	"connectrpc.com/connect"

	deployv1 "github.com/dot-do/platform/gen/go/dotdo/deploy/v1"
	"github.com/dot-do/platform/gen/go/dotdo/deploy/v1/deployv1connect"
	"github.com/dot-do/platform/internal/pbtime"
	"github.com/dot-do/platform/internal/routing"
	"github.com/dot-do/platform/internal/routing/routingpb"
	"github.com/dot-do/platform/internal/rpcerr"
	"github.com/dot-do/platform/services/db/store"
)

// NewRoutesHandler returns the RoutesService handler over svc. Mount it
// with deployv1connect.NewRoutesServiceHandler and rpc.HandlerOptions.
func NewRoutesHandler(svc *Service) deployv1connect.RoutesServiceHandler {
	return &routesHandler{svc: svc}
}

type routesHandler struct{ svc *Service }

var _ deployv1connect.RoutesServiceHandler = (*routesHandler)(nil)

// GetRoutes implements deployv1connect.RoutesServiceHandler.
func (h *routesHandler) GetRoutes(ctx context.Context, req *connect.Request[deployv1.GetRoutesRequest]) (*connect.Response[deployv1.GetRoutesResponse], error) {
	rt, err := h.svc.GetRoutes(ctx, callerOf(req), req.Msg.GetEnvironment(), req.Msg.GetVersion())
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&deployv1.GetRoutesResponse{Routes: routeTableProto(rt)}), nil
}

// SetRoutes implements deployv1connect.RoutesServiceHandler.
func (h *routesHandler) SetRoutes(ctx context.Context, req *connect.Request[deployv1.SetRoutesRequest]) (*connect.Response[deployv1.SetRoutesResponse], error) {
	ch, err := h.svc.SetRoutes(ctx, callerOf(req), RouteSetInput{
		Environment: req.Msg.GetEnvironment(), Table: routingpb.FromProto(req.Msg.GetTable()), BaseVersion: req.Msg.GetBaseVersion(),
	})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&deployv1.SetRoutesResponse{Routes: routeTableProto(ch.Routes), PreviousVersion: ch.Previous}), nil
}

// ListRouteVersions implements deployv1connect.RoutesServiceHandler.
func (h *routesHandler) ListRouteVersions(ctx context.Context, req *connect.Request[deployv1.ListRouteVersionsRequest]) (*connect.Response[deployv1.ListRouteVersionsResponse], error) {
	items, next, err := h.svc.ListRouteVersions(ctx, callerOf(req), req.Msg.GetEnvironment(), int(req.Msg.GetPageSize()), req.Msg.GetPageToken())
	if err != nil {
		return nil, err
	}
	out := &deployv1.ListRouteVersionsResponse{NextPageToken: next, Versions: make([]*deployv1.RouteTableVersion, len(items))}
	for i, rt := range items {
		out.Versions[i] = routeTableProto(rt)
	}
	return connect.NewResponse(out), nil
}

// RollbackRoutes implements deployv1connect.RoutesServiceHandler.
func (h *routesHandler) RollbackRoutes(ctx context.Context, req *connect.Request[deployv1.RollbackRoutesRequest]) (*connect.Response[deployv1.RollbackRoutesResponse], error) {
	ch, err := h.svc.RollbackRoutes(ctx, callerOf(req), req.Msg.GetEnvironment(), req.Msg.GetVersion())
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&deployv1.RollbackRoutesResponse{Routes: routeTableProto(ch.Routes), PreviousVersion: ch.Previous}), nil
}

// BuildDispatchWorker implements deployv1connect.RoutesServiceHandler.
func (h *routesHandler) BuildDispatchWorker(ctx context.Context, req *connect.Request[deployv1.BuildDispatchWorkerRequest]) (*connect.Response[deployv1.BuildDispatchWorkerResponse], error) {
	b, err := h.svc.BuildDispatchWorker(ctx, callerOf(req), req.Msg.GetEnvironment())
	if err != nil {
		return nil, err
	}
	w := b.Worker
	return connect.NewResponse(&deployv1.BuildDispatchWorkerResponse{
		ScriptName: w.ScriptName, RouteTableVersion: b.TableVersion, Routes: w.Routes,
		Files: []*deployv1.File{{Name: routing.WorkerMainModule, Content: w.Module}, {Name: routing.WorkerConfigFile, Content: w.Config}},
	}), nil
}

// DeployDispatchWorker implements deployv1connect.RoutesServiceHandler. A
// failed deploy's error carries the recorded deployment as a detail.
func (h *routesHandler) DeployDispatchWorker(ctx context.Context, req *connect.Request[deployv1.DeployDispatchWorkerRequest]) (*connect.Response[deployv1.DeployDispatchWorkerResponse], error) {
	d, err := h.svc.DeployDispatchWorker(ctx, callerOf(req), req.Msg.GetEnvironment())
	if err != nil {
		return nil, dispatchWorkerErr(err, d)
	}
	return connect.NewResponse(&deployv1.DeployDispatchWorkerResponse{Deployment: dispatchWorkerProto(d)}), nil
}

// RollbackDispatchWorker implements deployv1connect.RoutesServiceHandler.
func (h *routesHandler) RollbackDispatchWorker(ctx context.Context, req *connect.Request[deployv1.RollbackDispatchWorkerRequest]) (*connect.Response[deployv1.RollbackDispatchWorkerResponse], error) {
	d, err := h.svc.RollbackDispatchWorker(ctx, callerOf(req), req.Msg.GetEnvironment(), req.Msg.GetVersion())
	if err != nil {
		return nil, dispatchWorkerErr(err, d)
	}
	return connect.NewResponse(&deployv1.RollbackDispatchWorkerResponse{Deployment: dispatchWorkerProto(d)}), nil
}

// ListDispatchWorkerDeployments implements deployv1connect.RoutesServiceHandler.
func (h *routesHandler) ListDispatchWorkerDeployments(ctx context.Context, req *connect.Request[deployv1.ListDispatchWorkerDeploymentsRequest]) (*connect.Response[deployv1.ListDispatchWorkerDeploymentsResponse], error) {
	items, next, err := h.svc.ListDispatchWorkerDeployments(ctx, callerOf(req), req.Msg.GetEnvironment(), int(req.Msg.GetPageSize()), req.Msg.GetPageToken())
	if err != nil {
		return nil, err
	}
	out := &deployv1.ListDispatchWorkerDeploymentsResponse{NextPageToken: next, Deployments: make([]*deployv1.DispatchWorkerDeployment, len(items))}
	for i, d := range items {
		out.Deployments[i] = dispatchWorkerProto(d)
	}
	return connect.NewResponse(out), nil
}

// dispatchWorkerErr attaches the deployment a failed dispatch Worker deploy
// recorded, if it recorded one.
func dispatchWorkerErr(err error, d store.DispatchWorkerDeployment) error {
	if d.ID == "" {
		return err
	}
	return rpcerr.WithDetails(err, dispatchWorkerProto(d))
}

var routeKinds = map[store.RouteTableKind]deployv1.RouteTableKind{
	store.RouteTableSeed:     deployv1.RouteTableKind_ROUTE_TABLE_KIND_SEED,
	store.RouteTableSet:      deployv1.RouteTableKind_ROUTE_TABLE_KIND_SET,
	store.RouteTableRollback: deployv1.RouteTableKind_ROUTE_TABLE_KIND_ROLLBACK,
}

// routeTableProto converts a version of a routing table.
func routeTableProto(rt store.RouteTable) *deployv1.RouteTableVersion {
	out := &deployv1.RouteTableVersion{
		Environment:     rt.Environment,
		Version:         rt.Version,
		Table:           routingpb.ToProto(rt.Table),
		Kind:            routeKinds[rt.Kind],
		RestoredVersion: rt.RestoredVersion,
		CreatedAt:       pbtime.To(rt.CreatedAt),
	}
	if rt.ActorKeyID != "" || rt.ActorName != "" {
		out.Actor = &deployv1.Actor{KeyId: rt.ActorKeyID, Name: rt.ActorName}
	}
	return out
}

// dispatchWorkerProto converts a dispatch Worker deployment.
func dispatchWorkerProto(d store.DispatchWorkerDeployment) *deployv1.DispatchWorkerDeployment {
	return &deployv1.DispatchWorkerDeployment{
		Id:                d.ID,
		Environment:       d.Environment,
		Version:           d.Version,
		Status:            statusProto(d.Status),
		Kind:              kindProto(d.Kind),
		RestoredVersion:   d.RestoredVersion,
		RouteTableVersion: d.RouteTableVersion,
		ScriptName:        d.ScriptName,
		ScriptSha256:      d.ScriptSHA256,
		Routes:            d.Routes,
		Actor:             &deployv1.Actor{KeyId: d.ActorKeyID, Name: d.ActorName},
		CreatedAt:         pbtime.To(d.CreatedAt),
		FinishedAt:        pbtime.To(d.FinishedAt),
		Error:             d.Error,
	}
}
