package db

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"connectrpc.com/connect"

	dbv1 "github.com/dot-do/platform/gen/go/dotdo/db/v1"
	"github.com/dot-do/platform/internal/errkind"
	"github.com/dot-do/platform/internal/pbtime"
	"github.com/dot-do/platform/services/db/store"
)

// WatchHeartbeat is how often WatchEnvironment sends a heartbeat while it
// has nothing else to send; a watcher that hears nothing for a few of
// these may take the stream for dead.
const WatchHeartbeat = 15 * time.Second

// maxSnapshotPages bounds the pages of live deployments one snapshot reads
// (store.MaxPageSize each).
const maxSnapshotPages = 200

// ErrStopping ends the watches when the db service stops; the watchers
// reconnect to a replica (or to this one, restarted) and resync.
var ErrStopping = errkind.New(errkind.Unavailable, "the db service is stopping")

// pending collects the changes a watch has not sent yet. Changes coalesce:
// a burst of deploys of one service sends its live deployment once.
type pending struct {
	mu       sync.Mutex
	services map[string]bool
	routes   bool
	resync   bool
	ready    chan struct{}
}

func newPending() *pending {
	return &pending{services: map[string]bool{}, ready: make(chan struct{}, 1)}
}

// offer records c if it concerns environment; it never blocks.
func (p *pending) offer(environment string, c store.Change) {
	if !c.Resync && c.Environment != environment {
		return
	}
	p.mu.Lock()
	switch {
	case c.Resync:
		p.resync = true
	case c.RouteTable:
		p.routes = true
	case c.Service != "":
		p.services[c.Service] = true
	}
	p.mu.Unlock()
	select {
	case p.ready <- struct{}{}:
	default:
	}
}

// take returns what is pending and clears it.
func (p *pending) take() (services []string, routes, resync bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	services, routes, resync = slices.Sorted(maps.Keys(p.services)), p.routes, p.resync
	clear(p.services)
	p.routes, p.resync = false, false
	return services, routes, resync
}

// WatchEnvironment implements dbv1connect.DBServiceHandler: a snapshot, then
// the changes the store announces (see store.Notifier), coalesced, with a
// heartbeat every WatchHeartbeat while nothing changes. It ends with
// ErrStopping when the service stops.
func (h *handler) WatchEnvironment(ctx context.Context, req *connect.Request[dbv1.WatchEnvironmentRequest], stream *connect.ServerStream[dbv1.WatchEnvironmentResponse]) error {
	n, ok := h.store.(store.Notifier)
	if !ok {
		return errkind.Errorf(errkind.Internal, "db: store %T announces no changes", h.store)
	}
	env := req.Msg.GetEnvironment()
	p := newPending()
	// Subscribe before reading the snapshot, so that no change committed
	// after the snapshot's reads is missed (one before them may be sent
	// twice, which is harmless).
	defer n.Subscribe(func(c store.Change) { p.offer(env, c) })()
	if err := h.sendSnapshot(ctx, stream, env); err != nil {
		return err
	}
	beat := time.NewTicker(h.opts.heartbeat)
	defer beat.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-h.opts.stop:
			return ErrStopping
		case <-beat.C:
			if err := stream.Send(&dbv1.WatchEnvironmentResponse{Event: &dbv1.WatchEnvironmentResponse_Heartbeat{
				Heartbeat: &dbv1.Heartbeat{Time: pbtime.To(time.Now())},
			}}); err != nil {
				return err
			}
		case <-p.ready:
			services, routes, resync := p.take()
			if resync {
				if err := h.sendSnapshot(ctx, stream, env); err != nil {
					return err
				}
				continue
			}
			if routes {
				rt, err := h.store.GetRouteTable(ctx, env, 0)
				if err != nil {
					return fmt.Errorf("watch %s: read the route table: %w", env, err)
				}
				if err := stream.Send(&dbv1.WatchEnvironmentResponse{Event: &dbv1.WatchEnvironmentResponse_RouteTable{
					RouteTable: RouteTableToProto(rt),
				}}); err != nil {
					return err
				}
			}
			for _, svc := range services {
				d, err := h.store.GetLive(ctx, env, svc)
				if errors.Is(err, errkind.NotFound) {
					continue // superseded by nothing cannot happen; nothing to send
				}
				if err != nil {
					return fmt.Errorf("watch %s: read the live deployment of %s: %w", env, svc, err)
				}
				if err := stream.Send(&dbv1.WatchEnvironmentResponse{Event: &dbv1.WatchEnvironmentResponse_Live{
					Live: DeploymentToProto(d),
				}}); err != nil {
					return err
				}
			}
		}
	}
}

// sendSnapshot sends the environment's live deployments and current route
// table.
func (h *handler) sendSnapshot(ctx context.Context, stream *connect.ServerStream[dbv1.WatchEnvironmentResponse], env string) error {
	snap := &dbv1.EnvironmentSnapshot{}
	f := store.ListFilter{Environment: env, Status: store.StatusLive, PageSize: store.MaxPageSize}
	for page := 0; ; page++ {
		if page == maxSnapshotPages {
			return fmt.Errorf("watch %s: more than %d pages of live deployments", env, maxSnapshotPages)
		}
		items, next, err := h.store.ListDeployments(ctx, f)
		if err != nil {
			return fmt.Errorf("watch %s: list the live deployments: %w", env, err)
		}
		for _, d := range items {
			snap.Live = append(snap.Live, DeploymentToProto(d))
		}
		if next == "" {
			break
		}
		f.PageToken = next
	}
	rt, err := h.store.GetRouteTable(ctx, env, 0)
	switch {
	case err == nil:
		snap.RouteTable = RouteTableToProto(rt)
	case !errors.Is(err, errkind.NotFound):
		return fmt.Errorf("watch %s: read the route table: %w", env, err)
	}
	return stream.Send(&dbv1.WatchEnvironmentResponse{Event: &dbv1.WatchEnvironmentResponse_Snapshot{Snapshot: snap}})
}
