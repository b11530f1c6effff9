package store

import (
	"context"
	"time"
)

// Store is the whole persistence contract of the platform. Implementations
// are safe for concurrent use by many goroutines and by several processes
// sharing one database.
type Store interface {
	Deployments
	Blobs
	Audit
	APIKeys
	Leases
	RouteTables
	DispatchWorkers
	// Close releases the connections held by the store.
	Close() error
}

// Deployments records deployments and their lifecycle.
type Deployments interface {
	// BeginDeployment allocates the next version of (Environment, Service),
	// starting at 1 and never reusing a version, and records a pending
	// deployment. When both ActorKeyID and IdempotencyKey are set and that
	// pair was already used, it returns the deployment recorded the first
	// time with created == false and writes nothing; reusing the pair for a
	// different environment, service, kind, restored version or script
	// returns errkind.Invalid.
	//
	// A rollback (Kind == KindRollback) must name a RestoredVersion of the
	// same (Environment, Service) that went live at some point; when its
	// ScriptSHA256 is empty the script fields are copied from that version.
	BeginDeployment(ctx context.Context, nd NewDeployment) (d Deployment, created bool, err error)
	// CompleteDeployment moves a pending deployment to live or failed. When
	// it goes live, the deployment of the same (Environment, Service) that
	// was live becomes superseded in the same transaction. Any other
	// transition returns errkind.Precondition; an outcome other than live or
	// failed returns errkind.Invalid. When outcome.Lease is set, the
	// deploy lease of the deployment's (Environment, Service) must be held,
	// unexpired, by that holder with that token, checked in the same
	// transaction: a holder that lost the lease gets errkind.Precondition
	// and changes nothing.
	CompleteDeployment(ctx context.Context, id string, outcome Outcome) (Deployment, error)
	// GetDeployment returns the deployment with the given id.
	GetDeployment(ctx context.Context, id string) (Deployment, error)
	// GetDeploymentByVersion returns version of (environment, service).
	GetDeploymentByVersion(ctx context.Context, environment, service string, version int64) (Deployment, error)
	// GetLive returns the live deployment of (environment, service), or
	// errkind.NotFound when nothing is live.
	GetLive(ctx context.Context, environment, service string) (Deployment, error)
	// ListDeployments returns one page of deployments matching f, newest
	// first, and the token of the next page ("" on the last page).
	ListDeployments(ctx context.Context, f ListFilter) (items []Deployment, nextPageToken string, err error)
	// ListPending returns one page of pending deployments, oldest first,
	// for a reconciler, and the token of the next page ("" on the last
	// page). Paging is exact: a deployment committed while a caller pages
	// is either on a later page or was begun after the listing started
	// (versions, and the order of the listing, follow commit order).
	ListPending(ctx context.Context, page Page) (items []Deployment, nextPageToken string, err error)
}

// Blobs stores script bundles, content-addressed by SHA-256.
type Blobs interface {
	// PutBlob stores data and returns its lowercase hex SHA-256. Storing
	// bytes that are already present writes nothing (a stored copy that no
	// longer matches its hash is repaired).
	PutBlob(ctx context.Context, data []byte) (sha256Hex string, err error)
	// GetBlob returns the bytes whose SHA-256 is sha256Hex. It returns
	// errkind.NotFound when absent and errkind.Corrupt when the stored bytes no longer
	// hash to sha256Hex.
	GetBlob(ctx context.Context, sha256Hex string) ([]byte, error)
}

// Audit is an append-only, hash-chained audit log. A store given an audit
// key (WithAuditKey) links the events with MACs under that key, which the
// database does not hold.
type Audit interface {
	// AppendAudit appends e to the log and returns it with Seq, Time,
	// PrevHash and Hash filled in. Appends are serialized across processes,
	// so the chain never forks.
	AppendAudit(ctx context.Context, e AuditEvent) (AuditEvent, error)
	// ListAudit returns one page of events matching f, newest first, and
	// the token of the next page ("" on the last page).
	ListAudit(ctx context.Context, f AuditFilter) (items []AuditEvent, nextPageToken string, err error)
	// VerifyAudit walks the whole chain and reports the first broken link.
	// A broken chain is reported in the result, not as an error. When head
	// is not nil, the chain must also hold the event head names, with
	// head's Hash: a chain cut back past an exported head fails.
	VerifyAudit(ctx context.Context, head *AuditHead) (VerifyResult, error)
	// AuditHead returns the seq and Hash of the last event.
	AuditHead(ctx context.Context) (AuditHead, error)
}

