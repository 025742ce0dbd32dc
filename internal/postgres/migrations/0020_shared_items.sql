-- A copy of the items shared one by one (readers set, migration 0012),
-- which the search's arm of shared items reads instead of the partitions
-- of their collections. Planning that arm over two partitions of the
-- items table cost 0.4 ms on every search of a caller with shares (each
-- partition brings a dozen indexes to consider), and sorting the shared
-- documents another 0.2 ms: more than the administrator's whole
-- statement. This table is small (only what policies name one by one),
-- has three indexes, and keeps its documents uncompressed (a tuple is
-- compressed only beyond toast_tuple_target), so that testing a filter
-- on a few hundred of them costs half as much.
--
-- Triggers keep it: every insert, update and delete of an item that has
-- or had readers rewrites its copy in the same transaction, whatever
-- writes it (item writes, bulk loads, the policy store's mending of
-- readers). Deleting a collection deletes its copies.
CREATE TABLE shared_items (
    collection text COLLATE "C" NOT NULL REFERENCES collections (id) ON DELETE CASCADE,
    id         text COLLATE "C" NOT NULL,
    state      text NOT NULL,
    start_dt   timestamptz NOT NULL,
    end_dt     timestamptz NOT NULL,
    geometry   geometry,
    created    timestamptz NOT NULL,
    updated    timestamptz NOT NULL,
    etag       text NOT NULL,
    content    jsonb,
    readers    text[] NOT NULL,
    PRIMARY KEY (collection, id)
) WITH (toast_tuple_target = 8160);

CREATE INDEX shared_items_readers_idx ON shared_items USING gin (readers);
CREATE INDEX shared_items_order_idx ON shared_items (start_dt DESC, id DESC, collection DESC);

-- content || '{}' is the document detoasted: stored as is, uncompressed.
CREATE FUNCTION copy_shared_item() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN
        DELETE FROM shared_items WHERE collection = OLD.collection AND id = OLD.id;
    END IF;
    IF TG_OP <> 'DELETE' AND NEW.readers IS NOT NULL THEN
        INSERT INTO shared_items (collection, id, state, start_dt, end_dt, geometry, created, updated, etag, content, readers)
        VALUES (NEW.collection, NEW.id, NEW.state, NEW.start_dt, NEW.end_dt, NEW.geometry, NEW.created, NEW.updated,
                NEW.etag, NEW.content || '{}'::jsonb, NEW.readers);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER items_shared_insert AFTER INSERT ON items FOR EACH ROW
    WHEN (NEW.readers IS NOT NULL) EXECUTE FUNCTION copy_shared_item();
CREATE TRIGGER items_shared_update AFTER UPDATE ON items FOR EACH ROW
    WHEN (OLD.readers IS NOT NULL OR NEW.readers IS NOT NULL) EXECUTE FUNCTION copy_shared_item();
CREATE TRIGGER items_shared_delete AFTER DELETE ON items FOR EACH ROW
    WHEN (OLD.readers IS NOT NULL) EXECUTE FUNCTION copy_shared_item();

INSERT INTO shared_items (collection, id, state, start_dt, end_dt, geometry, created, updated, etag, content, readers)
SELECT collection, id, state, start_dt, end_dt, geometry, created, updated, etag, content || '{}'::jsonb, readers
FROM items WHERE readers IS NOT NULL;
