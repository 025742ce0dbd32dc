-- A collection's owner and visibility as columns, copied from its document
-- (members dt:owner and dt:visibility), so that ListCollections filters
-- the collections a caller may read inside its keyset query.
--
-- Adding a column with a constant default rewrites no row; the backfill
-- below touches only the rows whose document names an owner or a
-- visibility. A member of the wrong type, or a visibility that is none of
-- the three, is read as no owner and as private, as LoadCollection does.

ALTER TABLE collections
    ADD COLUMN owner text COLLATE "C" NOT NULL DEFAULT '',
    ADD COLUMN visibility text NOT NULL DEFAULT 'private'
        CONSTRAINT collections_visibility_check CHECK (visibility IN ('private', 'node', 'public'));

UPDATE collections SET
    owner = CASE WHEN jsonb_typeof(doc -> 'dt:owner') = 'string' THEN doc ->> 'dt:owner' ELSE '' END,
    visibility = CASE WHEN doc ->> 'dt:visibility' IN ('node', 'public') THEN doc ->> 'dt:visibility' ELSE 'private' END
WHERE doc -> 'dt:owner' IS NOT NULL OR doc -> 'dt:visibility' IS NOT NULL;

-- The collections of one owner: the "owned by the caller" arm of the
-- listing filter, and lookups by owner.
CREATE INDEX collections_owner_idx ON collections (owner);

-- The public and node-wide collections, which are expected to be the few
-- among many private ones: the "public" and "node" arms of the listing
-- filter. Private rows, the bulk, stay out of the index.
CREATE INDEX collections_shared_idx ON collections (visibility) WHERE visibility <> 'private';
