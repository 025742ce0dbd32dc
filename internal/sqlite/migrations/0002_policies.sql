-- Access policies (internal/access) and the revision counter that tells a
-- process whether its in-memory index of them is current.
-- subjects, resources and actions are JSON arrays of strings; conditions
-- and meta are JSON, NULL when there are none. created is integer
-- microseconds since the Unix epoch, UTC. Ids compare with SQLite's
-- default BINARY collation: byte order, as in the PostgreSQL store.

CREATE TABLE policies (
	id          TEXT PRIMARY KEY,
	description TEXT NOT NULL DEFAULT '',
	subjects    TEXT NOT NULL,
	resources   TEXT NOT NULL,
	actions     TEXT NOT NULL,
	effect      TEXT NOT NULL CHECK (effect IN ('allow', 'deny')),
	conditions  TEXT,
	meta        TEXT,
	created     INTEGER NOT NULL
);

-- policy_revision holds one row: rev grows in the transaction of every
-- policy created or deleted.
CREATE TABLE policy_revision (
	one INTEGER PRIMARY KEY CHECK (one = 1),
	rev INTEGER NOT NULL
);

INSERT INTO policy_revision (one, rev) VALUES (1, 0);
