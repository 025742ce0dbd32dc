-- A collection's owner and visibility as columns, copied from its document
-- (members dt:owner and dt:visibility), so that ListCollections filters
-- the collections a caller may read inside its keyset query.
--
-- The backfill touches only the rows whose document names an owner or a
-- visibility. A member of the wrong type, or a visibility that is none of
-- the three, is read as no owner and as private, as LoadCollection does.

ALTER TABLE collections ADD COLUMN owner TEXT NOT NULL DEFAULT '';
ALTER TABLE collections ADD COLUMN visibility TEXT NOT NULL DEFAULT 'private'
	CHECK (visibility IN ('private', 'node', 'public'));

UPDATE collections SET
	owner = CASE WHEN json_type(doc, '$."dt:owner"') = 'text' THEN json_extract(doc, '$."dt:owner"') ELSE '' END,
	visibility = CASE WHEN json_type(doc, '$."dt:visibility"') = 'text' AND json_extract(doc, '$."dt:visibility"') IN ('node', 'public')
		THEN json_extract(doc, '$."dt:visibility"') ELSE 'private' END
WHERE json_type(doc, '$."dt:owner"') IS NOT NULL OR json_type(doc, '$."dt:visibility"') IS NOT NULL;

-- The collections of one owner: the "owned by the caller" arm of the
-- listing filter, and lookups by owner.
CREATE INDEX collections_owner_idx ON collections (owner);
