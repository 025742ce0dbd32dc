-- STAC requires properties.datetime, null when the item has a range
-- (start_datetime, end_datetime). Items are now written with it; those
-- stored without it get it.

UPDATE items SET content = jsonb_set(content, '{properties,datetime}', 'null'::jsonb)
WHERE content IS NOT NULL AND jsonb_typeof(content->'properties') = 'object' AND NOT (content->'properties' ? 'datetime');
