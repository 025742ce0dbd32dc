-- Search: items whose time range overlaps an interval: a GiST index on the range
-- [start_dt, end_dt] answers the overlap directly. The B-tree indexes
-- bound one end each, so that a count or a bitmap scan over a month of
-- a three-year collection read every row from that month to the end.
-- (Every item has start_dt <= end_dt: the catalog refuses an
-- end_datetime before its start_datetime.)
CREATE INDEX items_time_idx ON items USING gist (tstzrange(start_dt, end_dt, '[]'));

-- Items with an owner of their own (results and snapshots belong to who
-- made them): the access arm "owned by the caller" of a search. Most
-- items have none, so the index holds only those that do.
CREATE INDEX items_owner_idx ON items ((content #>> ARRAY['properties', 'dt:owner']))
    WHERE (content #>> ARRAY['properties', 'dt:owner']) IS NOT NULL;
