package sqlstore

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/dot-do/platform/internal/errkind"
	"github.com/dot-do/platform/services/db/store"
)

// Engine implements store.Store on top of a Driver.
type Engine struct {
	d       Driver
	dialect Dialect
	opts    store.Options
	feed    feed
}

var _ store.Notifier = (*Engine)(nil)

// New returns an engine using d, whose schema must be migrated already.
func New(d Driver, opts store.Options) *Engine {
	return &Engine{d: d, dialect: d.Dialect(), opts: opts}
}

// Close closes the driver.
func (e *Engine) Close() error { return e.d.Close() }

func (e *Engine) now() time.Time { return store.Timestamp(e.opts.Now()) }

// micros converts t to the stored representation.
func micros(t time.Time) int64 { return t.UnixMicro() }

// nullMicros converts an optional time to the stored representation.
func nullMicros(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMicro()
}

func fromMicros(v int64) time.Time { return time.UnixMicro(v).UTC() }

func fromNullMicros(v *int64) time.Time {
	if v == nil {
		return time.Time{}
	}
	return fromMicros(*v)
}

func marshalJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		// Only maps of strings and slices of strings are marshalled.
		panic(fmt.Sprintf("sqlstore: marshal %T: %v", v, err))
	}
	return string(b)
}

func unmarshalStrings(s, what string) ([]string, error) {
	var v []string
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		return nil, fmt.Errorf("decode %s: %v: %w", what, err, errkind.Corrupt)
	}
	if len(v) == 0 {
		return nil, nil
	}
	return v, nil
}

func unmarshalMap(s, what string) (map[string]string, error) {
	var v map[string]string
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		return nil, fmt.Errorf("decode %s: %v: %w", what, err, errkind.Corrupt)
	}
	if len(v) == 0 {
		return nil, nil
	}
	return v, nil
}

func stringsJSON(v []string) string {
	if len(v) == 0 {
		return "[]"
	}
	return marshalJSON(v)
}

func mapJSON(v map[string]string) string {
	if len(v) == 0 {
		return "{}"
	}
	return marshalJSON(v)
}
