package deploy

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/dot-do/platform/internal/errkind"
	"github.com/dot-do/platform/internal/routing"
	"github.com/dot-do/platform/services/auth/authz"
	"github.com/dot-do/platform/services/db/store"
)

// An environment's routing table is data, versioned like a deployment: it
// is stored through the db service (store.RouteTables), every change is a
// new version with its author and time, every change is audited, and any
// earlier version can be restored. The dispatcher of the environment picks
// up each version as it is stored (the db service pushes it). Until a table
// is stored the dispatcher routes with routing.Seed(), which
// EnsureRouteTables stores as version 1 when the service starts.

// RouteSetInput is a new routing table for an environment.
type RouteSetInput struct {
	// Environment is one of the configured environments.
	Environment string
	// Table is the new table, whole.
	Table routing.Table
	// BaseVersion, when not zero, must be the current version: a guard
	// against replacing a change made since the caller read the table.
	BaseVersion int64
}

// RouteChange is the outcome of SetRoutes or RollbackRoutes.
type RouteChange struct {
	// Routes is the new version.
	Routes store.RouteTable
	// Previous is the version it replaced (0: none was stored).
	Previous int64
}

// GetRoutes returns version of env's routing table, the current one when
// version is 0. With none stored yet, the current table is routing.Seed()
// at version 0, what the dispatcher routes with. The caller needs
// routes.read on env.
func (s *Service) GetRoutes(ctx context.Context, c Caller, env string, version int64) (store.RouteTable, error) {
	if _, err := s.authz.Authorize(ctx, c.Token, authz.PermRoutesRead, env, c.Client); err != nil {
		return store.RouteTable{}, err
	}
	if _, err := s.environment("environment", env); err != nil {
		return store.RouteTable{}, err
	}
	if version < 0 {
		return store.RouteTable{}, invalid("version", "must not be negative")
	}
	return s.currentRoutes(ctx, env, version)
}

// currentRoutes is GetRoutes without the checks.
func (s *Service) currentRoutes(ctx context.Context, env string, version int64) (store.RouteTable, error) {
	rt, err := s.rec.GetRouteTable(ctx, env, version)
	if errors.Is(err, errkind.NotFound) && version == 0 {
		return store.RouteTable{Environment: env, Table: routing.Seed(), Kind: store.RouteTableSeed}, nil
	}
	return rt, err
}

// ListRouteVersions returns one page of the versions of env's routing
// table, newest first, and the next page's token. The caller needs
// routes.read on env.
func (s *Service) ListRouteVersions(ctx context.Context, c Caller, env string, pageSize int, pageToken string) ([]store.RouteTable, string, error) {
	if _, err := s.authz.Authorize(ctx, c.Token, authz.PermRoutesRead, env, c.Client); err != nil {
		return nil, "", err
	}
	if _, err := s.environment("environment", env); err != nil {
		return nil, "", err
	}
	return s.rec.ListRouteTables(ctx, store.RouteTableFilter{Environment: env, PageSize: pageSize, PageToken: pageToken})
}

// SetRoutes replaces env's routing table with in.Table as a new version.
// The caller needs routes.write on env. An invalid table is refused with
// a *FieldError naming the entry ("table.path_routes[2].prefix"), and
// nothing changes. The change is audited (ActionRoutesSet): a started
// event before it is stored (fail closed: no event, no change), then its
// outcome.
func (s *Service) SetRoutes(ctx context.Context, c Caller, in RouteSetInput) (RouteChange, error) {
	p, err := s.authz.Authorize(ctx, c.Token, authz.PermRoutesWrite, in.Environment, c.Client)
	if err != nil {
		return RouteChange{}, err
	}
	if _, err := s.environment("environment", in.Environment); err != nil {
		return RouteChange{}, err
	}
	if in.BaseVersion < 0 {
		return RouteChange{}, invalid("base_version", "must not be negative")
	}
	table, err := checkTable(in.Table)
	if err != nil {
		return RouteChange{}, err
	}
	return s.putRoutes(ctx, c, p, ActionRoutesSet, in.Environment, in.BaseVersion, store.NewRouteTable{
		Environment: in.Environment, Table: table, Kind: store.RouteTableSet,
	})
}

// RollbackRoutes makes the table of an earlier version of env's routing
// table current again, as a new version of kind rollback that points at
// it. Version 0 restores the version before the current one. The caller
// needs routes.write on env; the change is audited (ActionRoutesRollback)
// as SetRoutes does.
func (s *Service) RollbackRoutes(ctx context.Context, c Caller, env string, version int64) (RouteChange, error) {
	p, err := s.authz.Authorize(ctx, c.Token, authz.PermRoutesWrite, env, c.Client)
	if err != nil {
		return RouteChange{}, err
	}
	if _, err := s.environment("environment", env); err != nil {
		return RouteChange{}, err
	}
	if version < 0 {
		return RouteChange{}, invalid("version", "must not be negative")
	}
	cur, err := s.rec.GetRouteTable(ctx, env, 0)
	switch {
	case errors.Is(err, errkind.NotFound):
		return RouteChange{}, errkind.Errorf(errkind.Precondition, "environment %s has no routing table stored, so there is nothing to roll back", env)
	case err != nil:
		return RouteChange{}, err
	}
	if version == 0 {
		if cur.Version < 2 {
			return RouteChange{}, errkind.Errorf(errkind.Precondition, "the routing table of %s has only version %d: there is no earlier version to restore", env, cur.Version)
		}
		version = cur.Version - 1
	}
	if version == cur.Version {
		return RouteChange{}, errkind.Errorf(errkind.Precondition, "version %d is the current routing table of %s already", version, env)
	}
	target, err := s.rec.GetRouteTable(ctx, env, version)
	if err != nil {
		return RouteChange{}, err
	}
	return s.putRoutes(ctx, c, p, ActionRoutesRollback, env, cur.Version, store.NewRouteTable{
		Environment: env, Table: target.Table, Kind: store.RouteTableRollback, RestoredVersion: version,
	})
}

