package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/dot-do/platform/internal/errkind"
	"github.com/dot-do/platform/services/db/store"
)

const deploymentCols = `seq, id, environment, service, namespace, version, status, kind, restored_version,
	script_sha256, script_size, main_module, compatibility_date, tags, metadata,
	actor_key_id, actor_name, idempotency_key, created_at, finished_at, error_message, superseded_by, config`

// The idempotency index predicate; repeated verbatim in ON CONFLICT so the
// database can match the partial unique index.
const idempotencyPredicate = `actor_key_id <> '' AND idempotency_key <> ''`

func scanDeployment(r interface{ Scan(...any) error }) (seq int64, d store.Deployment, err error) {
	var (
		status, kind, tags, metadata string
		createdAt                    int64
		finishedAt                   *int64
	)
	err = r.Scan(&seq, &d.ID, &d.Environment, &d.Service, &d.Namespace, &d.Version, &status, &kind, &d.RestoredVersion,
		&d.ScriptSHA256, &d.ScriptSize, &d.MainModule, &d.CompatibilityDate, &tags, &metadata,
		&d.ActorKeyID, &d.ActorName, &d.IdempotencyKey, &createdAt, &finishedAt, &d.Error, &d.SupersededBy, &d.Config)
	if err != nil {
		return 0, d, err
	}
	d.Status, d.Kind = store.Status(status), store.Kind(kind)
	d.CreatedAt, d.FinishedAt = fromMicros(createdAt), fromNullMicros(finishedAt)
	if d.Tags, err = unmarshalStrings(tags, "deployment "+d.ID+" tags"); err != nil {
		return 0, d, err
	}
	if d.Metadata, err = unmarshalMap(metadata, "deployment "+d.ID+" metadata"); err != nil {
		return 0, d, err
	}
	return seq, d, nil
}

// queryDeployment returns the single deployment selected by where, or an
// error wrapping errkind.NotFound described by what.
func (e *Engine) queryDeployment(ctx context.Context, q Queryer, what, where string, args ...any) (store.Deployment, error) {
	_, d, err := scanDeployment(q.QueryRow(ctx, `SELECT `+deploymentCols+` FROM deployments WHERE `+where, args...))
	if errors.Is(err, ErrNoRows) {
		return d, fmt.Errorf("%s: %w", what, errkind.NotFound)
	}
	if err != nil {
		return d, fmt.Errorf("%s: %w", what, err)
	}
	return d, nil
}

func (e *Engine) queryDeployments(ctx context.Context, q Queryer, query string, args ...any) (seqs []int64, ds []store.Deployment, err error) {
	rows, err := q.Query(ctx, query, args...)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	for rows.Next() {
		seq, d, err := scanDeployment(rows)
		if err != nil {
			return nil, nil, err
		}
		seqs, ds = append(seqs, seq), append(ds, d)
	}
	return seqs, ds, rows.Err()
}

// GetDeployment implements store.Deployments.
func (e *Engine) GetDeployment(ctx context.Context, id string) (store.Deployment, error) {
	return e.queryDeployment(ctx, e.d.Reader(), fmt.Sprintf("deployment %q", id), getDeploymentWhere, id)
}

// GetDeploymentByVersion implements store.Deployments.
func (e *Engine) GetDeploymentByVersion(ctx context.Context, environment, service string, version int64) (store.Deployment, error) {
	return e.queryDeployment(ctx, e.d.Reader(),
		fmt.Sprintf("version %d of service %q in environment %q", version, service, environment),
		`environment = ? AND service = ? AND version = ?`, environment, service, version)
}

// GetLive implements store.Deployments.
func (e *Engine) GetLive(ctx context.Context, environment, service string) (store.Deployment, error) {
	return e.queryDeployment(ctx, e.d.Reader(),
		fmt.Sprintf("live deployment of service %q in environment %q", service, environment),
		`environment = ? AND service = ? AND status = 'live'`, environment, service)
}

// ListPending implements store.Deployments. The keyset is seq, which
// BeginDeployment allocates in commit order (see seqLock), so a deployment
// that commits after a page was read cannot have a seq below that page's.
func (e *Engine) ListPending(ctx context.Context, p store.Page) ([]store.Deployment, string, error) {
	fp := fingerprint("pending")
	after, err := decodeToken(p.PageToken, tokenPending, fp)
	if err != nil {
		return nil, "", err
	}
	size := store.PageSize(p.PageSize)
	seqs, ds, err := e.queryDeployments(ctx, e.d.Reader(),
		`SELECT `+deploymentCols+` FROM deployments WHERE status = 'pending' AND seq > ? ORDER BY seq LIMIT ?`, after, size+1)
	if err != nil {
		return nil, "", fmt.Errorf("list pending deployments: %w", err)
	}
	if len(ds) <= size {
		return ds, "", nil
	}
	return ds[:size], encodeToken(tokenPending, fp, seqs[size-1]), nil
}

