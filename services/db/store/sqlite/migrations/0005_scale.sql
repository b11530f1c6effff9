-- dotdo persistence store, SQLite schema v5: indexes that keep every
-- ListDeployments filter an index range scan in seq order however long the
-- history grows (bench/scale/control measures them at 1M rows), and the
-- verified checkpoints of the audit chain.

-- ListDeployments orders by seq DESC under any combination of the
-- environment, service and status filters; each combination gets an index
-- ending in seq, so a page reads only its own rows (deployments_service_seq,
-- deployments_status_seq and deployments_env_service_seq of v1 cover three).
CREATE INDEX deployments_env_seq ON deployments (environment, seq);
CREATE INDEX deployments_env_status_seq ON deployments (environment, status, seq);
CREATE INDEX deployments_service_status_seq ON deployments (service, status, seq);
CREATE INDEX deployments_env_service_status_seq ON deployments (environment, service, status, seq);

-- A checkpoint records that the chain verified from event 1 up to event
-- seq, whose MAC was hash; mac is AuditCheckpointMAC under the audit key,
-- which the database does not hold, so nobody who can only write the
-- database can add one. A verification resumes from the newest valid one.
CREATE TABLE audit_checkpoints (
	seq INTEGER PRIMARY KEY,
	hash TEXT NOT NULL,
	mac TEXT NOT NULL,
	created_at INTEGER NOT NULL
);
