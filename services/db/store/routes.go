package store

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/dot-do/platform/internal/errkind"
	"github.com/dot-do/platform/internal/names"
	"github.com/dot-do/platform/internal/routing"
)

// RouteTables stores the routing table of each environment, versioned: a
// change never overwrites a version, it adds the next one.
type RouteTables interface {
	// PutRouteTable records nt.Table as the next version of the
	// environment's route table (from 1) and returns it. With
	// nt.BaseVersion other than AnyVersion, the current version must be
	// nt.BaseVersion (0: none stored) or it returns errkind.Precondition
	// and stores nothing. A rollback must name a RestoredVersion that
	// exists. The table must be valid (routing.Table.Validate): an invalid
	// one is errkind.Invalid naming the entry.
	PutRouteTable(ctx context.Context, nt NewRouteTable) (RouteTable, error)
	// GetRouteTable returns version of the environment's route table, the
	// current one when version is 0, or errkind.NotFound.
	GetRouteTable(ctx context.Context, environment string, version int64) (RouteTable, error)
	// ListRouteTables returns one page of the versions of an environment's
	// route table, newest first, and the token of the next page ("" on the
	// last).
	ListRouteTables(ctx context.Context, f RouteTableFilter) (items []RouteTable, nextPageToken string, err error)
}

// RouteTableKind says how a version of a route table came to be.
type RouteTableKind string

// The kinds of route table versions.
const (
	// RouteTableSeed is the initial table the platform stores for an
	// environment that has none (routing.Seed).
	RouteTableSeed RouteTableKind = "seed"
	// RouteTableSet is a table set by an operator.
	RouteTableSet RouteTableKind = "set"
	// RouteTableRollback restores an earlier version's table.
	RouteTableRollback RouteTableKind = "rollback"
)

// Valid reports whether k is one of the defined kinds.
func (k RouteTableKind) Valid() bool {
	switch k {
	case RouteTableSeed, RouteTableSet, RouteTableRollback:
		return true
	}
	return false
}

// AnyVersion is the NewRouteTable.BaseVersion that checks nothing.
const AnyVersion = -1

// RouteTable is one version of an environment's route table.
type RouteTable struct {
	Environment string
	// Version counts the environment's tables from 1.
	Version int64
	// Table is the routing table, normalized and valid.
	Table routing.Table
	Kind  RouteTableKind
	// RestoredVersion is the version a rollback restores (0 otherwise).
	RestoredVersion int64
	ActorKeyID      string
	ActorName       string
	CreatedAt       time.Time
}

// NewRouteTable is the input of PutRouteTable.
type NewRouteTable struct {
	Environment string
	Table       routing.Table
	Kind        RouteTableKind
	// RestoredVersion is required for a rollback and 0 otherwise.
	RestoredVersion int64
	ActorKeyID      string
	ActorName       string
	// BaseVersion is the version that must be current for the put to
	// happen (0: none stored), or AnyVersion.
	BaseVersion int64
}

// Normalize returns nt with its table normalized, or an error of kind
// errkind.Invalid (a *routing.FieldError for an invalid table).
func (nt NewRouteTable) Normalize() (NewRouteTable, error) {
	if !names.ValidEnvironment(nt.Environment) {
		return nt, fmt.Errorf("environment %q is not an environment name: %w", nt.Environment, errkind.Invalid)
	}
	if !nt.Kind.Valid() {
		return nt, fmt.Errorf("unknown route table kind %q: %w", nt.Kind, errkind.Invalid)
	}
	if (nt.Kind == RouteTableRollback) != (nt.RestoredVersion > 0) || nt.RestoredVersion < 0 {
		return nt, fmt.Errorf("a rollback, and only a rollback, restores a version (kind %s, restored version %d): %w", nt.Kind, nt.RestoredVersion, errkind.Invalid)
	}
	if nt.BaseVersion < AnyVersion {
		return nt, fmt.Errorf("base version %d: %w", nt.BaseVersion, errkind.Invalid)
	}
	for _, f := range []struct{ name, v string }{{"actor key id", nt.ActorKeyID}, {"actor name", nt.ActorName}} {
		if err := checkName(f.name, f.v, false); err != nil {
			return nt, err
		}
	}
	nt.Table = nt.Table.Normalize()
	if err := nt.Table.Validate(); err != nil {
		return nt, err
	}
	return nt, nil
}

