package db

import (
	dbv1 "github.com/dot-do/platform/gen/go/dotdo/db/v1"
	"github.com/dot-do/platform/internal/pbtime"
	"github.com/dot-do/platform/internal/routing/routingpb"
	"github.com/dot-do/platform/services/db/store"
)

var routeKindToProto = map[store.RouteTableKind]dbv1.RouteTableKind{
	store.RouteTableSeed:     dbv1.RouteTableKind_ROUTE_TABLE_KIND_SEED,
	store.RouteTableSet:      dbv1.RouteTableKind_ROUTE_TABLE_KIND_SET,
	store.RouteTableRollback: dbv1.RouteTableKind_ROUTE_TABLE_KIND_ROLLBACK,
}

// RouteTableKindToProto converts a route table kind.
func RouteTableKindToProto(k store.RouteTableKind) dbv1.RouteTableKind { return routeKindToProto[k] }

// RouteTableKindFromProto converts a proto route table kind; "" for
// UNSPECIFIED.
func RouteTableKindFromProto(k dbv1.RouteTableKind) store.RouteTableKind {
	return reverse(routeKindToProto, k)
}

// RouteTableToProto converts a stored route table version.
func RouteTableToProto(rt store.RouteTable) *dbv1.RouteTable {
	return &dbv1.RouteTable{
		Environment:     rt.Environment,
		Version:         rt.Version,
		Table:           routingpb.ToProto(rt.Table),
		Kind:            RouteTableKindToProto(rt.Kind),
		RestoredVersion: rt.RestoredVersion,
		ActorKeyId:      rt.ActorKeyID,
		ActorName:       rt.ActorName,
		CreatedAt:       pbtime.To(rt.CreatedAt),
	}
}

// RouteTableFromProto converts a route table version message.
func RouteTableFromProto(rt *dbv1.RouteTable) store.RouteTable {
	return store.RouteTable{
		Environment:     rt.GetEnvironment(),
		Version:         rt.GetVersion(),
		Table:           routingpb.FromProto(rt.GetTable()).Normalize(),
		Kind:            RouteTableKindFromProto(rt.GetKind()),
		RestoredVersion: rt.GetRestoredVersion(),
		ActorKeyID:      rt.GetActorKeyId(),
		ActorName:       rt.GetActorName(),
		CreatedAt:       pbtime.From(rt.GetCreatedAt()),
	}
}

// NewRouteTableToProto converts the input of PutRouteTable.
func NewRouteTableToProto(nt store.NewRouteTable) *dbv1.PutRouteTableRequest {
	req := &dbv1.PutRouteTableRequest{
		Environment:     nt.Environment,
		Table:           routingpb.ToProto(nt.Table),
		Kind:            RouteTableKindToProto(nt.Kind),
		RestoredVersion: nt.RestoredVersion,
		ActorKeyId:      nt.ActorKeyID,
		ActorName:       nt.ActorName,
	}
	if nt.BaseVersion != store.AnyVersion {
		req.BaseVersion = &nt.BaseVersion
	}
	return req
}

// NewRouteTableFromProto converts a PutRouteTable request.
func NewRouteTableFromProto(req *dbv1.PutRouteTableRequest) store.NewRouteTable {
	nt := store.NewRouteTable{
		Environment:     req.GetEnvironment(),
		Table:           routingpb.FromProto(req.GetTable()),
		Kind:            RouteTableKindFromProto(req.GetKind()),
		RestoredVersion: req.GetRestoredVersion(),
		ActorKeyID:      req.GetActorKeyId(),
		ActorName:       req.GetActorName(),
		BaseVersion:     store.AnyVersion,
	}
	if req.BaseVersion != nil {
		nt.BaseVersion = req.GetBaseVersion()
	}
	return nt
}

