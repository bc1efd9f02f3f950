-- Which master key the sealed values of this database are under (zapin-signal-store
-- `key_check`). At most one row. `fingerprint` names the current key: hex HMAC-SHA256 of a fixed
-- label under it, which reveals nothing about the key. `previous_fingerprint` is set while a key
-- rotation has not yet re-sealed every value, and names the key some may still be under.
CREATE TABLE master_key_check (
    id                   INTEGER PRIMARY KEY CHECK (id = 1),
    fingerprint          TEXT    NOT NULL,
    previous_fingerprint TEXT,
    updated_at           INTEGER NOT NULL
) STRICT;
