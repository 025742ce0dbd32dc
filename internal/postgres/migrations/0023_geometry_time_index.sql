-- Pages of spatial searches are read in time windows, newest first
-- (windowedArm in search.go): the geometry index also holds start_dt,
-- so that one index scan finds a window's items in the box. A box where
-- a collection's footprints are sparse no longer fetches, tests and sorts
-- every match of all time for ten of them: the ten newest of 761 items
-- around Munich in the benchmark's sentinel-2-l2a took 2–4 ms, and take
-- 0.2 ms from the newest windows. The geometry-only index is dropped: the
-- two-column one serves every box test it served (btree_gist, installed
-- with PostGIS, gives GiST its timestamptz operators).
CREATE INDEX items_geometry_time_idx ON items USING gist (geometry, start_dt);
DROP INDEX items_geometry_idx;
