-- The queryables an administrator refined, per collection: a JSON Schema
-- document. Which of its properties are indexed is in the document too;
-- the indexes themselves are built on the collection's items partition
-- (items_c<key>_q<hash>) by the store, outside any transaction.
CREATE TABLE queryables (
    collection text COLLATE "C" PRIMARY KEY REFERENCES collections (id) ON DELETE CASCADE,
    doc        jsonb NOT NULL,
    updated    timestamptz NOT NULL
);
