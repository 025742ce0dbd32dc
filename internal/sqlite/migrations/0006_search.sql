-- Item search: the order of a search across collections (time, then id,
-- then collection, newest first), which the per-collection paging index
-- cannot give; and the queryables an administrator refined, per
-- collection (a JSON Schema document; SQLite indexes no properties).
CREATE INDEX items_order ON items (start_us DESC, id DESC, collection DESC);

CREATE TABLE queryables (
	collection TEXT PRIMARY KEY REFERENCES collections (id) ON DELETE CASCADE,
	doc        TEXT NOT NULL,
	updated    INTEGER NOT NULL
);
