-- Free text (q): the words of an item's title, description and keywords
-- (search.ItemText), indexed with the simple configuration (no stemming,
-- no stop words). cql_fts_text lower-cases the text and reduces every
-- run of characters that are neither letters nor digits to one space,
-- as search.Words does, under the C.utf8 collation so that letters of
-- every script count whatever the database's locale.
CREATE FUNCTION cql_fts_text(props jsonb) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN regexp_replace(lower(concat_ws(' ',
        CASE WHEN jsonb_typeof(props->'title') = 'string' THEN props->>'title' END,
        CASE WHEN jsonb_typeof(props->'description') = 'string' THEN props->>'description' END,
        (SELECT string_agg(e #>> '{}', ' ') FROM jsonb_array_elements(
            CASE WHEN jsonb_typeof(props->'keywords') = 'array' THEN props->'keywords' END) AS k(e)
         WHERE jsonb_typeof(e) = 'string')) COLLATE "C.utf8"),
    '[^[:alnum:]]+', ' ', 'g');

CREATE INDEX items_text_idx ON items USING gin (to_tsvector('simple', cql_fts_text(content->'properties')));
