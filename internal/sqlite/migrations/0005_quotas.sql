-- Storage quotas: the size of every uploaded asset file, counted against
-- the owner of its collection, and per-user overrides of the node's
-- default limit (internal/access). Ids compare with SQLite's default
-- BINARY collation: byte order, as in the PostgreSQL store.

-- asset_bytes holds one row per uploaded asset file: its size in bytes.
-- A key without a file has no row (a size is never 0). The foreign key
-- removes a collection's rows with the collection; the rows of an item
-- that becomes a tombstone are deleted by the store (UpdateItem).
-- The primary key, which leads with the collection, is the index of the
-- cascade and of the sum of an owner's bytes (StoredBytes, which finds
-- the owner's collections by collections_owner_idx). WITHOUT ROWID keeps
-- the rows in that index itself.
CREATE TABLE asset_bytes (
	collection TEXT NOT NULL REFERENCES collections (id) ON DELETE CASCADE,
	item       TEXT NOT NULL,
	key        TEXT NOT NULL,
	size       INTEGER NOT NULL CHECK (size > 0),
	PRIMARY KEY (collection, item, key)
) WITHOUT ROWID;

-- quotas holds the users whose stored-bytes limit overrides the node's
-- default; 0 is unlimited. A user without a row gets the default.
CREATE TABLE quotas (
	user_id      TEXT PRIMARY KEY CHECK (user_id <> ''),
	stored_bytes INTEGER NOT NULL CHECK (stored_bytes >= 0)
) WITHOUT ROWID;
