-- Storage quotas: the size of every uploaded asset file, counted against
-- the owner of its collection, and per-user overrides of the node's
-- default limit (internal/access).
--
-- Ids are compared byte by byte (COLLATE "C"), as collection and item
-- ids are.

-- asset_bytes holds one row per uploaded asset file: its size in bytes.
-- A key without a file has no row (a size is never 0). The foreign key
-- removes a collection's rows with the collection; it references
-- collections, not the partitioned items table, so dropping an items
-- partition is not slowed or blocked by it. The rows of an item that
-- becomes a tombstone are deleted by the store (UpdateItem).
--
-- The primary key's index, which leads with the collection, serves the
-- cascade and the sum of an owner's bytes (StoredBytes): the owner's
-- collections come from collections_owner_idx, and each one's rows from
-- a range of this index.
CREATE TABLE asset_bytes (
    collection text COLLATE "C" NOT NULL REFERENCES collections (id) ON DELETE CASCADE,
    item       text COLLATE "C" NOT NULL,
    key        text COLLATE "C" NOT NULL,
    size       bigint NOT NULL CHECK (size > 0),
    PRIMARY KEY (collection, item, key)
);

-- quotas holds the users whose stored-bytes limit overrides the node's
-- default; 0 is unlimited. A user without a row gets the default.
CREATE TABLE quotas (
    user_id      text COLLATE "C" PRIMARY KEY CHECK (user_id <> ''),
    stored_bytes bigint NOT NULL CHECK (stored_bytes >= 0)
);
