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
	ApiKeys
	Leases
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
	// returns ErrInvalidArgument.
	//
	// A rollback (Kind == KindRollback) must name a RestoredVersion of the
	// same (Environment, Service) that went live at some point; when its
	// ScriptSHA256 is empty the script fields are copied from that version.
	BeginDeployment(ctx context.Context, nd NewDeployment) (d Deployment, created bool, err error)
	// CompleteDeployment moves a pending deployment to live or failed. When
	// it goes live, the deployment of the same (Environment, Service) that
	// was live becomes superseded in the same transaction. Any other
	// transition returns ErrFailedPrecondition; an outcome other than live or
	// failed returns ErrInvalidArgument.
	CompleteDeployment(ctx context.Context, id string, outcome Outcome) (Deployment, error)
	// GetDeployment returns the deployment with the given id.
	GetDeployment(ctx context.Context, id string) (Deployment, error)
	// GetDeploymentByVersion returns version of (environment, service).
	GetDeploymentByVersion(ctx context.Context, environment, service string, version int64) (Deployment, error)
	// GetLive returns the live deployment of (environment, service), or
	// ErrNotFound when nothing is live.
	GetLive(ctx context.Context, environment, service string) (Deployment, error)
	// ListDeployments returns one page of deployments matching f, newest
	// first, and the token of the next page ("" on the last page).
	ListDeployments(ctx context.Context, f ListFilter) (items []Deployment, nextPageToken string, err error)
	// ListPending returns every pending deployment, oldest first, for a
	// start-up reconciler.
	ListPending(ctx context.Context) ([]Deployment, error)
}

// Blobs stores script bundles, content-addressed by SHA-256.
type Blobs interface {
	// PutBlob stores data and returns its lowercase hex SHA-256. Storing
	// bytes that are already present writes nothing (a stored copy that no
	// longer matches its hash is repaired).
	PutBlob(ctx context.Context, data []byte) (sha256Hex string, err error)
	// GetBlob returns the bytes whose SHA-256 is sha256Hex. It returns
	// ErrNotFound when absent and ErrCorrupt when the stored bytes no longer
	// hash to sha256Hex.
	GetBlob(ctx context.Context, sha256Hex string) ([]byte, error)
}

// Audit is an append-only, hash-chained audit log.
type Audit interface {
	// AppendAudit appends e to the log and returns it with Seq, Time,
	// PrevHash and Hash filled in. Appends are serialized across processes,
	// so the chain never forks.
	AppendAudit(ctx context.Context, e AuditEvent) (AuditEvent, error)
	// ListAudit returns one page of events matching f, newest first, and
	// the token of the next page ("" on the last page).
	ListAudit(ctx context.Context, f AuditFilter) (items []AuditEvent, nextPageToken string, err error)
	// VerifyAudit walks the whole chain and reports the first broken link.
	// A broken chain is reported in the result, not as an error.
	VerifyAudit(ctx context.Context) (VerifyResult, error)
}

// ApiKeys stores API key records for the auth service. Only the SHA-256 of
// a key's secret is stored.
type ApiKeys interface {
	// CreateApiKey stores k. It returns ErrAlreadyExists when k.KeyID is
	// taken. RevokedAt, LastUsedAt and ReplacedBy are ignored.
	CreateApiKey(ctx context.Context, k ApiKey) (ApiKey, error)
	// CreateBootstrapApiKey stores the first admin key, with CreatedBy set
	// to "bootstrap". It returns ErrAlreadyExists when an active admin key
	// (not revoked, not expired at k.CreatedAt) exists; two concurrent calls
	// cannot both succeed.
	CreateBootstrapApiKey(ctx context.Context, k ApiKey) (ApiKey, error)
	// RotateApiKey atomically stores newKey, marks oldKeyID as replaced by
	// it and makes oldKeyID expire at graceUntil (now when zero) unless it
	// already expires earlier.
	RotateApiKey(ctx context.Context, oldKeyID string, newKey ApiKey, graceUntil time.Time) (oldKey, created ApiKey, err error)
	// GetApiKey returns the key with the given public id.
	GetApiKey(ctx context.Context, keyID string) (ApiKey, error)
	// ListApiKeys returns the keys, oldest first, including revoked ones
	// only when includeRevoked is set.
	ListApiKeys(ctx context.Context, includeRevoked bool) ([]ApiKey, error)
	// RevokeApiKey marks the key revoked at at (now when zero). Revoking a
	// revoked key returns ErrFailedPrecondition.
	RevokeApiKey(ctx context.Context, keyID string, at time.Time) (ApiKey, error)
	// SetApiKeyExpiry sets when the key expires; a zero at removes the
	// expiry. It returns ErrFailedPrecondition for a revoked key.
	SetApiKeyExpiry(ctx context.Context, keyID string, at time.Time) (ApiKey, error)
	// TouchApiKey records that the key was used at at (now when zero). It
	// never moves LastUsedAt backwards and writes nothing in that case.
	TouchApiKey(ctx context.Context, keyID string, at time.Time) error
}

// Leases are named, expiring locks held in the database, used to serialize
// work (for example the deploys of one environment and service, see
// DeployLeaseName) across processes sharing the database.
type Leases interface {
	// AcquireLease takes the lease name for holder until now+ttl. It
	// returns ErrLeaseHeld when another holder has an unexpired lease. The
	// same holder acquiring again extends its lease; an expired or released
	// lease can be taken by anyone, which increments its Token.
	AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (Lease, error)
	// RenewLease extends holder's unexpired lease to now+ttl. It returns
	// ErrLeaseHeld when another holder owns the lease, ErrFailedPrecondition
	// when holder's lease expired or was released, and ErrNotFound when the
	// lease never existed.
	RenewLease(ctx context.Context, name, holder string, ttl time.Duration) (Lease, error)
	// ReleaseLease gives up holder's lease. It returns ErrLeaseHeld when
	// another holder owns it and ErrNotFound when it never existed;
	// releasing a lease nobody holds is a no-op.
	ReleaseLease(ctx context.Context, name, holder string) error
	// GetLease returns the current state of the lease name (Holder is empty
	// once released).
	GetLease(ctx context.Context, name string) (Lease, error)
}
