-- Access policies (internal/access) and the revision counter that tells a
-- process whether its in-memory index of them is current.
--
-- Ids are compared byte by byte (COLLATE "C"), as collection ids are, so
-- that ListPolicies pages in the same order in every store.

CREATE TABLE policies (
    id          text COLLATE "C" PRIMARY KEY,
    description text NOT NULL DEFAULT '',
    -- ladon's subjects, resources and actions; entries may hold <regex>
    -- parts.
    subjects    text[] NOT NULL,
    resources   text[] NOT NULL,
    actions     text[] NOT NULL,
    effect      text NOT NULL CHECK (effect IN ('allow', 'deny')),
    -- ladon conditions and free metadata; NULL when there are none.
    conditions  jsonb,
    meta        jsonb,
    created     timestamptz NOT NULL
);

-- Finding the policies of a subject (subjects @> ARRAY[...]).
CREATE INDEX policies_subjects_idx ON policies USING gin (subjects);

-- policy_revision holds one row: rev grows in the transaction of every
-- policy created or deleted. The row is also the lock that orders
-- concurrent policy changes.
CREATE TABLE policy_revision (
    one boolean PRIMARY KEY DEFAULT true CHECK (one),
    rev bigint NOT NULL
);

INSERT INTO policy_revision (rev) VALUES (0);
