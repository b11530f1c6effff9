package sqlstore

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/dot-do/platform/services/db/store"
)

// feed hands committed changes to the subscribers of a store.
type feed struct {
	mu   sync.Mutex
	next int
	subs map[int]func(store.Change)
}

func (f *feed) subscribe(fn func(store.Change)) func() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.subs == nil {
		f.subs = map[int]func(store.Change){}
	}
	id := f.next
	f.next++
	f.subs[id] = fn
	return func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		delete(f.subs, id)
	}
}

func (f *feed) publish(c store.Change) {
	f.mu.Lock()
	fns := make([]func(store.Change), 0, len(f.subs))
	for _, fn := range f.subs {
		fns = append(fns, fn)
	}
	f.mu.Unlock()
	for _, fn := range fns {
		fn(c)
	}
}

// Subscribe implements store.Notifier for the changes this engine commits
// (SQLite) or that its backend delivers with Publish (PostgreSQL, whose
// notifications come from every process sharing the database).
func (e *Engine) Subscribe(fn func(store.Change)) func() { return e.feed.subscribe(fn) }

// Publish hands c to the subscribers: the PostgreSQL backend calls it for
// each notification its listener receives.
func (e *Engine) Publish(c store.Change) { e.feed.publish(c) }

// changePayload is a change as sent in a notification.
type changePayload struct {
	Environment string `json:"e"`
	Service     string `json:"s,omitempty"`
	RouteTable  bool   `json:"r,omitempty"`
}

// EncodeChange returns the notification payload of c.
func EncodeChange(c store.Change) string {
	b, _ := json.Marshal(changePayload{Environment: c.Environment, Service: c.Service, RouteTable: c.RouteTable})
	return string(b)
}

// DecodeChange reads a notification payload.
func DecodeChange(payload string) (store.Change, error) {
	var p changePayload
	if err := json.Unmarshal([]byte(payload), &p); err != nil || p.Environment == "" {
		return store.Change{}, fmt.Errorf("malformed change notification %q", payload)
	}
	return store.Change{Environment: p.Environment, Service: p.Service, RouteTable: p.RouteTable}, nil
}

// announce makes c known to every process sharing the database when the
// transaction tx commits (PostgreSQL: NOTIFY, which is delivered on commit
// only); on a backend without notifications it does nothing, and
// committed publishes c in process instead.
func (e *Engine) announce(ctx context.Context, tx Queryer, c store.Change) error {
	if e.dialect.NotifyChannel == "" {
		return nil
	}
	if _, err := tx.Exec(ctx, `SELECT pg_notify(CAST(? AS TEXT), CAST(? AS TEXT))`, e.dialect.NotifyChannel, EncodeChange(c)); err != nil {
		return fmt.Errorf("notify the change: %w", err)
	}
	return nil
}

// committed publishes c in process once its transaction has committed, on
// a backend without notifications.
func (e *Engine) committed(c store.Change) {
	if e.dialect.NotifyChannel == "" {
		e.feed.publish(c)
	}
}
