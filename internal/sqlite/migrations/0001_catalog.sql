-- Collections, items with their spatial index, and the outbox.
-- Times are integer microseconds since the Unix epoch, UTC.

CREATE TABLE collections (
	id      TEXT PRIMARY KEY,
	etag    TEXT NOT NULL,
	created INTEGER NOT NULL,
	updated INTEGER NOT NULL,
	doc     TEXT NOT NULL
);

-- content is the stored item document; NULL for a tombstone.
-- minx..maxy is the 2D bbox of the geometry (NULL without one); a bbox
-- across the antimeridian is stored as the full longitude range.
CREATE TABLE items (
	rowid      INTEGER PRIMARY KEY,
	collection TEXT NOT NULL REFERENCES collections (id) ON DELETE CASCADE,
	id         TEXT NOT NULL,
	state      TEXT NOT NULL,
	start_us   INTEGER NOT NULL,
	end_us     INTEGER NOT NULL,
	minx       REAL,
	miny       REAL,
	maxx       REAL,
	maxy       REAL,
	created    INTEGER NOT NULL,
	updated    INTEGER NOT NULL,
	etag       TEXT NOT NULL,
	content    TEXT,
	UNIQUE (collection, id)
);

-- Keyset paging: Start descending, then id descending, per collection.
CREATE INDEX items_paging ON items (collection, start_us DESC, id DESC);

-- The spatial index, keyed by items.rowid. The triggers keep it in step
-- with items inside the writing transaction, including the deletes that
-- cascade from a collection.
CREATE VIRTUAL TABLE items_rtree USING rtree (id, minx, maxx, miny, maxy);

CREATE TRIGGER items_rtree_insert AFTER INSERT ON items
WHEN NEW.minx IS NOT NULL
BEGIN
	INSERT INTO items_rtree (id, minx, maxx, miny, maxy)
	VALUES (NEW.rowid, NEW.minx, NEW.maxx, NEW.miny, NEW.maxy);
END;

CREATE TRIGGER items_rtree_update AFTER UPDATE OF minx, miny, maxx, maxy ON items
BEGIN
	DELETE FROM items_rtree WHERE id = OLD.rowid;
	INSERT INTO items_rtree (id, minx, maxx, miny, maxy)
	SELECT NEW.rowid, NEW.minx, NEW.maxx, NEW.miny, NEW.maxy
	WHERE NEW.minx IS NOT NULL;
END;

CREATE TRIGGER items_rtree_delete AFTER DELETE ON items
WHEN OLD.minx IS NOT NULL
BEGIN
	DELETE FROM items_rtree WHERE id = OLD.rowid;
END;

-- Events written in the same transaction as the change; seq is the
-- change-feed cursor and never reused (AUTOINCREMENT).
CREATE TABLE outbox (
	seq     INTEGER PRIMARY KEY AUTOINCREMENT,
	id      TEXT NOT NULL,
	type    TEXT NOT NULL,
	subject TEXT NOT NULL,
	time    INTEGER NOT NULL,
	payload TEXT NOT NULL
);
