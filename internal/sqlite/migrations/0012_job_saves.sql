-- Saves of jobs (POST /jobs/{id}/save). A save asked of a running job
-- waits in saves (a JSON array of the snapshot items to fill,
-- <collection>/<item>) until the worker running the job takes it;
-- final_state is the blob key of the state a finished attempt left, from
-- which a later save is made.

ALTER TABLE jobs ADD COLUMN saves TEXT NOT NULL DEFAULT '[]';
ALTER TABLE jobs ADD COLUMN final_state TEXT NOT NULL DEFAULT '';