// DispatchWorkerToProto converts a dispatch Worker deployment.
func DispatchWorkerToProto(d store.DispatchWorkerDeployment) *dbv1.DispatchWorkerDeployment {
	return &dbv1.DispatchWorkerDeployment{
		Id:                d.ID,
		Environment:       d.Environment,
		Version:           d.Version,
		Status:            StatusToProto(d.Status),
		Kind:              KindToProto(d.Kind),
		RestoredVersion:   d.RestoredVersion,
		RouteTableVersion: d.RouteTableVersion,
		ScriptName:        d.ScriptName,
		ScriptSha256:      d.ScriptSHA256,
		CompatibilityDate: d.CompatibilityDate,
		Routes:            d.Routes,
		Crons:             cronsToProto(d.Crons),
		ActorKeyId:        d.ActorKeyID,
		ActorName:         d.ActorName,
		CreatedAt:         pbtime.To(d.CreatedAt),
		FinishedAt:        pbtime.To(d.FinishedAt),
		Error:             d.Error,
	}
}

// DispatchWorkerFromProto converts a dispatch Worker deployment message.
func DispatchWorkerFromProto(d *dbv1.DispatchWorkerDeployment) store.DispatchWorkerDeployment {
	return store.DispatchWorkerDeployment{
		ID:                d.GetId(),
		Environment:       d.GetEnvironment(),
		Version:           d.GetVersion(),
		Status:            StatusFromProto(d.GetStatus()),
		Kind:              KindFromProto(d.GetKind()),
		RestoredVersion:   d.GetRestoredVersion(),
		RouteTableVersion: d.GetRouteTableVersion(),
		ScriptName:        d.GetScriptName(),
		ScriptSHA256:      d.GetScriptSha256(),
		CompatibilityDate: d.GetCompatibilityDate(),
		Routes:            d.GetRoutes(),
		Crons:             cronsFromProto(d.GetCrons()),
		ActorKeyID:        d.GetActorKeyId(),
		ActorName:         d.GetActorName(),
		CreatedAt:         pbtime.From(d.GetCreatedAt()),
		FinishedAt:        pbtime.From(d.GetFinishedAt()),
		Error:             d.GetError(),
	}
}

// NewDispatchWorkerToProto converts the input of
// BeginDispatchWorkerDeployment.
func NewDispatchWorkerToProto(nd store.NewDispatchWorkerDeployment) *dbv1.BeginDispatchWorkerDeploymentRequest {
	return &dbv1.BeginDispatchWorkerDeploymentRequest{
		Environment:       nd.Environment,
		Kind:              KindToProto(nd.Kind),
		RestoredVersion:   nd.RestoredVersion,
		RouteTableVersion: nd.RouteTableVersion,
		ScriptName:        nd.ScriptName,
		ScriptSha256:      nd.ScriptSHA256,
		CompatibilityDate: nd.CompatibilityDate,
		Routes:            nd.Routes,
		Crons:             cronsToProto(nd.Crons),
		ActorKeyId:        nd.ActorKeyID,
		ActorName:         nd.ActorName,
	}
}

// NewDispatchWorkerFromProto converts a BeginDispatchWorkerDeployment
// request.
func NewDispatchWorkerFromProto(req *dbv1.BeginDispatchWorkerDeploymentRequest) store.NewDispatchWorkerDeployment {
	return store.NewDispatchWorkerDeployment{
		Environment:       req.GetEnvironment(),
		Kind:              KindFromProto(req.GetKind()),
		RestoredVersion:   req.GetRestoredVersion(),
		RouteTableVersion: req.GetRouteTableVersion(),
		ScriptName:        req.GetScriptName(),
		ScriptSHA256:      req.GetScriptSha256(),
		CompatibilityDate: req.GetCompatibilityDate(),
		Routes:            req.GetRoutes(),
		Crons:             cronsFromProto(req.GetCrons()),
		ActorKeyID:        req.GetActorKeyId(),
		ActorName:         req.GetActorName(),
	}
}

func cronsToProto(cs []store.CronTrigger) []*dbv1.DispatchWorkerCron {
	if len(cs) == 0 {
		return nil
	}
	out := make([]*dbv1.DispatchWorkerCron, len(cs))
	for i, c := range cs {
		out[i] = &dbv1.DispatchWorkerCron{Cron: c.Cron, Workers: c.Workers}
	}
	return out
}

func cronsFromProto(cs []*dbv1.DispatchWorkerCron) []store.CronTrigger {
	if len(cs) == 0 {
		return nil
	}
	out := make([]store.CronTrigger, len(cs))
	for i, c := range cs {
		out[i] = store.CronTrigger{Cron: c.GetCron(), Workers: c.GetWorkers()}
	}
	return out
}
