-- dotdo persistence store, schema v6: a dispatch Worker deployment's cron
-- triggers, a JSON array of {"cron": EXPR, "workers": [NAME, ...]}, so that
-- a rollback restores its schedules.
ALTER TABLE dispatch_worker_deployments ADD COLUMN crons TEXT NOT NULL DEFAULT '[]';