// seedPrincipal is the actor of the initial routing tables.
var seedPrincipal = authz.Principal{KeyID: SystemActor, Name: "platform"}

// EnsureRouteTables stores routing.Seed() as version 1 of the routing
// table of every configured environment that has none, as the platform
// itself (actor SystemActor), audited (ActionRoutesSeed). It returns the
// environments it seeded.
func (s *Service) EnsureRouteTables(ctx context.Context) ([]string, error) {
	var seeded []string
	for _, e := range s.cfg.Environments {
		_, err := s.rec.GetRouteTable(ctx, e.Name, 0)
		if err == nil {
			continue
		}
		if !errors.Is(err, errkind.NotFound) {
			return seeded, fmt.Errorf("read the routing table of %s: %w", e.Name, err)
		}
		_, err = s.putRoutes(ctx, Caller{}, seedPrincipal, ActionRoutesSeed, e.Name, 0, store.NewRouteTable{
			Environment: e.Name, Table: routing.Seed(), Kind: store.RouteTableSeed,
		})
		switch {
		case errors.Is(err, errkind.Precondition): // another replica seeded it first
		case err != nil:
			return seeded, err
		default:
			seeded = append(seeded, e.Name)
		}
	}
	return seeded, nil
}

// putRoutes stores nt as the next version of env's table, provided the
// current version is base (any when base is 0 and the caller gave none),
// with audit events before and after.
func (s *Service) putRoutes(ctx context.Context, c Caller, p authz.Principal, action, env string, base int64, nt store.NewRouteTable) (RouteChange, error) {
	prev, err := s.rec.GetRouteTable(ctx, env, 0)
	switch {
	case errors.Is(err, errkind.NotFound):
		prev = store.RouteTable{Environment: env, Table: routing.Seed()}
	case err != nil:
		return RouteChange{}, err
	}
	if base > 0 && base != prev.Version {
		return RouteChange{}, errkind.Errorf(errkind.Precondition, "the routing table of %s is at version %d, not %d: read it again and reapply your change", env, prev.Version, base)
	}
	if action == ActionRoutesSeed && prev.Version != 0 {
		return RouteChange{}, errkind.Errorf(errkind.Precondition, "the routing table of %s exists", env)
	}
	nt.ActorKeyID, nt.ActorName, nt.BaseVersion = p.KeyID, p.Name, prev.Version
	resource := routesResource(env, prev.Version+1) // the version the base check makes it
	detail := map[string]string{"previous_version": strconv.FormatInt(prev.Version, 10), "kind": string(nt.Kind)}
	if nt.RestoredVersion != 0 {
		detail["restored_version"] = strconv.FormatInt(nt.RestoredVersion, 10)
	}
	if changes := routing.Diff(prev.Table, nt.Table); len(changes) > 0 {
		detail["changes"] = strings.Join(changes, "; ")
	}
	if err := s.auditor.append(ctx, event(ctx, c, p, action, resource, OutcomeStarted, copyDetail(detail))); err != nil {
		return RouteChange{}, err // fail closed: nothing is stored without its audit record
	}
	rt, err := s.rec.PutRouteTable(ctx, nt)
	if err != nil {
		detail["error"] = err.Error()
		if errors.Is(err, errkind.Precondition) {
			err = errkind.Errorf(errkind.Precondition, "the routing table of %s changed while this change was made; read it again and reapply your change: %w", env, err)
		}
		if aerr := s.auditor.append(ctx, event(ctx, c, p, action, resource, OutcomeFailure, detail)); aerr != nil {
			s.log.ErrorContext(ctx, "audit a failed routing table change", "environment", env, "err", aerr.Error())
		}
		return RouteChange{}, err
	}
	detail["version"] = strconv.FormatInt(rt.Version, 10)
	if err := s.auditor.append(ctx, event(ctx, c, p, action, resource, OutcomeSuccess, detail)); err != nil {
		return RouteChange{Routes: rt, Previous: prev.Version}, err
	}
	s.log.InfoContext(ctx, "routing table changed", "environment", env, "version", rt.Version, "previous", prev.Version,
		"kind", rt.Kind, "actor", p.KeyID)
	return RouteChange{Routes: rt, Previous: prev.Version}, nil
}

// checkTable normalizes and validates t, naming an invalid entry as the
// request field "table.<entry>".
func checkTable(t routing.Table) (routing.Table, error) {
	t = t.Normalize()
	if err := t.Validate(); err != nil {
		var fe *routing.FieldError
		if errors.As(err, &fe) {
			return t, invalid("table."+fe.Field, "%s", fe.Reason)
		}
		return t, err
	}
	return t, nil
}

// routesResource names a version of env's routing table in audit events:
// "routes/<env>/<version>".
func routesResource(env string, version int64) string {
	return fmt.Sprintf("routes/%s/%d", env, version)
}

func copyDetail(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
