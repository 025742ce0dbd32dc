-- Jobs: the runs of digital twins (package jobs). The row is the truth
-- about a job; a queued task carries only its id, and a worker claims the
-- job by a conditional update of this row before it runs it.
-- inputs, request, exception and usage are JSON, NULL when there are
-- none; results is a JSON array of <collection>/<item> strings. created,
-- updated, started and finished are integer microseconds since the Unix
-- epoch, UTC; started and finished are NULL until the job starts or
-- ends. Ids compare with SQLite's default BINARY collation: byte order,
-- as in the PostgreSQL store, and job ids order by creation time, so the
-- newest job has the largest id.

CREATE TABLE jobs (
	id                TEXT PRIMARY KEY,
	process           TEXT NOT NULL,
	twin_collection   TEXT NOT NULL,
	twin_item         TEXT NOT NULL,
	twin_etag         TEXT NOT NULL,
	owner             TEXT NOT NULL,
	twin_owner        TEXT NOT NULL,
	batch             TEXT NOT NULL DEFAULT '',
	inputs            TEXT,
	request           TEXT,
	idempotency_key   TEXT NOT NULL DEFAULT '',
	request_hash      TEXT NOT NULL DEFAULT '',
	status            TEXT NOT NULL
		CHECK (status IN ('accepted', 'running', 'successful', 'failed', 'dismissed')),
	message           TEXT NOT NULL DEFAULT '',
	progress          INTEGER NOT NULL,
	attempt           INTEGER NOT NULL DEFAULT 0 CHECK (attempt >= 0),
	max_attempts      INTEGER NOT NULL,
	worker            TEXT NOT NULL DEFAULT '',
	dismiss_requested INTEGER NOT NULL DEFAULT 0 CHECK (dismiss_requested IN (0, 1)),
	created           INTEGER NOT NULL,
	updated           INTEGER NOT NULL,
	started           INTEGER,
	finished          INTEGER,
	results           TEXT NOT NULL DEFAULT '[]',
	exception         TEXT,
	usage             TEXT,
	-- The bytes of text in the job's log, and whether it was cut.
	log_bytes         INTEGER NOT NULL DEFAULT 0,
	log_truncated     INTEGER NOT NULL DEFAULT 0
);

-- One job per idempotency key of an owner: a repeated submission finds
-- the job its first one made. Jobs without a key are not constrained.
CREATE UNIQUE INDEX jobs_idempotency_idx ON jobs (owner, idempotency_key) WHERE idempotency_key <> '';

-- Listings, newest first: a user's own runs and the runs of the twins
-- the user owns (the two arms of the visibility filter), a batch's jobs
-- and a process's jobs.
CREATE INDEX jobs_owner_idx ON jobs (owner, id);
CREATE INDEX jobs_twin_owner_idx ON jobs (twin_owner, id);
CREATE INDEX jobs_batch_idx ON jobs (batch, id);
CREATE INDEX jobs_process_idx ON jobs (process, id);

-- The reconciler's scan (PendingJobs): accepted jobs, and running ones
-- being dismissed, by the time they were last touched.
CREATE INDEX jobs_pending_idx ON jobs (status, updated);

-- The lines a job's phases wrote, bounded per job (jobs.log_bytes).
CREATE TABLE job_logs (
	seq     INTEGER PRIMARY KEY AUTOINCREMENT,
	job     TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
	attempt INTEGER NOT NULL,
	phase   TEXT NOT NULL,
	stream  TEXT NOT NULL,
	time    INTEGER NOT NULL,
	text    TEXT NOT NULL
);

CREATE INDEX job_logs_job_idx ON job_logs (job, seq);
