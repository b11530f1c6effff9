package sqlstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/dot-do/platform/internal/errkind"
	"github.com/dot-do/platform/services/db/store"
)

const routeTableCols = `environment, version, table_json, kind, restored_version, actor_key_id, actor_name, created_at`

func scanRouteTable(r interface{ Scan(...any) error }) (store.RouteTable, error) {
	var (
		rt        store.RouteTable
		tableJSON string
		kind      string
		createdAt int64
	)
	if err := r.Scan(&rt.Environment, &rt.Version, &tableJSON, &kind, &rt.RestoredVersion, &rt.ActorKeyID, &rt.ActorName, &createdAt); err != nil {
		return rt, err
	}
	rt.Kind, rt.CreatedAt = store.RouteTableKind(kind), fromMicros(createdAt)
	if err := json.Unmarshal([]byte(tableJSON), &rt.Table); err != nil {
		return rt, fmt.Errorf("decode route table %s/%d: %v: %w", rt.Environment, rt.Version, err, errkind.Corrupt)
	}
	rt.Table = rt.Table.Normalize()
	return rt, nil
}

// currentRouteVersion returns the environment's current route table
// version, 0 when none is stored.
func currentRouteVersion(ctx context.Context, q Queryer, environment string) (int64, error) {
	var v int64
	err := q.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM route_tables WHERE environment = ?`, environment).Scan(&v)
	return v, err
}

// PutRouteTable implements store.RouteTables.
func (e *Engine) PutRouteTable(ctx context.Context, nt store.NewRouteTable) (store.RouteTable, error) {
	nt, err := nt.Normalize()
	if err != nil {
		return store.RouteTable{}, err
	}
	tableJSON, err := json.Marshal(nt.Table)
	if err != nil {
		return store.RouteTable{}, fmt.Errorf("encode route table: %w", err)
	}
	change := store.Change{Environment: nt.Environment, RouteTable: true}
	var out store.RouteTable
	err = e.d.InTx(ctx, func(tx Queryer) error {
		// One writer per environment at a time, in every process, so the
		// version read below is still the current one at insert.
		if err := e.d.LockTx(ctx, tx, "route_tables/"+nt.Environment); err != nil {
			return fmt.Errorf("lock the route table of %s: %w", nt.Environment, err)
		}
		cur, err := currentRouteVersion(ctx, tx, nt.Environment)
		if err != nil {
			return fmt.Errorf("read the route table version: %w", err)
		}
		if nt.BaseVersion != store.AnyVersion && nt.BaseVersion != cur {
			return fmt.Errorf("the route table of %s is at version %d, not %d: %w", nt.Environment, cur, nt.BaseVersion, errkind.Precondition)
		}
		if nt.Kind == store.RouteTableRollback && nt.RestoredVersion > cur {
			return fmt.Errorf("version %d of the route table of %s does not exist: %w", nt.RestoredVersion, nt.Environment, errkind.NotFound)
		}
		out = store.RouteTable{
			Environment: nt.Environment, Version: cur + 1, Table: nt.Table, Kind: nt.Kind,
			RestoredVersion: nt.RestoredVersion, ActorKeyID: nt.ActorKeyID, ActorName: nt.ActorName, CreatedAt: e.now(),
		}
		if _, err := tx.Exec(ctx, `INSERT INTO route_tables (`+routeTableCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			out.Environment, out.Version, string(tableJSON), string(out.Kind), out.RestoredVersion,
			out.ActorKeyID, out.ActorName, micros(out.CreatedAt)); err != nil {
			return fmt.Errorf("insert route table: %w", err)
		}
		return e.announce(ctx, tx, change)
	})
	if err != nil {
		return store.RouteTable{}, fmt.Errorf("put the route table of %s: %w", nt.Environment, err)
	}
	e.committed(change)
	return out, nil
}

// GetRouteTable implements store.RouteTables.
func (e *Engine) GetRouteTable(ctx context.Context, environment string, version int64) (store.RouteTable, error) {
	if version < 0 {
		return store.RouteTable{}, fmt.Errorf("route table version %d: %w", version, errkind.Invalid)
	}
	q, args := `SELECT `+routeTableCols+` FROM route_tables WHERE environment = ? ORDER BY version DESC LIMIT 1`, []any{environment}
	what := fmt.Sprintf("the route table of environment %q", environment)
	if version > 0 {
		q, args = `SELECT `+routeTableCols+` FROM route_tables WHERE environment = ? AND version = ?`, []any{environment, version}
		what = fmt.Sprintf("version %d of the route table of environment %q", version, environment)
	}
	rt, err := scanRouteTable(e.d.Reader().QueryRow(ctx, q, args...))
	if errors.Is(err, ErrNoRows) {
		return rt, fmt.Errorf("%s: %w", what, errkind.NotFound)
	}
	if err != nil {
		return rt, fmt.Errorf("%s: %w", what, err)
	}
	return rt, nil
}

// ListRouteTables implements store.RouteTables.
func (e *Engine) ListRouteTables(ctx context.Context, f store.RouteTableFilter) ([]store.RouteTable, string, error) {
	return listVersions(ctx, e, versionList[store.RouteTable]{
		what: "route tables", table: "route_tables", cols: routeTableCols, token: tokenRouteTables,
		scan: scanRouteTable, version: func(rt store.RouteTable) int64 { return rt.Version },
	}, f.Environment, f.PageToken, f.PageSize)
}

// versionList describes a table of per-environment versions for
// listVersions.
type versionList[T any] struct {
	what, table, cols string
	token             byte
	scan              func(interface{ Scan(...any) error }) (T, error)
	version           func(T) int64
}

// listVersions lists one page of an environment's rows of l.table, newest
// version first, with a token for the next page ("" on the last).
func listVersions[T any](ctx context.Context, e *Engine, l versionList[T], environment, pageToken string, pageSize int) ([]T, string, error) {
	if environment == "" {
		return nil, "", fmt.Errorf("list %s: an environment is required: %w", l.what, errkind.Invalid)
	}
	fp := fingerprint(environment)
	after, err := decodeToken(pageToken, l.token, fp)
	if err != nil {
		return nil, "", err
	}
	q, args := `SELECT `+l.cols+` FROM `+l.table+` WHERE environment = ?`, []any{environment}
	if after > 0 {
		q, args = q+` AND version < ?`, append(args, after)
	}
	size := store.PageSize(pageSize)
	q, args = q+` ORDER BY version DESC LIMIT ?`, append(args, size+1)
	rows, err := e.d.Reader().Query(ctx, q, args...)
	if err != nil {
		return nil, "", fmt.Errorf("list %s: %w", l.what, err)
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := l.scan(rows)
		if err != nil {
			return nil, "", fmt.Errorf("list %s: %w", l.what, err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("list %s: %w", l.what, err)
	}
	if len(out) <= size {
		return out, "", nil
	}
	return out[:size], encodeToken(l.token, fp, l.version(out[size-1])), nil
}
