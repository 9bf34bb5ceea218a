-- API tokens for the collector: one row per token ever created. The token
-- itself is never stored, only its SHA-256 hash. A revoked token keeps its
-- row (revoked_at set) so `parityctl token list --all` shows the history; its
-- name may then be given to a new token.
CREATE TABLE api_tokens (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name         text        NOT NULL CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$'),
    role         text        NOT NULL CHECK (role IN ('viewer', 'operator', 'ingest')),
    hash         bytea       NOT NULL CHECK (octet_length(hash) = 32),
    created_at   timestamptz NOT NULL DEFAULT now(),
    revoked_at   timestamptz,
    last_used_at timestamptz
);

-- Check looks tokens up by hash.
CREATE UNIQUE INDEX api_tokens_hash ON api_tokens (hash);

-- At most one active token per name; revoked ones keep theirs.
CREATE UNIQUE INDEX api_tokens_active_name ON api_tokens (name) WHERE revoked_at IS NULL;
