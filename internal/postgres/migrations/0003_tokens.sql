-- API tokens (internal/access): the secret itself is never stored, only
-- its SHA-256 hash, by which a request's token is found.
--
-- Ids are compared byte by byte (COLLATE "C"), as policy and collection
-- ids are, so that ListTokens pages in the same order in every store.

CREATE TABLE tokens (
    id         text COLLATE "C" PRIMARY KEY,
    name       text NOT NULL,
    -- The user the token acts for, and the user who minted it.
    user_id    text COLLATE "C" NOT NULL,
    created_by text NOT NULL,
    groups     text[] NOT NULL,
    -- Empty: everything its user may do.
    scopes     text[] NOT NULL,
    -- SHA-256 of the secret. The unique constraint's index is the one
    -- TokenByHash looks tokens up with.
    hash       bytea NOT NULL UNIQUE CHECK (octet_length(hash) = 32),
    created    timestamptz NOT NULL,
    -- NULL: the token does not expire; is not revoked.
    expires    timestamptz,
    revoked    timestamptz
);

-- ListTokens of one user, in id order.
CREATE INDEX tokens_user_idx ON tokens (user_id, id);