// RouteTableFilter selects the versions ListRouteTables returns.
type RouteTableFilter struct {
	// Environment is required.
	Environment string
	// PageSize defaults to DefaultPageSize and is capped at MaxPageSize.
	PageSize int
	// PageToken is the nextPageToken of the previous page.
	PageToken string
}

// DispatchWorkers records the deployments of each environment's dispatch
// Worker, the account-level script generated from its route table.
type DispatchWorkers interface {
	// BeginDispatchWorkerDeployment allocates the next version of the
	// environment's dispatch Worker (from 1, never reused) and records a
	// pending deployment. Deployments of the environment still pending are
	// recorded failed first: their deploy stopped before recording an
	// outcome, and this one uploads the Worker again. A rollback must name
	// a RestoredVersion that went live at some point (else
	// errkind.Precondition).
	BeginDispatchWorkerDeployment(ctx context.Context, nd NewDispatchWorkerDeployment) (DispatchWorkerDeployment, error)
	// CompleteDispatchWorkerDeployment moves a pending deployment to live
	// (the live one of the environment becomes superseded) or failed. Any
	// other transition returns errkind.Precondition.
	CompleteDispatchWorkerDeployment(ctx context.Context, id string, o Outcome) (DispatchWorkerDeployment, error)
	// GetDispatchWorkerDeployment returns version of the environment's
	// dispatch Worker, or errkind.NotFound.
	GetDispatchWorkerDeployment(ctx context.Context, environment string, version int64) (DispatchWorkerDeployment, error)
	// ListDispatchWorkerDeployments returns one page of the environment's
	// dispatch Worker deployments, newest first, and the next page's token.
	ListDispatchWorkerDeployments(ctx context.Context, f DispatchWorkerFilter) (items []DispatchWorkerDeployment, nextPageToken string, err error)
}

// DispatchWorkerDeployment is one upload of an environment's dispatch
// Worker.
type DispatchWorkerDeployment struct {
	// ID is "dwd_" + a ULID.
	ID          string
	Environment string
	// Version counts the environment's dispatch Worker deployments from 1.
	Version         int64
	Status          Status
	Kind            Kind
	RestoredVersion int64
	// RouteTableVersion is the route table version the Worker was
	// generated from.
	RouteTableVersion int64
	ScriptName        string
	// ScriptSHA256 names the module, a stored blob.
	ScriptSHA256      string
	CompatibilityDate string
	// Routes are the Workers route patterns attached to the script.
	Routes []string
	// Crons are the script's cron triggers, by expression, and the
	// workers each one runs.
	Crons      []CronTrigger
	ActorKeyID string
	ActorName  string
	CreatedAt  time.Time
	FinishedAt time.Time
	Error      string
}

// NewDispatchWorkerDeployment is the input of BeginDispatchWorkerDeployment.
type NewDispatchWorkerDeployment struct {
	Environment string
	// Kind defaults to KindDeploy.
	Kind Kind
	// RestoredVersion is required for a rollback and 0 otherwise.
	RestoredVersion   int64
	RouteTableVersion int64
	ScriptName        string
	ScriptSHA256      string
	CompatibilityDate string
	Routes            []string
	// Crons are the script's cron triggers; a rollback restores those of
	// the version it restores.
	Crons      []CronTrigger
	ActorKeyID string
	ActorName  string
}

// CronTrigger is a cron trigger of a dispatch Worker: the expression and
// the workers of the environment whose scheduled() handlers it runs.
type CronTrigger struct {
	Cron    string
	Workers []string
}

// MaxDispatchWorkerRoutes bounds the routes of a dispatch Worker.
const MaxDispatchWorkerRoutes = 64

// MaxDispatchWorkerCrons bounds the cron triggers of a dispatch Worker
// (Cloudflare's per-account maximum, see routing.MaxWorkerCrons).
const MaxDispatchWorkerCrons = 250

// MaxCronTriggerWorkers bounds the workers of one cron trigger.
const MaxCronTriggerWorkers = 1000

