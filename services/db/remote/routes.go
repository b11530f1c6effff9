package remote

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"

	dbv1 "github.com/dot-do/platform/gen/go/dotdo/db/v1"
	"github.com/dot-do/platform/internal/errkind"
	"github.com/dot-do/platform/services/db"
	"github.com/dot-do/platform/services/db/store"
)

// PutRouteTable implements store.RouteTables. The input is normalized (and
// the table validated) as the store would, so an invalid table is refused
// here with the entry named.
func (s *Store) PutRouteTable(ctx context.Context, nt store.NewRouteTable) (store.RouteTable, error) {
	nt, err := nt.Normalize()
	if err != nil {
		return store.RouteTable{}, err
	}
	res, err := call(ctx, s.client.PutRouteTable, db.NewRouteTableToProto(nt))
	if err != nil {
		return store.RouteTable{}, err
	}
	return db.RouteTableFromProto(res.GetRouteTable()), nil
}

// GetRouteTable implements store.RouteTables.
func (s *Store) GetRouteTable(ctx context.Context, environment string, version int64) (store.RouteTable, error) {
	res, err := call(ctx, s.client.GetRouteTable, &dbv1.GetRouteTableRequest{Environment: environment, Version: version})
	if err != nil {
		return store.RouteTable{}, err
	}
	return db.RouteTableFromProto(res.GetRouteTable()), nil
}

// ListRouteTables implements store.RouteTables.
func (s *Store) ListRouteTables(ctx context.Context, f store.RouteTableFilter) ([]store.RouteTable, string, error) {
	res, err := call(ctx, s.client.ListRouteTables, &dbv1.ListRouteTablesRequest{
		Environment: f.Environment, PageSize: int32(min(f.PageSize, store.MaxPageSize)), PageToken: f.PageToken,
	})
	if err != nil {
		return nil, "", err
	}
	out := make([]store.RouteTable, len(res.GetRouteTables()))
	for i, rt := range res.GetRouteTables() {
		out[i] = db.RouteTableFromProto(rt)
	}
	return out, res.GetNextPageToken(), nil
}

// BeginDispatchWorkerDeployment implements store.DispatchWorkers.
func (s *Store) BeginDispatchWorkerDeployment(ctx context.Context, nd store.NewDispatchWorkerDeployment) (store.DispatchWorkerDeployment, error) {
	nd, err := nd.Normalize()
	if err != nil {
		return store.DispatchWorkerDeployment{}, err
	}
	res, err := call(ctx, s.client.BeginDispatchWorkerDeployment, db.NewDispatchWorkerToProto(nd))
	if err != nil {
		return store.DispatchWorkerDeployment{}, err
	}
	return db.DispatchWorkerFromProto(res.GetDeployment()), nil
}

// CompleteDispatchWorkerDeployment implements store.DispatchWorkers.
func (s *Store) CompleteDispatchWorkerDeployment(ctx context.Context, id string, o store.Outcome) (store.DispatchWorkerDeployment, error) {
	o, err := o.Normalize()
	if err != nil {
		return store.DispatchWorkerDeployment{}, err
	}
	res, err := call(ctx, s.client.CompleteDispatchWorkerDeployment, &dbv1.CompleteDispatchWorkerDeploymentRequest{
		Id: id, Status: db.StatusToProto(o.Status), Error: o.Error,
	})
	if err != nil {
		return store.DispatchWorkerDeployment{}, err
	}
	return db.DispatchWorkerFromProto(res.GetDeployment()), nil
}

// GetDispatchWorkerDeployment implements store.DispatchWorkers.
func (s *Store) GetDispatchWorkerDeployment(ctx context.Context, environment string, version int64) (store.DispatchWorkerDeployment, error) {
	res, err := call(ctx, s.client.GetDispatchWorkerDeployment, &dbv1.GetDispatchWorkerDeploymentRequest{Environment: environment, Version: version})
	if err != nil {
		return store.DispatchWorkerDeployment{}, err
	}
	return db.DispatchWorkerFromProto(res.GetDeployment()), nil
}

