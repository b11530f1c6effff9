-- dotdo persistence store, schema v4: a deployment's worker configuration
-- (vars, service bindings, cron triggers) as a JSON object, '' for none.
ALTER TABLE deployments ADD COLUMN config TEXT NOT NULL DEFAULT '';
