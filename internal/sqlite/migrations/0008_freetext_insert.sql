-- New items' free text is indexed by the store, which computes it in Go
-- (search.ItemText) and inserts it in the same transaction: the insert
-- trigger's JSON extraction took about a quarter of a bulk load. Updates
-- and deletes keep their triggers.
DROP TRIGGER items_fts_insert;
