-- zapin-signal-store schema (PostgreSQL). Every row belongs to one device (`owner`); deleting the
-- device row cascades to everything it owns. Columns named *_enc hold AES-256-GCM ciphertext
-- (version byte || 12-byte nonce || ciphertext || tag); the store never interprets Signal records.
-- Integers are BIGINT so that one set of i64 binds serves both backends.

CREATE TABLE devices (
    device_id           TEXT   PRIMARY KEY,
    registration_id     BIGINT NOT NULL,
    noise_public        BYTEA  NOT NULL,
    identity_public     BYTEA  NOT NULL,
    signed_prekey_id    BIGINT NOT NULL,
    secrets_enc         BYTEA  NOT NULL,
    account_jid         TEXT,
    device_jid          TEXT,
    lid                 TEXT,
    adv_signed_identity BYTEA,
    push_name           TEXT,
    platform            TEXT,
    business_name       TEXT,
    routing_info        BYTEA,
    max_prekey_id       BIGINT
);

CREATE TABLE identities (
    owner        TEXT   NOT NULL REFERENCES devices (device_id) ON DELETE CASCADE,
    name         TEXT   NOT NULL,
    device       BIGINT NOT NULL,
    identity_key BYTEA  NOT NULL,
    trust        BIGINT NOT NULL,
    PRIMARY KEY (owner, name, device)
);

CREATE TABLE prekeys (
    owner       TEXT   NOT NULL REFERENCES devices (device_id) ON DELETE CASCADE,
    id          BIGINT NOT NULL,
    public_key  BYTEA  NOT NULL,
    private_enc BYTEA  NOT NULL,
    PRIMARY KEY (owner, id)
);

CREATE TABLE signed_prekeys (
    owner       TEXT   NOT NULL REFERENCES devices (device_id) ON DELETE CASCADE,
    id          BIGINT NOT NULL,
    public_key  BYTEA  NOT NULL,
    private_enc BYTEA  NOT NULL,
    signature   BYTEA  NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (owner, id)
);

CREATE TABLE sessions (
    owner      TEXT   NOT NULL REFERENCES devices (device_id) ON DELETE CASCADE,
    name       TEXT   NOT NULL,
    device     BIGINT NOT NULL,
    record_enc BYTEA  NOT NULL,
    PRIMARY KEY (owner, name, device)
);

CREATE TABLE sender_keys (
    owner       TEXT   NOT NULL REFERENCES devices (device_id) ON DELETE CASCADE,
    group_id    TEXT   NOT NULL,
    sender_name TEXT   NOT NULL,
    sender_dev  BIGINT NOT NULL,
    record_enc  BYTEA  NOT NULL,
    PRIMARY KEY (owner, group_id, sender_name, sender_dev)
);
