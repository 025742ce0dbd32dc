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
    user_id   text COLLATE "C" NOT NULL CHECK (user_id <> ''),
    kind      text NOT NULL CHECK (kind IN ('running', 'queued')),
    job_limit bigint NOT NULL CHECK (job_limit >= 0),
    PRIMARY KEY (user_id, kind)
);

-- item_expires is an item's STAC timestamps `expires` property as a
-- time, NULL without one. The catalog accepts only RFC 3339 timestamps
-- there, which carry their offset, so the cast does not depend on the
-- session's time zone and the function is immutable; the pattern keeps
-- anything else (a document written before the check) out of the index
-- instead of failing the write.
CREATE FUNCTION item_expires(content jsonb) RETURNS timestamptz
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$
    SELECT CASE WHEN v ~* '^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$' THEN v::timestamptz END
    FROM (SELECT content #>> '{properties,expires}' AS v) AS e
$$;

-- The expiry policy's scan (ExpiredItems): the items that may still
-- expire, by the time they do. Each partition gets the index, and so
-- does a new collection's (attach_item_partition).
CREATE INDEX items_expires_idx ON items (item_expires(content), collection, id)
    WHERE state IN ('draft', 'published', 'deprecated') AND item_expires(content) IS NOT NULL;
