-- A job's log lines are written only by transactions that lock the job's
-- row first (AppendLog, FinishJobs), so a line never names a missing job.
-- The foreign key checked that again for every line, which made writing
-- them three times as costly: it goes. A job's deletion still takes its
-- lines with it, by a trigger.

ALTER TABLE job_logs DROP CONSTRAINT job_logs_job_fkey;

CREATE FUNCTION delete_job_logs() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM job_logs WHERE job IN (SELECT id FROM gone);
    RETURN NULL;
END
$$;

CREATE TRIGGER jobs_delete_logs AFTER DELETE ON jobs
    REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION delete_job_logs();
