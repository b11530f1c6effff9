package db

import (
	"context"

	"connectrpc.com/connect"

	dbv1 "github.com/dot-do/platform/gen/go/dotdo/db/v1"
	"github.com/dot-do/platform/services/db/store"
)

func (h *handler) PutRouteTable(ctx context.Context, req *connect.Request[dbv1.PutRouteTableRequest]) (*connect.Response[dbv1.PutRouteTableResponse], error) {
	rt, err := h.store.PutRouteTable(ctx, NewRouteTableFromProto(req.Msg))
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&dbv1.PutRouteTableResponse{RouteTable: RouteTableToProto(rt)}), nil
}

func (h *handler) GetRouteTable(ctx context.Context, req *connect.Request[dbv1.GetRouteTableRequest]) (*connect.Response[dbv1.GetRouteTableResponse], error) {
	rt, err := h.store.GetRouteTable(ctx, req.Msg.GetEnvironment(), req.Msg.GetVersion())
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&dbv1.GetRouteTableResponse{RouteTable: RouteTableToProto(rt)}), nil
}

func (h *handler) ListRouteTables(ctx context.Context, req *connect.Request[dbv1.ListRouteTablesRequest]) (*connect.Response[dbv1.ListRouteTablesResponse], error) {
	items, next, err := h.store.ListRouteTables(ctx, store.RouteTableFilter{
		Environment: req.Msg.GetEnvironment(), PageSize: int(req.Msg.GetPageSize()), PageToken: req.Msg.GetPageToken(),
	})
	if err != nil {
		return nil, err
	}
	out := &dbv1.ListRouteTablesResponse{NextPageToken: next, RouteTables: make([]*dbv1.RouteTable, len(items))}
	for i, rt := range items {
		out.RouteTables[i] = RouteTableToProto(rt)
	}
	return connect.NewResponse(out), nil
}

func (h *handler) BeginDispatchWorkerDeployment(ctx context.Context, req *connect.Request[dbv1.BeginDispatchWorkerDeploymentRequest]) (*connect.Response[dbv1.BeginDispatchWorkerDeploymentResponse], error) {
	d, err := h.store.BeginDispatchWorkerDeployment(ctx, NewDispatchWorkerFromProto(req.Msg))
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&dbv1.BeginDispatchWorkerDeploymentResponse{Deployment: DispatchWorkerToProto(d)}), nil
}

func (h *handler) CompleteDispatchWorkerDeployment(ctx context.Context, req *connect.Request[dbv1.CompleteDispatchWorkerDeploymentRequest]) (*connect.Response[dbv1.CompleteDispatchWorkerDeploymentResponse], error) {
	d, err := h.store.CompleteDispatchWorkerDeployment(ctx, req.Msg.GetId(), store.Outcome{
		Status: StatusFromProto(req.Msg.GetStatus()), Error: req.Msg.GetError(),
	})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&dbv1.CompleteDispatchWorkerDeploymentResponse{Deployment: DispatchWorkerToProto(d)}), nil
}

func (h *handler) GetDispatchWorkerDeployment(ctx context.Context, req *connect.Request[dbv1.GetDispatchWorkerDeploymentRequest]) (*connect.Response[dbv1.GetDispatchWorkerDeploymentResponse], error) {
	d, err := h.store.GetDispatchWorkerDeployment(ctx, req.Msg.GetEnvironment(), req.Msg.GetVersion())
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&dbv1.GetDispatchWorkerDeploymentResponse{Deployment: DispatchWorkerToProto(d)}), nil
}

func (h *handler) ListDispatchWorkerDeployments(ctx context.Context, req *connect.Request[dbv1.ListDispatchWorkerDeploymentsRequest]) (*connect.Response[dbv1.ListDispatchWorkerDeploymentsResponse], error) {
	items, next, err := h.store.ListDispatchWorkerDeployments(ctx, store.DispatchWorkerFilter{
		Environment: req.Msg.GetEnvironment(), PageSize: int(req.Msg.GetPageSize()), PageToken: req.Msg.GetPageToken(),
	})
	if err != nil {
		return nil, err
	}
	out := &dbv1.ListDispatchWorkerDeploymentsResponse{NextPageToken: next, Deployments: make([]*dbv1.DispatchWorkerDeployment, len(items))}
	for i, d := range items {
		out.Deployments[i] = DispatchWorkerToProto(d)
	}
	return connect.NewResponse(out), nil
}
