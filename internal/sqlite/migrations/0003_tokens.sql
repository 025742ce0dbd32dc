-- API tokens (internal/access): the secret itself is never stored, only
-- its SHA-256 hash, by which a request's token is found.
-- groups and scopes are JSON arrays of strings; created, expires and
-- revoked are integer microseconds since the Unix epoch, UTC, and
-- expires and revoked are NULL for a token that does not expire or is
-- not revoked. Ids compare with SQLite's default BINARY collation: byte
-- order, as in the PostgreSQL store.

CREATE TABLE tokens (
	id         TEXT PRIMARY KEY,
	name       TEXT NOT NULL,
	user_id    TEXT NOT NULL,
	created_by TEXT NOT NULL,
	groups     TEXT NOT NULL,
	scopes     TEXT NOT NULL,
	-- The unique constraint's index is the one TokenByHash looks tokens
	-- up with.
	hash       BLOB NOT NULL UNIQUE CHECK (length(hash) = 32),
	created    INTEGER NOT NULL,
	expires    INTEGER,
	revoked    INTEGER
);

-- ListTokens of one user, in id order.
CREATE INDEX tokens_user_idx ON tokens (user_id, id);
