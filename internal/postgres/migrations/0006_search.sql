-- Item search: the functions CQL2 filters compile to, and the index that
-- orders a search across collections.
--
-- A property is read from the document as jsonb; a filter compares it
-- with a literal of some type, and a value of another type makes the
-- comparison unknown (NULL), as the reference evaluator does. The cql_*
-- functions below do that reading. They are plain SQL and IMMUTABLE, so
-- the planner inlines them into the query and an expression index on
-- one of them matches the filter.

-- cql_num reads a JSON number as float8 (the evaluator's float64).
CREATE FUNCTION cql_num(j jsonb) RETURNS float8
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE WHEN jsonb_typeof(j) = 'number' THEN j::float8 END;

-- cql_text reads a JSON string.
CREATE FUNCTION cql_text(j jsonb) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE WHEN jsonb_typeof(j) = 'string' THEN j #>> '{}' END;

-- cql_bool reads a JSON boolean.
CREATE FUNCTION cql_bool(j jsonb) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE WHEN jsonb_typeof(j) = 'boolean' THEN j::boolean END;

-- cql_rank orders values of different kinds when a search sorts by a
-- property: numbers, strings, booleans, arrays and objects, then null.
CREATE FUNCTION cql_rank(j jsonb) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE jsonb_typeof(j)
    WHEN 'number' THEN 1 WHEN 'string' THEN 2 WHEN 'boolean' THEN 3
    WHEN 'array' THEN 4 WHEN 'object' THEN 4 ELSE 5 END;

-- cql_instant_checked parses a string that looks like an RFC 3339
-- timestamp or date but may still name a day that does not exist
-- (2024-02-30): NULL then, not an error. The exception block costs a
-- subtransaction (which a parallel worker cannot start: it is PARALLEL
-- RESTRICTED), so cql_instant calls it only for days after the 28th.
CREATE FUNCTION cql_instant_checked(s text) RETURNS timestamptz
LANGUAGE plpgsql IMMUTABLE PARALLEL RESTRICTED STRICT
AS $$
BEGIN
    IF length(s) = 10 THEN
        RETURN (s || 'T00:00:00Z')::timestamptz;
    END IF;
    RETURN s::timestamptz;
EXCEPTION WHEN datetime_field_overflow OR invalid_datetime_format THEN
    RETURN NULL;
END
$$;

-- cql_instant_text reads a string as an instant the way the evaluator
-- does: a date (YYYY-MM-DD, midnight UTC) or an RFC 3339 timestamp with
-- a zone; anything else is NULL.
CREATE FUNCTION cql_instant_text(s text) RETURNS timestamptz
LANGUAGE sql IMMUTABLE PARALLEL RESTRICTED
RETURN CASE
    WHEN s !~ '^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])(T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]+)?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9]))?$'
        OR substr(s, 1, 4) = '0000' THEN NULL
    WHEN substr(s, 9, 2) > '28' THEN cql_instant_checked(s)
    WHEN length(s) = 10 THEN (s || 'T00:00:00Z')::timestamptz
    ELSE s::timestamptz END;

-- cql_instant reads a JSON string as an instant.
CREATE FUNCTION cql_instant(j jsonb) RETURNS timestamptz
LANGUAGE sql IMMUTABLE PARALLEL RESTRICTED
RETURN cql_instant_text(cql_text(j));

-- cql_casei folds case as the evaluator does: upper, then lower, one
-- character at a time, for every script (lower() under the C collation
-- folds ASCII only).
CREATE FUNCTION cql_casei(s text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN lower(upper(s COLLATE "C.utf8")) COLLATE "C";

-- cql_accenti removes accents by Unicode decomposition: NFD, combining
-- marks dropped, NFC.
CREATE FUNCTION cql_accenti(s text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN normalize(regexp_replace(normalize(s, NFD),
    '[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]', '', 'g'), NFC) COLLATE "C";

-- cql_intersects is ST_Intersects behind a function the planner cannot
-- see into, with a low cost. Filters write it after the bounding-box
-- test (geometry && box), which the GiST index serves. PostGIS declares
-- ST_Intersects very expensive, so that the planner, counting that cost
-- for every row a walk of the time index reads, would rather fetch every
-- match of a large bbox and sort them all; the exact test runs only on
-- the rows whose boxes overlap, which are few.
CREATE FUNCTION cql_intersects(a geometry, b geometry) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE COST 10
AS $$
BEGIN
    RETURN ST_Intersects(a, b);
END
$$;

-- A search across collections orders by time, then id, then collection.
-- The paging index of 0001 leads with the collection, which orders only
-- within one partition; this one orders the merge of all partitions and
-- serves single-collection listings as well, so it replaces it.
CREATE INDEX items_order_idx ON items (start_dt DESC, id DESC, collection DESC);
DROP INDEX items_paging_idx;
