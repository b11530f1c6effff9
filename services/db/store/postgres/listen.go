package postgres

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/dot-do/platform/services/db/store"
	"github.com/dot-do/platform/services/db/store/internal/sqlstore"
)

// Timing of the listener.
const (
	// listenPing is how long the listener waits for a notification before
	// it checks its connection with a ping: a connection lost without a
	// word (a dead peer) is noticed within this, plus pingTimeout.
	listenPing  = 15 * time.Second
	pingTimeout = 5 * time.Second
	// maxListenBackoff bounds the wait between two attempts to connect.
	maxListenBackoff = 5 * time.Second
	// listenWait bounds how long Subscribe waits for the listener's first
	// LISTEN.
	listenWait = 5 * time.Second
)

// listener runs LISTEN on a connection of its own and publishes what it
// hears to the engine's subscribers.
type listener struct {
	once   sync.Once
	mu     sync.Mutex
	cancel context.CancelFunc
	done   chan struct{}
	// ready is closed when the listener first listens.
	ready     chan struct{}
	readyOnce sync.Once
}

// Subscribe implements store.Notifier. The first call starts the listener,
// and every call returns once the listener listens (or after listenWait,
// when the database cannot be reached), so that the changes committed from
// then on are announced. Every time the listener (re)connects, subscribers
// get a store.Change with Resync set, since changes made while no
// connection listened were not heard.
func (db *DB) Subscribe(fn func(store.Change)) func() {
	cancel := db.Engine.Subscribe(fn)
	db.l.once.Do(func() {
		ctx, stop := context.WithCancel(context.Background())
		db.l.mu.Lock()
		db.l.cancel, db.l.done, db.l.ready = stop, make(chan struct{}), make(chan struct{})
		db.l.mu.Unlock()
		go func() {
			defer close(db.l.done)
			db.listen(ctx)
		}()
	})
	db.l.mu.Lock()
	ready := db.l.ready
	db.l.mu.Unlock()
	t := time.NewTimer(listenWait)
	defer t.Stop()
	select {
	case <-ready:
	case <-t.C:
	}
	return cancel
}

func (l *listener) stop() {
	l.mu.Lock()
	cancel, done := l.cancel, l.done
	l.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}

// listen keeps a LISTEN connection until ctx is done, reconnecting with
// backoff.
func (db *DB) listen(ctx context.Context) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		heard, err := db.listenOnce(ctx)
		if ctx.Err() != nil {
			return
		}
		if heard {
			backoff = 100 * time.Millisecond
		}
		slog.Warn("postgres: the change listener lost its connection; reconnecting", "err", err.Error(), "in", backoff.String())
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, maxListenBackoff)
	}
}

// listenOnce connects, listens and publishes until the connection fails;
// it reports whether it got as far as listening.
func (db *DB) listenOnce(ctx context.Context) (bool, error) {
	conn, err := pgx.ConnectConfig(ctx, db.pool.Config().ConnConfig.Copy())
	if err != nil {
		return false, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{db.channel}.Sanitize()); err != nil {
		return false, err
	}
	db.l.readyOnce.Do(func() { close(db.l.ready) })
	db.Publish(store.Change{Resync: true})
	for {
		wctx, cancel := context.WithTimeout(ctx, listenPing)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		switch {
		case err == nil:
			c, derr := sqlstore.DecodeChange(n.Payload)
			if derr != nil {
				slog.Warn("postgres: ignoring a change notification", "err", derr.Error())
				continue
			}
			db.Publish(c)
		case ctx.Err() != nil:
			return true, ctx.Err()
		case errors.Is(err, context.DeadlineExceeded):
			pctx, cancel := context.WithTimeout(ctx, pingTimeout)
			err = conn.Ping(pctx)
			cancel()
			if err != nil {
				return true, err
			}
		default:
			return true, err
		}
	}
}
