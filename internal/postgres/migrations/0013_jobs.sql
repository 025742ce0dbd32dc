-- Jobs (package jobs): one row per execution of a twin, the truth about
-- it; a queued task carries only the id.

CREATE TABLE jobs (
    -- A UUID ordered by creation time: listings page by it.
    id                text COLLATE "C" PRIMARY KEY,
    process           text NOT NULL,
    twin_collection   text NOT NULL,
    twin_item         text NOT NULL,
    twin_etag         text NOT NULL,
    owner             text NOT NULL,
    twin_owner        text NOT NULL,
    batch             text COLLATE "C" NOT NULL DEFAULT '',
    inputs            jsonb NOT NULL,
    request           jsonb,
    idempotency_key   text NOT NULL DEFAULT '',
    request_hash      text NOT NULL DEFAULT '',
    status            text NOT NULL CHECK (status IN ('accepted', 'running', 'successful', 'failed', 'dismissed')),
    message           text NOT NULL DEFAULT '',
    progress          integer NOT NULL DEFAULT -1,
    attempt           integer NOT NULL DEFAULT 0,
    max_attempts      integer NOT NULL,
    worker            text NOT NULL DEFAULT '',
    dismiss_requested boolean NOT NULL DEFAULT false,
    created           timestamptz NOT NULL,
    updated           timestamptz NOT NULL,
    started           timestamptz,
    finished          timestamptz,
    results           text[],
    exception         jsonb,
    usage             jsonb,
    -- The bytes of text in the job's log, and whether it was cut.
    log_bytes         bigint NOT NULL DEFAULT 0,
    log_truncated     boolean NOT NULL DEFAULT false
);

-- A repeated submission with the same Idempotency-Key returns the job it
-- made.
CREATE UNIQUE INDEX jobs_idempotency_idx ON jobs (owner, idempotency_key) WHERE idempotency_key <> '';

-- Listings: a user's runs, the runs of a user's twins, a batch's jobs, a
-- process's jobs, newest first.
CREATE INDEX jobs_owner_idx ON jobs (owner, id);
CREATE INDEX jobs_twin_owner_idx ON jobs (twin_owner, id);
CREATE INDEX jobs_batch_idx ON jobs (batch, id) WHERE batch <> '';
CREATE INDEX jobs_process_idx ON jobs (process, id);

-- The reconciler's jobs: those not final.
CREATE INDEX jobs_pending_idx ON jobs (updated, id) WHERE status IN ('accepted', 'running');

-- The lines a job's phases wrote, bounded per job (jobs.log_bytes).
CREATE TABLE job_logs (
    seq     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job     text COLLATE "C" NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    attempt integer NOT NULL,
    phase   text NOT NULL,
    stream  text NOT NULL,
    time    timestamptz NOT NULL,
    text    text NOT NULL
);

CREATE INDEX job_logs_job_idx ON job_logs (job, seq);
