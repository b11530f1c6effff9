-- dotdo persistence store, SQLite schema v1.
-- Times are INTEGER Unix microseconds (UTC); JSON columns hold text.

-- One row per (environment, service): the last version handed out. Versions
-- are allocated by an upsert on this row, never by max()+1.
CREATE TABLE deployment_counters (
	environment TEXT NOT NULL,
	service TEXT NOT NULL,
	last_version INTEGER NOT NULL,
	PRIMARY KEY (environment, service)
) WITHOUT ROWID;

CREATE TABLE deployments (
	seq INTEGER PRIMARY KEY, -- insertion order, the keyset of ListDeployments
	id TEXT NOT NULL UNIQUE,
	environment TEXT NOT NULL,
	service TEXT NOT NULL,
	namespace TEXT NOT NULL DEFAULT '',
	version INTEGER NOT NULL CHECK (version > 0),
	status TEXT NOT NULL CHECK (status IN ('pending', 'live', 'failed', 'superseded')),
	kind TEXT NOT NULL CHECK (kind IN ('deploy', 'rollback')),
	restored_version INTEGER NOT NULL DEFAULT 0,
	script_sha256 TEXT NOT NULL,
	script_size INTEGER NOT NULL DEFAULT 0,
	main_module TEXT NOT NULL DEFAULT '',
	compatibility_date TEXT NOT NULL DEFAULT '',
	tags TEXT NOT NULL DEFAULT '[]',
	metadata TEXT NOT NULL DEFAULT '{}',
	actor_key_id TEXT NOT NULL DEFAULT '',
	actor_name TEXT NOT NULL DEFAULT '',
	idempotency_key TEXT NOT NULL DEFAULT '',
	created_at INTEGER NOT NULL,
	finished_at INTEGER, -- NULL while pending
	error_message TEXT NOT NULL DEFAULT '',
	superseded_by TEXT NOT NULL DEFAULT '',
	UNIQUE (environment, service, version),
	FOREIGN KEY (environment, service) REFERENCES deployment_counters (environment, service)
);

-- At most one live deployment per (environment, service), enforced here.
CREATE UNIQUE INDEX deployments_one_live ON deployments (environment, service) WHERE status = 'live';
CREATE UNIQUE INDEX deployments_idempotency ON deployments (actor_key_id, idempotency_key)
	WHERE actor_key_id <> '' AND idempotency_key <> '';
CREATE INDEX deployments_pending ON deployments (seq) WHERE status = 'pending';
CREATE INDEX deployments_env_service_seq ON deployments (environment, service, seq);
CREATE INDEX deployments_service_seq ON deployments (service, seq);
CREATE INDEX deployments_status_seq ON deployments (status, seq);

CREATE TABLE blobs (
	sha256 TEXT PRIMARY KEY,
	size INTEGER NOT NULL,
	data BLOB NOT NULL,
	created_at INTEGER NOT NULL
) WITHOUT ROWID;

-- The single chain head row: seq and hash of the last audit event.
-- AppendAudit updates it first, which serializes appenders.
CREATE TABLE audit_head (
	id INTEGER PRIMARY KEY CHECK (id = 1),
	seq INTEGER NOT NULL,
	hash TEXT NOT NULL
);
INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');

CREATE TABLE audit_events (
	seq INTEGER PRIMARY KEY,
	occurred_at INTEGER NOT NULL,
	actor TEXT NOT NULL,
	actor_name TEXT NOT NULL,
	action TEXT NOT NULL,
	resource TEXT NOT NULL,
	outcome TEXT NOT NULL,
	detail TEXT NOT NULL,
	request_id TEXT NOT NULL,
	trace_id TEXT NOT NULL,
	prev_hash TEXT NOT NULL,
	hash TEXT NOT NULL
);
CREATE INDEX audit_events_actor ON audit_events (actor, seq);
CREATE INDEX audit_events_action ON audit_events (action, seq);
CREATE INDEX audit_events_resource ON audit_events (resource, seq);
CREATE INDEX audit_events_occurred_at ON audit_events (occurred_at);

CREATE TABLE api_keys (
	key_id TEXT PRIMARY KEY,
	name TEXT NOT NULL DEFAULT '',
	role TEXT NOT NULL CHECK (role IN ('admin', 'deployer', 'viewer')),
	environments TEXT NOT NULL DEFAULT '[]',
	secret_hash BLOB NOT NULL CHECK (length(secret_hash) = 32),
	created_at INTEGER NOT NULL,
	created_by TEXT NOT NULL,
	expires_at INTEGER,
	revoked_at INTEGER,
	last_used_at INTEGER,
	replaced_by TEXT NOT NULL DEFAULT ''
) WITHOUT ROWID;
CREATE INDEX api_keys_active_admins ON api_keys (role) WHERE revoked_at IS NULL;

CREATE TABLE leases (
	name TEXT PRIMARY KEY,
	holder TEXT NOT NULL, -- '' once released
	token INTEGER NOT NULL,
	acquired_at INTEGER NOT NULL,
	expires_at INTEGER NOT NULL
) WITHOUT ROWID;
