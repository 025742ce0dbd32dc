-- Batches (package jobs): many jobs of one process from one request, a
-- list of input sets or a sweep over parameter values. The jobs keep the
-- batch's id (jobs.batch); a batch's counts are those of its jobs.
-- request is the batch request as submitted (JSON); created and updated
-- are integer microseconds since the Unix epoch, UTC.

CREATE TABLE batches (
	id                 TEXT PRIMARY KEY,
	process            TEXT NOT NULL,
	owner              TEXT NOT NULL,
	twin_owner         TEXT NOT NULL,
	total              INTEGER NOT NULL CHECK (total >= 1),
	-- How many of the batch's jobs may be queued or run at once; 0 is
	-- no limit.
	max_parallel       INTEGER NOT NULL DEFAULT 0 CHECK (max_parallel >= 0),
	request            TEXT NOT NULL,
	results_collection TEXT NOT NULL,
	created            INTEGER NOT NULL,
	updated            INTEGER NOT NULL
);

CREATE INDEX batches_owner_idx ON batches (owner, id);
CREATE INDEX batches_twin_owner_idx ON batches (twin_owner, id);

-- A job of a batch with a parallelism limit waits, held, until a slot of
-- its batch is free: it is accepted but not queued, and the reconciler
-- leaves it alone.
ALTER TABLE jobs ADD COLUMN held INTEGER NOT NULL DEFAULT 0 CHECK (held IN (0, 1));

-- A batch's counts by status, and its held jobs in order.
CREATE INDEX jobs_batch_status_idx ON jobs (batch, status, held, id);