// APIKeys stores API key records for the auth service. Only the hash of a
// key's secret is stored. Records returned are the caller's to keep: a store
// neither retains nor shares the slices of the records passed to it or
// returned by it.
type APIKeys interface {
	// CreateAPIKey stores k. It returns errkind.Exists when k.KeyID is
	// taken. RevokedAt, LastUsedAt and ReplacedBy are ignored. Every key
	// creation (here, in CreateBootstrapAPIKey and in RotateAPIKey) appends
	// an audit event (ActionAPIKeyStored) in the same transaction, whoever
	// calls: a key is never stored unaudited.
	CreateAPIKey(ctx context.Context, k APIKey) (APIKey, error)
	// CreateBootstrapAPIKey stores the first admin key, with CreatedBy set
	// to "bootstrap". It returns errkind.Exists when an active admin key
	// (not revoked, not expired at k.CreatedAt; restricted to some
	// environments or not) exists; two concurrent calls cannot both
	// succeed.
	CreateBootstrapAPIKey(ctx context.Context, k APIKey) (APIKey, error)
	// RotateAPIKey atomically stores newKey, marks oldKeyID as replaced by
	// it and makes oldKeyID expire at graceUntil (now when zero) unless it
	// already expires earlier, and returns both records as stored. It
	// returns errkind.NotFound for a missing old key, errkind.Precondition
	// when the old key is revoked or already replaced (so two concurrent
	// rotations cannot both succeed) and errkind.Exists when newKey's id is
	// taken; on failure nothing changes.
	RotateAPIKey(ctx context.Context, oldKeyID string, newKey APIKey, graceUntil time.Time) (oldKey, created APIKey, err error)
	// GetAPIKey returns the key with the given public id, or
	// errkind.NotFound.
	GetAPIKey(ctx context.Context, keyID string) (APIKey, error)
	// ListAPIKeys returns the keys ordered by CreatedAt, then KeyID,
	// including revoked ones only when includeRevoked is set (expired ones
	// always).
	ListAPIKeys(ctx context.Context, includeRevoked bool) ([]APIKey, error)
	// RevokeAPIKey marks the key revoked at at (now when zero) and returns
	// it. Revoking a revoked key succeeds and changes nothing: the first
	// revocation time stays. A missing key is errkind.NotFound.
	RevokeAPIKey(ctx context.Context, keyID string, at time.Time) (APIKey, error)
	// SetAPIKeyExpiry sets when the key expires; a zero at removes the
	// expiry. It returns errkind.Precondition for a revoked key and
	// errkind.NotFound for a missing one.
	SetAPIKeyExpiry(ctx context.Context, keyID string, at time.Time) (APIKey, error)
	// TouchAPIKey records that the key was used at at (now when zero). It
	// never moves LastUsedAt backwards and writes nothing in that case. A
	// missing key is errkind.NotFound.
	TouchAPIKey(ctx context.Context, keyID string, at time.Time) error
}

// Leases are named, expiring locks held in the database, used to serialize
// work (for example the deploys of one environment and service, see
// DeployLeaseName) across processes sharing the database.
type Leases interface {
	// AcquireLease takes the lease name for holder until now+ttl. It
	// returns errkind.Conflict when another holder has an unexpired lease. The
	// same holder acquiring again extends its lease; an expired or released
	// lease can be taken by anyone, which increments its Token.
	AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (Lease, error)
	// RenewLease extends holder's unexpired lease to now+ttl. It returns
	// errkind.Conflict when another holder owns the lease, errkind.Precondition
	// when holder's lease expired or was released, and errkind.NotFound when the
	// lease never existed.
	RenewLease(ctx context.Context, name, holder string, ttl time.Duration) (Lease, error)
	// ReleaseLease gives up holder's lease. It returns errkind.Conflict when
	// another holder owns it and errkind.NotFound when it never existed;
	// releasing a lease nobody holds is a no-op.
	ReleaseLease(ctx context.Context, name, holder string) error
	// GetLease returns the current state of the lease name (Holder is empty
	// once released).
	GetLease(ctx context.Context, name string) (Lease, error)
}
