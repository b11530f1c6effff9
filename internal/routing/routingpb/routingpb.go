// Package routingpb converts routing tables to and from their protobuf
// message, dotdo.routing.v1.Table, which the db and deploy APIs carry. The
// message mirrors routing.Table field for field, so its JSON form (proto
// names) is the table's JSON form.
package routingpb

import (
	"slices"

	routingv1 "github.com/dot-do/platform/gen/go/dotdo/routing/v1"
	"github.com/dot-do/platform/internal/routing"
)

// ToProto converts a table.
func ToProto(t routing.Table) *routingv1.Table {
	out := &routingv1.Table{
		BaseDomains:   slices.Clone(t.BaseDomains),
		Workers:       slices.Clone(t.Workers),
		DefaultWorker: t.DefaultWorker,
		DefaultHosts:  slices.Clone(t.DefaultHosts),
		Subdomains:    t.Subdomains,
		PathRoutes:    make([]*routingv1.PathRoute, len(t.PathRoutes)),

		SubdomainsAnyWorker: t.SubdomainsAnyWorker,
	}
	for i, r := range t.PathRoutes {
		out.PathRoutes[i] = &routingv1.PathRoute{Prefix: r.Prefix, Worker: r.Worker, Hosts: slices.Clone(r.Hosts)}
	}
	return out
}

// FromProto converts a table message (nil is the empty table), without
// normalizing or validating it.
func FromProto(t *routingv1.Table) routing.Table {
	out := routing.Table{
		BaseDomains:   slices.Clone(t.GetBaseDomains()),
		Workers:       slices.Clone(t.GetWorkers()),
		DefaultWorker: t.GetDefaultWorker(),
		DefaultHosts:  slices.Clone(t.GetDefaultHosts()),
		Subdomains:    t.GetSubdomains(),

		SubdomainsAnyWorker: t.GetSubdomainsAnyWorker(),
	}
	for _, r := range t.GetPathRoutes() {
		out.PathRoutes = append(out.PathRoutes, routing.PathRoute{Prefix: r.GetPrefix(), Worker: r.GetWorker(), Hosts: slices.Clone(r.GetHosts())})
	}
	return out
}