// seqLock serializes the transactions that insert deployments, from before
// their seq is drawn until they commit, so that seqs become visible in
// order: the keysets of ListPending and ListDeployments never skip a row
// that committed late. (PostgreSQL draws an identity value when the row is
// inserted, not when it commits; on SQLite writers are serialized anyway.)
const seqLock = "deployments/seq"

// ListDeployments implements store.Deployments.
func (e *Engine) ListDeployments(ctx context.Context, f store.ListFilter) ([]store.Deployment, string, error) {
	q, args, fp, err := ListDeploymentsQuery(f)
	if err != nil {
		return nil, "", err
	}
	size := store.PageSize(f.PageSize)
	seqs, ds, err := e.queryDeployments(ctx, e.d.Reader(), q, args...)
	if err != nil {
		return nil, "", fmt.Errorf("list deployments: %w", err)
	}
	if len(ds) <= size {
		return ds, "", nil
	}
	return ds[:size], encodeToken(tokenDeployments, fp, seqs[size-1]), nil
}

// ListDeploymentsQuery returns the statement (placeholders '?') and
// arguments with which ListDeployments reads the page f asks for, one row
// more than the page to learn whether another follows, and the fingerprint
// of f's filter. The page token is a keyset (seq < the last seq seen),
// never an OFFSET, so a deep page costs what the first does. It is
// exported for the tests that check the plan of every filter shape.
func ListDeploymentsQuery(f store.ListFilter) (query string, args []any, fp uint32, err error) {
	if f.Status != "" && !f.Status.Valid() {
		return "", nil, 0, fmt.Errorf("unknown status %q: %w", f.Status, errkind.Invalid)
	}
	fp = fingerprint(f.Service, f.Environment, string(f.Status))
	after, err := decodeToken(f.PageToken, tokenDeployments, fp)
	if err != nil {
		return "", nil, 0, err
	}
	var where []string
	for _, c := range []struct{ col, v string }{{"service", f.Service}, {"environment", f.Environment}, {"status", string(f.Status)}} {
		if c.v != "" {
			where, args = append(where, c.col+" = ?"), append(args, c.v)
		}
	}
	if after > 0 {
		where, args = append(where, "seq < ?"), append(args, after)
	}
	query = `SELECT ` + deploymentCols + ` FROM deployments`
	if len(where) > 0 {
		query += ` WHERE ` + strings.Join(where, " AND ")
	}
	query += ` ORDER BY seq DESC LIMIT ?`
	return query, append(args, store.PageSize(f.PageSize)+1), fp, nil
}

// GetDeploymentQuery is the statement (placeholder '?': the id) with which
// GetDeployment reads a deployment, exported for the plan tests.
const GetDeploymentQuery = `SELECT ` + deploymentCols + ` FROM deployments WHERE ` + getDeploymentWhere

const getDeploymentWhere = `id = ?`

// errReplay makes InTx roll back a transaction that lost an idempotency race.
var errReplay = errors.New("idempotent replay")