// Normalize returns nd with defaults applied, or an error of kind
// errkind.Invalid.
func (nd NewDispatchWorkerDeployment) Normalize() (NewDispatchWorkerDeployment, error) {
	if !names.ValidEnvironment(nd.Environment) {
		return nd, fmt.Errorf("environment %q is not an environment name: %w", nd.Environment, errkind.Invalid)
	}
	if !names.ValidScript(nd.ScriptName) {
		return nd, fmt.Errorf("script name %q is not a script name: %w", nd.ScriptName, errkind.Invalid)
	}
	if nd.Kind == "" {
		nd.Kind = KindDeploy
	}
	switch {
	case nd.Kind != KindDeploy && nd.Kind != KindRollback:
		return nd, fmt.Errorf("unknown deployment kind %q: %w", nd.Kind, errkind.Invalid)
	case (nd.Kind == KindRollback) != (nd.RestoredVersion > 0) || nd.RestoredVersion < 0:
		return nd, fmt.Errorf("a rollback, and only a rollback, restores a version: %w", errkind.Invalid)
	case nd.RouteTableVersion < 0:
		return nd, fmt.Errorf("negative route table version: %w", errkind.Invalid)
	case !ValidSHA256(nd.ScriptSHA256):
		return nd, fmt.Errorf("script sha256 %q is not 64 hex digits: %w", nd.ScriptSHA256, errkind.Invalid)
	case len(nd.Routes) > MaxDispatchWorkerRoutes:
		return nd, fmt.Errorf("%d routes, more than %d: %w", len(nd.Routes), MaxDispatchWorkerRoutes, errkind.Invalid)
	case len(nd.Crons) > MaxDispatchWorkerCrons:
		return nd, fmt.Errorf("crons: %d cron triggers, more than %d: %w", len(nd.Crons), MaxDispatchWorkerCrons, errkind.Invalid)
	}
	for _, f := range []struct{ name, v string }{
		{"compatibility date", nd.CompatibilityDate}, {"actor key id", nd.ActorKeyID}, {"actor name", nd.ActorName},
	} {
		if err := checkName(f.name, f.v, false); err != nil {
			return nd, err
		}
	}
	routes := make([]string, len(nd.Routes))
	for i, r := range nd.Routes {
		if err := checkName(fmt.Sprintf("route %d", i), r, true); err != nil {
			return nd, err
		}
		routes[i] = r
	}
	nd.Routes = routes
	crons := make([]CronTrigger, len(nd.Crons))
	for i, c := range nd.Crons {
		if err := checkName(fmt.Sprintf("crons[%d]", i), c.Cron, true); err != nil {
			return nd, err
		}
		if len(c.Workers) == 0 || len(c.Workers) > MaxCronTriggerWorkers {
			return nd, fmt.Errorf("crons[%d]: %d workers, want 1 to %d: %w", i, len(c.Workers), MaxCronTriggerWorkers, errkind.Invalid)
		}
		for _, w := range c.Workers {
			if !names.ValidService(w) {
				return nd, fmt.Errorf("crons[%d]: worker %q is not a service name: %w", i, w, errkind.Invalid)
			}
		}
		crons[i] = CronTrigger{Cron: c.Cron, Workers: slices.Clone(c.Workers)}
	}
	nd.Crons = crons
	return nd, nil
}

// DispatchWorkerFilter selects the deployments ListDispatchWorkerDeployments
// returns.
type DispatchWorkerFilter struct {
	// Environment is required.
	Environment string
	// PageSize defaults to DefaultPageSize and is capped at MaxPageSize.
	PageSize int
	// PageToken is the nextPageToken of the previous page.
	PageToken string
}

// Change is a committed change that the watchers of an environment's
// routing state care about (see Notifier).
type Change struct {
	// Environment is the environment that changed ("" with Resync).
	Environment string
	// Service is set when a deployment of the service went live.
	Service string
	// RouteTable is set when the environment's route table changed.
	RouteTable bool
	// Resync means changes may have been missed (a lost connection to the
	// database): every watcher must read its whole state again.
	Resync bool
}

// Notifier is implemented by the stores that announce their committed
// changes: the SQLite store to the subscribers in its process, the
// PostgreSQL store to the subscribers of every process that shares the
// database (LISTEN/NOTIFY).
type Notifier interface {
	// Subscribe calls fn for each change committed after Subscribe
	// returns, until the returned cancel is called (a store that cannot
	// promise it, its connection to the database being down, announces a
	// Resync once it can). fn must return quickly and not call the store;
	// it may be called from several goroutines at once.
	Subscribe(fn func(Change)) (cancel func())
}

// WatchEvent is one event of the watch of an environment's routing state
// (the db service's WatchEnvironment; remote.Store.WatchEnvironment).
type WatchEvent struct {
	// Snapshot says that Live and RouteTable are the environment's whole
	// state, which replaces everything before it.
	Snapshot bool
	// Live are live deployments: in a snapshot every one of the
	// environment, otherwise the one that just went live.
	Live []Deployment
	// RouteTable is the current route table: in a snapshot nil when none is
	// stored; otherwise, when set, the new current version.
	RouteTable *RouteTable
}
