-- Batches (package jobs): many jobs of one process from one request, a
-- list of input sets or a sweep over parameter values. The jobs keep the
-- batch's id (jobs.batch); a batch's counts are those of its jobs.

CREATE TABLE batches (
    -- A UUID ordered by creation time: listings page by it.
    id                 text COLLATE "C" PRIMARY KEY,
    process            text NOT NULL,
    owner              text NOT NULL,
    twin_owner         text NOT NULL,
    total              integer NOT NULL CHECK (total >= 1),
    -- How many of the batch's jobs may be queued or run at once; 0 is
    -- no limit.
    max_parallel       integer NOT NULL DEFAULT 0 CHECK (max_parallel >= 0),
    -- The batch request as submitted (process, inputs, sweep or input
    -- sets, mode).
    request            jsonb NOT NULL,
    results_collection text NOT NULL,
    created            timestamptz NOT NULL,
    updated            timestamptz NOT NULL
);

CREATE INDEX batches_owner_idx ON batches (owner, id);
CREATE INDEX batches_twin_owner_idx ON batches (twin_owner, id);

-- A job of a batch with a parallelism limit waits, held, until a slot of
-- its batch is free: it is accepted but not queued, and the reconciler
-- leaves it alone.
ALTER TABLE jobs ADD COLUMN held boolean NOT NULL DEFAULT false;

-- A batch's counts by status, and its held jobs in order.
CREATE INDEX jobs_batch_status_idx ON jobs (batch, status, held, id) WHERE batch <> '';

-- The reconciler's jobs: those not final and not held.
DROP INDEX jobs_pending_idx;
CREATE INDEX jobs_pending_idx ON jobs (updated, id) WHERE status IN ('accepted', 'running') AND NOT held;
