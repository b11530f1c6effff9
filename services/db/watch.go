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

// maxSnapshotPages bounds the pages of live deployments (store.MaxPageSize
// each) of a snapshot sent as one message; a snapshot sent in parts has no
// bound.
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
	env, pageSize := req.Msg.GetEnvironment(), int(req.Msg.GetSnapshotPageSize())
	p := newPending()
	// Subscribe before reading the snapshot, so that no change committed
	// after the snapshot's reads is missed (one before them may be sent
	// twice, which is harmless).
	defer n.Subscribe(func(c store.Change) { p.offer(env, c) })()
	if err := h.sendSnapshot(ctx, stream, env, pageSize); err != nil {
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
				if err := h.sendSnapshot(ctx, stream, env, pageSize); err != nil {
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
// table: in one message, or, with pageSize > 0, in parts of at most
// pageSize live deployments, each sent as soon as it is read, so that
// neither this service nor the watcher holds a message that grows with the
// environment (EnvironmentSnapshot.more).
func (h *handler) sendSnapshot(ctx context.Context, stream *connect.ServerStream[dbv1.WatchEnvironmentResponse], env string, pageSize int) error {
	send := func(snap *dbv1.EnvironmentSnapshot) error {
		return stream.Send(&dbv1.WatchEnvironmentResponse{Event: &dbv1.WatchEnvironmentResponse_Snapshot{Snapshot: snap}})
	}
	snap := &dbv1.EnvironmentSnapshot{}
	rt, err := h.store.GetRouteTable(ctx, env, 0)
	switch {
	case err == nil:
		snap.RouteTable = RouteTableToProto(rt)
	case !errors.Is(err, errkind.NotFound):
		return fmt.Errorf("watch %s: read the route table: %w", env, err)
	}
	f := store.ListFilter{Environment: env, Status: store.StatusLive, PageSize: store.MaxPageSize}
	if pageSize > 0 {
		f.PageSize = pageSize
	}
	for page := 0; ; page++ {
		if pageSize == 0 && page == maxSnapshotPages {
			return fmt.Errorf("watch %s: more than %d pages of live deployments for one message: watch with a snapshot page size", env, maxSnapshotPages)
		}
		items, next, err := h.store.ListDeployments(ctx, f)
		if err != nil {
			return fmt.Errorf("watch %s: list the live deployments: %w", env, err)
		}
		for _, d := range items {
			snap.Live = append(snap.Live, DeploymentToProto(d))
		}
		if next == "" {
			return send(snap)
		}
		f.PageToken = next
		if pageSize > 0 {
			snap.More = true
			if err := send(snap); err != nil {
				return err
			}
			snap = &dbv1.EnvironmentSnapshot{}
		}
	}
}
