-- STAC requires properties.datetime, null when the item has a range
-- (start_datetime, end_datetime). Items are now written with it; those
-- stored without it get it.

UPDATE items SET content = json_set(content, '$.properties.datetime', json('null'))
WHERE content IS NOT NULL AND json_type(content, '$.properties') = 'object' AND json_type(content, '$.properties.datetime') IS NULL;
