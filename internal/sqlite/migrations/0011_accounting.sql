-- Accounting: per-user job limits, usage reports, and the expiry policy.

-- The per-user job limits count a user's jobs that are not final
-- (CountActiveJobs) on every submission: this index holds only those.
CREATE INDEX jobs_active_idx ON jobs (owner, status) WHERE status IN ('accepted', 'running');

-- Usage reports add up the usage records of the jobs that finished in a
-- time range: everyone's (admins) or one user's.
CREATE INDEX jobs_usage_idx ON jobs (finished) WHERE finished IS NOT NULL AND usage IS NOT NULL;
CREATE INDEX jobs_owner_usage_idx ON jobs (owner, finished) WHERE finished IS NOT NULL AND usage IS NOT NULL;

-- job_quotas holds the users whose limit on running or on queued
-- (accepted) jobs overrides the node's default; 0 is unlimited. A user
-- without a row for a kind gets the default.
CREATE TABLE job_quotas (
	user_id   TEXT NOT NULL CHECK (user_id <> ''),
	kind      TEXT NOT NULL CHECK (kind IN ('running', 'queued')),
	job_limit INTEGER NOT NULL CHECK (job_limit >= 0),
	PRIMARY KEY (user_id, kind)
) WITHOUT ROWID;

-- The expiry policy's scan (ExpiredItems): the items that may still
-- expire, by the time they do, in Unix seconds (with a fraction). The
-- catalog accepts only RFC 3339 timestamps in `expires`; upper() lets
-- SQLite read a lower-case t or z as well. A query must use the same
-- expression to use the index.
CREATE INDEX items_expires_idx ON items (unixepoch(upper(json_extract(content, '$.properties.expires')), 'subsec'), collection, id)
	WHERE state IN ('draft', 'published', 'deprecated') AND content IS NOT NULL
	AND json_type(content, '$.properties.expires') = 'text';
