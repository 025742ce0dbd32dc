-- Free text (q): the words of an item's title, description and keywords
-- (search.ItemText) in an FTS5 index keyed by items.rowid. The
-- unicode61 tokenizer splits on everything but letters and numbers and
-- folds case, as search.Words does; diacritics are kept (ACCENTI is the
-- filter for accent-insensitive matching). The index holds no copy of
-- the text (contentless), and the triggers keep it in step with items.

CREATE VIRTUAL TABLE items_fts USING fts5(
	text, content = '', contentless_delete = 1, tokenize = 'unicode61 remove_diacritics 0'
);

CREATE TRIGGER items_fts_insert AFTER INSERT ON items
WHEN NEW.content IS NOT NULL
BEGIN
	INSERT INTO items_fts (rowid, text) VALUES (NEW.rowid,
		coalesce(CASE WHEN json_type(NEW.content, '$.properties.title') = 'text' THEN json_extract(NEW.content, '$.properties.title') END, '') || ' ' ||
		coalesce(CASE WHEN json_type(NEW.content, '$.properties.description') = 'text' THEN json_extract(NEW.content, '$.properties.description') END, '') || ' ' ||
		coalesce((SELECT group_concat(value, ' ') FROM json_each(NEW.content, '$.properties.keywords')
			WHERE type = 'text' AND json_type(NEW.content, '$.properties.keywords') = 'array'), ''));
END;

CREATE TRIGGER items_fts_update AFTER UPDATE OF content ON items
BEGIN
	DELETE FROM items_fts WHERE rowid = OLD.rowid;
	INSERT INTO items_fts (rowid, text) SELECT NEW.rowid,
		coalesce(CASE WHEN json_type(NEW.content, '$.properties.title') = 'text' THEN json_extract(NEW.content, '$.properties.title') END, '') || ' ' ||
		coalesce(CASE WHEN json_type(NEW.content, '$.properties.description') = 'text' THEN json_extract(NEW.content, '$.properties.description') END, '') || ' ' ||
		coalesce((SELECT group_concat(value, ' ') FROM json_each(NEW.content, '$.properties.keywords')
			WHERE type = 'text' AND json_type(NEW.content, '$.properties.keywords') = 'array'), '')
	WHERE NEW.content IS NOT NULL;
END;

CREATE TRIGGER items_fts_delete AFTER DELETE ON items
BEGIN
	DELETE FROM items_fts WHERE rowid = OLD.rowid;
END;

INSERT INTO items_fts (rowid, text) SELECT rowid,
	coalesce(CASE WHEN json_type(content, '$.properties.title') = 'text' THEN json_extract(content, '$.properties.title') END, '') || ' ' ||
	coalesce(CASE WHEN json_type(content, '$.properties.description') = 'text' THEN json_extract(content, '$.properties.description') END, '') || ' ' ||
	coalesce((SELECT group_concat(value, ' ') FROM json_each(content, '$.properties.keywords')
		WHERE type = 'text' AND json_type(content, '$.properties.keywords') = 'array'), '')
FROM items WHERE content IS NOT NULL;