// ListDispatchWorkerDeployments implements store.DispatchWorkers.
func (s *Store) ListDispatchWorkerDeployments(ctx context.Context, f store.DispatchWorkerFilter) ([]store.DispatchWorkerDeployment, string, error) {
	res, err := call(ctx, s.client.ListDispatchWorkerDeployments, &dbv1.ListDispatchWorkerDeploymentsRequest{
		Environment: f.Environment, PageSize: int32(min(f.PageSize, store.MaxPageSize)), PageToken: f.PageToken,
	})
	if err != nil {
		return nil, "", err
	}
	out := make([]store.DispatchWorkerDeployment, len(res.GetDeployments()))
	for i, d := range res.GetDeployments() {
		out[i] = db.DispatchWorkerFromProto(d)
	}
	return out, res.GetNextPageToken(), nil
}

// WatchSilence is how long WatchEnvironment waits for a message (an event
// or a heartbeat) before it takes the stream for dead.
const WatchSilence = 3 * db.WatchHeartbeat

// ErrWatchEnded is returned by WatchEnvironment when the stream ends or
// falls silent; its kind is Unavailable: watch again.
var ErrWatchEnded = errkind.New(errkind.Unavailable, "the watch of the db service ended")

// WatchEnvironment watches an environment's routing state (DBService's
// WatchEnvironment): it calls fn with the snapshot (received in parts of
// store.MaxPageSize live deployments and passed on whole), then with each change,
// until ctx is done (it returns ctx's error), fn returns an error (it
// returns it), or the stream fails, ends or stays silent for WatchSilence
// (an error of kind Unavailable). Heartbeats are not passed to fn. Each
// call opens a new stream, which starts with a snapshot: a caller that
// watches again after an error resyncs.
func (s *Store) WatchEnvironment(ctx context.Context, environment string, fn func(store.WatchEvent) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := s.client.WatchEnvironment(ctx, connect.NewRequest(&dbv1.WatchEnvironmentRequest{
		Environment: environment, SnapshotPageSize: store.MaxPageSize,
	}))
	if err != nil {
		return wrap(err)
	}
	defer stream.Close()
	var silent atomic.Bool
	idle := time.AfterFunc(WatchSilence, func() { silent.Store(true); cancel() })
	defer idle.Stop()
	var parts *store.WatchEvent // a snapshot whose parts are arriving
	for stream.Receive() {
		idle.Reset(WatchSilence)
		var ev store.WatchEvent
		if _, ok := stream.Msg().GetEvent().(*dbv1.WatchEnvironmentResponse_Snapshot); !ok && parts != nil {
			return fmt.Errorf("%w: another event arrived inside a snapshot", ErrWatchEnded)
		}
		switch e := stream.Msg().GetEvent().(type) {
		case *dbv1.WatchEnvironmentResponse_Snapshot:
			if parts == nil {
				parts = &store.WatchEvent{Snapshot: true}
				if rt := e.Snapshot.GetRouteTable(); rt != nil {
					t := db.RouteTableFromProto(rt)
					parts.RouteTable = &t
				}
			}
			parts.Live = append(parts.Live, deploymentsFromProto(e.Snapshot.GetLive())...)
			if e.Snapshot.GetMore() {
				continue
			}
			ev, parts = *parts, nil
		case *dbv1.WatchEnvironmentResponse_Live:
			ev.Live = []store.Deployment{db.DeploymentFromProto(e.Live)}
		case *dbv1.WatchEnvironmentResponse_RouteTable:
			t := db.RouteTableFromProto(e.RouteTable)
			ev.RouteTable = &t
		default: // a heartbeat, or an event this client does not know
			continue
		}
		if err := fn(ev); err != nil {
			return err
		}
	}
	switch err := stream.Err(); {
	case silent.Load():
		return fmt.Errorf("%w: nothing heard for %v", ErrWatchEnded, WatchSilence)
	case ctx.Err() != nil:
		return ctx.Err()
	case err == nil:
		return fmt.Errorf("%w: the stream ended", ErrWatchEnded)
	default:
		return fmt.Errorf("%w: %w", ErrWatchEnded, wrap(err))
	}
}
