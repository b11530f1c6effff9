-- dotdo persistence store, SQLite schema v3: route tables and dispatch
-- Worker deployments.

-- One row per version of an environment's route table; a change adds a
-- row, never updates one.
CREATE TABLE route_tables (
	environment TEXT NOT NULL,
	version INTEGER NOT NULL CHECK (version > 0),
	table_json TEXT NOT NULL,
	kind TEXT NOT NULL CHECK (kind IN ('seed', 'set', 'rollback')),
	restored_version INTEGER NOT NULL DEFAULT 0,
	actor_key_id TEXT NOT NULL DEFAULT '',
	actor_name TEXT NOT NULL DEFAULT '',
	created_at INTEGER NOT NULL,
	PRIMARY KEY (environment, version)
) WITHOUT ROWID;

-- One row per deployment of an environment's dispatch Worker.
CREATE TABLE dispatch_worker_deployments (
	id TEXT PRIMARY KEY,
	environment TEXT NOT NULL,
	version INTEGER NOT NULL CHECK (version > 0),
	status TEXT NOT NULL CHECK (status IN ('pending', 'live', 'failed', 'superseded')),
	kind TEXT NOT NULL CHECK (kind IN ('deploy', 'rollback')),
	restored_version INTEGER NOT NULL DEFAULT 0,
	route_table_version INTEGER NOT NULL DEFAULT 0,
	script_name TEXT NOT NULL,
	script_sha256 TEXT NOT NULL,
	compatibility_date TEXT NOT NULL DEFAULT '',
	routes TEXT NOT NULL DEFAULT '[]',
	actor_key_id TEXT NOT NULL DEFAULT '',
	actor_name TEXT NOT NULL DEFAULT '',
	created_at INTEGER NOT NULL,
	finished_at INTEGER, -- NULL while pending
	error_message TEXT NOT NULL DEFAULT '',
	UNIQUE (environment, version)
) WITHOUT ROWID;

-- At most one live dispatch Worker per environment.
CREATE UNIQUE INDEX dispatch_worker_deployments_one_live ON dispatch_worker_deployments (environment) WHERE status = 'live';
