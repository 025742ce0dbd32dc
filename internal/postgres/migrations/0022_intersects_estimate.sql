-- The exact geometry test of a search, in a form whose row estimate is
-- the bounding-box test's alone.
--
-- A search filters geometries with the GiST-served box test (&&) and
-- then the exact test. The exact test of 0006, cql_intersects, is a
-- boolean function, and PostgreSQL guesses that a boolean function
-- keeps a third of the rows: every spatial search was expected to match
-- a third of what the box test lets through, when the exact test drops
-- almost none of them. PostGIS's own estimate of the box test is low
-- already for footprints larger than the box (it counts the share of
-- each footprint's area inside the box, not the footprints that touch
-- it). Expecting few matches, the planner fetched every match through
-- the GiST index and sorted them, where walking the time index finds
-- the first page after a few hundred rows: 32–47 ms instead of 3 for
-- a 0.6° box around Munich over the benchmark's million items, and
-- 75–260 ms instead of 10 for a year of one collection in a
-- country-sized box.
--
-- A test "IS NOT NULL" is expected to keep 99.5 % of the rows. So the
-- exact test is now written cql_intersects_mark(a, b) IS NOT NULL, which
-- is true where the geometries intersect and false where they do not,
-- and keeps the three-valued logic of (a && b AND ST_Intersects(a, b)):
-- with a NULL geometry, the mark is 1 and the box test is NULL, so the
-- whole is NULL (unknown) as before, also under NOT.
--
-- Like cql_intersects it is PL/pgSQL, which the planner does not inline,
-- with a low cost: PostGIS declares ST_Intersects very expensive, and
-- the planner, counting that for every row a walk of the time index
-- reads, would never walk.
CREATE FUNCTION cql_intersects_mark(a geometry, b geometry) RETURNS integer
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE COST 10
AS $$
BEGIN
    IF a IS NULL OR b IS NULL OR ST_Intersects(a, b) THEN
        RETURN 1;
    END IF;
    RETURN NULL;
END
$$;

-- cql_intersects stays for servers of the previous version that run
-- against this schema during an upgrade.
