-- The proxy of an instance (`/proxy/set`, `/proxy/find`). The username and password are kept
-- together in `secret`, sealed under the master key like webhook secrets (and re-sealed with
-- them by a key rotation); NULL when the proxy needs no credentials.
CREATE TABLE proxies (
    instance_id TEXT    PRIMARY KEY NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
    id          TEXT    NOT NULL UNIQUE,
    enabled     INTEGER NOT NULL,
    host        TEXT    NOT NULL,
    port        TEXT    NOT NULL,
    protocol    TEXT    NOT NULL,
    secret      TEXT,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
) STRICT;
