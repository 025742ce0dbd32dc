-- Catalog: collections, items partitioned by collection, and the outbox.
--
-- Ids are compared byte by byte (COLLATE "C"), like Go strings and like the
-- SQLite store: listings order the same in every store, and the B-tree
-- indexes on ids skip the locale's collation rules.

CREATE TABLE collections (
    -- key is a short, stable number for the collection, which names its
    -- items partition (items_c<key>); ids may hold any character.
    key     integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id      text COLLATE "C" NOT NULL UNIQUE,
    etag    text NOT NULL,
    created timestamptz NOT NULL,
    updated timestamptz NOT NULL,
    doc     jsonb NOT NULL
);

-- items holds every item and tombstone. start_dt/end_dt bound the item's
-- time (datetime, or start_datetime/end_datetime); geometry is NULL for a
-- null geometry and for tombstones; content is the stored document, NULL
-- for a tombstone.
CREATE TABLE items (
    collection text COLLATE "C" NOT NULL,
    id         text COLLATE "C" NOT NULL,
    state      text NOT NULL CHECK (state IN ('draft', 'published', 'deprecated', 'archived', 'deleted')),
    start_dt   timestamptz NOT NULL,
    end_dt     timestamptz NOT NULL,
    -- Any dimension (positions may have a height), in WGS 84. The type
    -- modifier geometry(Geometry, 4326) would reject heights.
    geometry   geometry CONSTRAINT items_geometry_srid CHECK (ST_SRID(geometry) = 4326),
    created    timestamptz NOT NULL,
    updated    timestamptz NOT NULL,
    etag       text NOT NULL,
    content    jsonb,
    PRIMARY KEY (collection, id)
) PARTITION BY LIST (collection);

-- Keyset paging in the listing order (start descending, id descending).
CREATE INDEX items_paging_idx ON items (collection, start_dt DESC, id DESC);
-- Interval queries that bound the end.
CREATE INDEX items_end_idx ON items (collection, end_dt);
-- bbox queries.
CREATE INDEX items_geometry_idx ON items USING gist (geometry);

-- attach_item_partition creates the items partition of a new collection.
-- The partition is created as a table of its own and then attached:
-- ATTACH PARTITION takes only a SHARE UPDATE EXCLUSIVE lock on items, so
-- it does not wait for, nor block, the reads and bulk loads running on
-- other collections, as CREATE TABLE ... PARTITION OF (ACCESS EXCLUSIVE)
-- would. Attaching builds the partition's indexes from those of items
-- and checks its rows, which is instant on an empty table. Only other
-- DDL on items (another collection created or deleted, a manual ANALYZE)
-- holds a conflicting lock; lock_timeout bounds the wait behind it, and
-- the request then fails with lock_not_available, to be retried.
CREATE FUNCTION attach_item_partition(collection_key integer, collection_id text) RETURNS void
LANGUAGE plpgsql
SET lock_timeout = '5s'
AS $$
DECLARE
    part text := 'items_c' || collection_key;
BEGIN
    EXECUTE format('CREATE TABLE %I (LIKE items INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', part);
    EXECUTE format('ALTER TABLE items ATTACH PARTITION %I FOR VALUES IN (%L)', part, collection_id);
END
$$;

-- drop_item_partition removes the items partition of a deleted
-- collection: detached, then dropped. DETACH inside a transaction needs
-- an ACCESS EXCLUSIVE lock on items, held until the transaction ends
-- (DETACH ... CONCURRENTLY cannot run in one). It must wait for every
-- transaction that uses items, bulk loads into any collection included,
-- and while it waits, every new query on items queues behind it. So it
-- waits 100 ms at most per attempt, and tries again after a pause in
-- which the queue drains, 20 times (about 4 s in all) before it gives up
-- with lock_not_available.
CREATE FUNCTION drop_item_partition(collection_key integer) RETURNS void
LANGUAGE plpgsql
SET lock_timeout = '100ms'
AS $$
DECLARE
    part    text := 'items_c' || collection_key;
    attempt integer := 0;
BEGIN
    IF to_regclass(quote_ident(part)) IS NULL THEN
        RETURN;
    END IF;
    LOOP
        BEGIN
            EXECUTE format('ALTER TABLE items DETACH PARTITION %I', part);
            EXIT;
        EXCEPTION WHEN lock_not_available THEN
            attempt := attempt + 1;
            IF attempt >= 20 THEN
                RAISE;
            END IF;
            PERFORM pg_sleep(0.05 + random() * 0.005 * attempt);
        END;
    END LOOP;
    EXECUTE format('DROP TABLE %I', part);
END
$$;

-- outbox holds the events written with the changes they describe. seq is
-- the change feed cursor.
CREATE TABLE outbox (
    seq     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id      uuid NOT NULL,
    type    text NOT NULL,
    subject text NOT NULL,
    time    timestamptz NOT NULL,
    payload jsonb NOT NULL
);
