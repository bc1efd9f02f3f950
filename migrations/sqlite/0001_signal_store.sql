-- zapin-signal-store schema (SQLite). Every row belongs to one device (`owner`); deleting the
-- device row cascades to everything it owns. Columns named *_enc hold AES-256-GCM ciphertext
-- (version byte || 12-byte nonce || ciphertext || tag); the store never interprets Signal records.

CREATE TABLE devices (
    device_id           TEXT    PRIMARY KEY NOT NULL,
    registration_id     INTEGER NOT NULL,
    noise_public        BLOB    NOT NULL,
    identity_public     BLOB    NOT NULL,
    signed_prekey_id    INTEGER NOT NULL,
    secrets_enc         BLOB    NOT NULL,
    account_jid         TEXT,
    device_jid          TEXT,
    lid                 TEXT,
    adv_signed_identity BLOB,
    push_name           TEXT,
    platform            TEXT,
    business_name       TEXT,
    routing_info        BLOB,
    max_prekey_id       INTEGER
) STRICT;

CREATE TABLE identities (
    owner        TEXT    NOT NULL REFERENCES devices (device_id) ON DELETE CASCADE,
    name         TEXT    NOT NULL,
    device       INTEGER NOT NULL,
    identity_key BLOB    NOT NULL,
    trust        INTEGER NOT NULL,
    PRIMARY KEY (owner, name, device)
) STRICT, WITHOUT ROWID;

CREATE TABLE prekeys (
    owner       TEXT    NOT NULL REFERENCES devices (device_id) ON DELETE CASCADE,
    id          INTEGER NOT NULL,
    public_key  BLOB    NOT NULL,
    private_enc BLOB    NOT NULL,
    PRIMARY KEY (owner, id)
) STRICT, WITHOUT ROWID;

CREATE TABLE signed_prekeys (
    owner       TEXT    NOT NULL REFERENCES devices (device_id) ON DELETE CASCADE,
    id          INTEGER NOT NULL,
    public_key  BLOB    NOT NULL,
    private_enc BLOB    NOT NULL,
    signature   BLOB    NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (owner, id)
) STRICT, WITHOUT ROWID;

CREATE TABLE sessions (
    owner      TEXT    NOT NULL REFERENCES devices (device_id) ON DELETE CASCADE,
    name       TEXT    NOT NULL,
    device     INTEGER NOT NULL,
    record_enc BLOB    NOT NULL,
    PRIMARY KEY (owner, name, device)
) STRICT, WITHOUT ROWID;

CREATE TABLE sender_keys (
    owner       TEXT    NOT NULL REFERENCES devices (device_id) ON DELETE CASCADE,
    group_id    TEXT    NOT NULL,
    sender_name TEXT    NOT NULL,
    sender_dev  INTEGER NOT NULL,
    record_enc  BLOB    NOT NULL,
    PRIMARY KEY (owner, group_id, sender_name, sender_dev)
) STRICT, WITHOUT ROWID;