// BeginDeployment implements store.Deployments.
func (e *Engine) BeginDeployment(ctx context.Context, nd store.NewDeployment) (store.Deployment, bool, error) {
	nd, err := nd.Normalize()
	if err != nil {
		return store.Deployment{}, false, err
	}
	idempotent := nd.ActorKeyID != "" && nd.IdempotencyKey != ""
	if idempotent {
		// Fast path for retries: no write transaction at all.
		if d, found, err := e.findIdempotent(ctx, e.d.Reader(), nd); found || err != nil {
			return d, false, err
		}
	}
	var (
		out    store.Deployment
		replay bool
	)
	err = e.d.InTx(ctx, func(tx Queryer) error {
		replay = false
		if err := e.d.LockTx(ctx, tx, seqLock); err != nil {
			return err
		}
		if idempotent {
			if d, found, err := e.findIdempotent(ctx, tx, nd); found || err != nil {
				out, replay = d, found
				return err
			}
		}
		if nd.Kind == store.KindRollback {
			if err := e.resolveRollback(ctx, tx, &nd); err != nil {
				return err
			}
		}
		now := e.now()
		var version int64
		// The upsert locks the counter row of (environment, service) until
		// the transaction ends, so versions are allocated one at a time and a
		// version is never handed out twice, even when its deployment fails.
		err := tx.QueryRow(ctx, `INSERT INTO deployment_counters (environment, service, last_version) VALUES (?, ?, 1)
ON CONFLICT (environment, service) DO UPDATE SET last_version = deployment_counters.last_version + 1
RETURNING last_version`, nd.Environment, nd.Service).Scan(&version)
		if err != nil {
			return fmt.Errorf("allocate version: %w", err)
		}
		d := store.Deployment{
			ID: store.NewID("dep", now), Service: nd.Service, Environment: nd.Environment, Namespace: nd.Namespace,
			Version: version, Status: store.StatusPending, Kind: nd.Kind, RestoredVersion: nd.RestoredVersion,
			ScriptSHA256: nd.ScriptSHA256, ScriptSize: nd.ScriptSize, MainModule: nd.MainModule,
			CompatibilityDate: nd.CompatibilityDate, Tags: nd.Tags, Metadata: nd.Metadata, Config: nd.Config,
			ActorKeyID: nd.ActorKeyID, ActorName: nd.ActorName, IdempotencyKey: nd.IdempotencyKey, CreatedAt: now,
		}
		n, err := tx.Exec(ctx, `INSERT INTO deployments (id, environment, service, namespace, version, status, kind,
	restored_version, script_sha256, script_size, main_module, compatibility_date, tags, metadata,
	actor_key_id, actor_name, idempotency_key, created_at, config)
VALUES (?, ?, ?, ?, ?, 'pending', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (actor_key_id, idempotency_key) WHERE `+idempotencyPredicate+` DO NOTHING`,
			d.ID, d.Environment, d.Service, d.Namespace, d.Version, string(d.Kind),
			d.RestoredVersion, d.ScriptSHA256, d.ScriptSize, d.MainModule, d.CompatibilityDate,
			stringsJSON(d.Tags), mapJSON(d.Metadata), d.ActorKeyID, d.ActorName, d.IdempotencyKey, micros(d.CreatedAt), d.Config)
		if err != nil {
			return fmt.Errorf("insert deployment: %w", err)
		}
		if n == 0 {
			// A concurrent transaction committed the same idempotency key
			// (PostgreSQL waits for it before DO NOTHING). Return its
			// deployment and roll back our version allocation.
			d, found, err := e.findIdempotent(ctx, tx, nd)
			if err != nil {
				return err
			}
			if !found {
				return fmt.Errorf("idempotency key conflict without a visible deployment")
			}
			out, replay = d, true
			return errReplay
		}
		out = d
		return nil
	})
	if errors.Is(err, errReplay) {
		err = nil
	}
	if err != nil {
		return store.Deployment{}, false, fmt.Errorf("begin deployment of service %q in environment %q: %w", nd.Service, nd.Environment, err)
	}
	return out, !replay, nil
}

// findIdempotent looks for the deployment recorded under nd's idempotency
// key. A match made for a different request is errkind.Invalid.
func (e *Engine) findIdempotent(ctx context.Context, q Queryer, nd store.NewDeployment) (store.Deployment, bool, error) {
	d, err := e.queryDeployment(ctx, q, "idempotent deployment",
		`actor_key_id = ? AND idempotency_key = ? AND `+idempotencyPredicate, nd.ActorKeyID, nd.IdempotencyKey)
	if errors.Is(err, errkind.NotFound) {
		return d, false, nil
	}
	if err != nil {
		return d, false, err
	}
	if d.Environment != nd.Environment || d.Service != nd.Service || d.Kind != nd.Kind ||
		d.RestoredVersion != nd.RestoredVersion || (nd.ScriptSHA256 != "" && nd.ScriptSHA256 != d.ScriptSHA256) {
		return store.Deployment{}, false, fmt.Errorf("idempotency key %q was used for a different deployment (%s): %w",
			nd.IdempotencyKey, d.ID, errkind.Invalid)
	}
	return d, true, nil
}

// resolveRollback checks the restored version of a rollback and fills in
// the script fields nd leaves empty.
func (e *Engine) resolveRollback(ctx context.Context, tx Queryer, nd *store.NewDeployment) error {
	target, err := e.queryDeployment(ctx, tx,
		fmt.Sprintf("rollback target: version %d of service %q in environment %q", nd.RestoredVersion, nd.Service, nd.Environment),
		`environment = ? AND service = ? AND version = ?`, nd.Environment, nd.Service, nd.RestoredVersion)
	if err != nil {
		return err
	}
	if target.Status != store.StatusLive && target.Status != store.StatusSuperseded {
		return fmt.Errorf("rollback target %s (version %d) is %s, it never went live: %w",
			target.ID, target.Version, target.Status, errkind.Precondition)
	}
	if nd.ScriptSHA256 == "" {
		nd.ScriptSHA256, nd.ScriptSize = target.ScriptSHA256, target.ScriptSize
		if nd.MainModule == "" {
			nd.MainModule = target.MainModule
		}
		if nd.CompatibilityDate == "" {
			nd.CompatibilityDate = target.CompatibilityDate
		}
		if nd.Config == "" {
			nd.Config = target.Config
		}
	}
	return nil
}

// CompleteDeployment implements store.Deployments.
func (e *Engine) CompleteDeployment(ctx context.Context, id string, outcome store.Outcome) (store.Deployment, error) {
	outcome, err := outcome.Normalize()
	if err != nil {
		return store.Deployment{}, fmt.Errorf("complete deployment %q: %w", id, err)
	}
	var out store.Deployment
	err = e.d.InTx(ctx, func(tx Queryer) error {
		what := fmt.Sprintf("deployment %q", id)
		d, err := e.queryDeployment(ctx, tx, what, `id = ?`, id)
		if err != nil {
			return err
		}
		// Lock (environment, service) first - the same row BeginDeployment
		// locks - so concurrent completions of one service are serialized and
		// the supersede below sees the deployment that is live now.
		var last int64
		if err := tx.QueryRow(ctx, `SELECT last_version FROM deployment_counters WHERE environment = ? AND service = ?`+e.dialect.ForUpdate,
			d.Environment, d.Service).Scan(&last); err != nil {
			return fmt.Errorf("lock service %q in environment %q: %w", d.Service, d.Environment, err)
		}
		if d, err = e.queryDeployment(ctx, tx, what, `id = ?`+e.dialect.ForUpdate, id); err != nil {
			return err
		}
		if d.Status != store.StatusPending {
			return fmt.Errorf("deployment %s is %s, only a pending deployment can become %s: %w",
				id, d.Status, outcome.Status, errkind.Precondition)
		}
		now := e.now()
		if f := outcome.Lease; f != nil {
			if err := e.checkFence(ctx, tx, store.DeployLeaseName(d.Environment, d.Service), *f, now); err != nil {
				return fmt.Errorf("complete deployment %s: %w", id, err)
			}
		}
		if outcome.Status == store.StatusLive {
			if _, err := tx.Exec(ctx, `UPDATE deployments SET status = 'superseded', superseded_by = ?
WHERE environment = ? AND service = ? AND status = 'live'`, id, d.Environment, d.Service); err != nil {
				return fmt.Errorf("supersede live deployment: %w", err)
			}
		}
		n, err := tx.Exec(ctx, `UPDATE deployments SET status = ?, finished_at = ?, error_message = ? WHERE id = ? AND status = 'pending'`,
			string(outcome.Status), micros(now), outcome.Error, id)
		if err != nil {
			return fmt.Errorf("mark deployment %s: %w", outcome.Status, err)
		}
		if n != 1 {
			return fmt.Errorf("deployment %s changed concurrently: %w", id, errkind.Precondition)
		}
		d.Status, d.FinishedAt, d.Error = outcome.Status, now, outcome.Error
		out = d
		if outcome.Status == store.StatusLive {
			return e.announce(ctx, tx, store.Change{Environment: d.Environment, Service: d.Service})
		}
		return nil
	})
	if err != nil {
		return store.Deployment{}, fmt.Errorf("complete deployment: %w", err)
	}
	if out.Status == store.StatusLive {
		e.committed(store.Change{Environment: out.Environment, Service: out.Service})
	}
	return out, nil
}

// checkFence returns errkind.Precondition unless the lease name is held at
// now by f.Holder with token f.Token. It locks the lease row until tx ends,
// so the lease cannot change hands before the transaction commits.
func (e *Engine) checkFence(ctx context.Context, tx Queryer, name string, f store.LeaseFence, now time.Time) error {
	l, err := scanLease(tx.QueryRow(ctx, `SELECT `+leaseCols+` FROM leases WHERE name = ?`+e.dialect.ForUpdate, name))
	if errors.Is(err, ErrNoRows) {
		return fmt.Errorf("lease %q was never taken, so holder %q does not hold it: %w", name, f.Holder, errkind.Precondition)
	}
	if err != nil {
		return fmt.Errorf("read lease %q: %w", name, err)
	}
	if l.Holder != f.Holder || l.Token != f.Token || !l.Held(now) {
		return fmt.Errorf("the deploy lease %q is no longer held by %q with token %d (now %q, token %d, expires %s): a later deploy took over: %w",
			name, f.Holder, f.Token, l.Holder, l.Token, l.ExpiresAt.Format(time.RFC3339Nano), errkind.Precondition)
	}
	return nil
}
