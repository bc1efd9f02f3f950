-- zapin-gateway schema (PostgreSQL): the Evolution data model trimmed to the first slice, plus the
-- webhook outbox. Times are Unix milliseconds (BIGINT) and JSON documents are TEXT, so that the
-- SQLite and PostgreSQL schemas are column-for-column equivalent. Everything an instance owns
-- references it with ON DELETE CASCADE, so deleting the instance row deletes the rest.

CREATE TABLE instances (
    id                TEXT    PRIMARY KEY NOT NULL,
    name              TEXT    NOT NULL UNIQUE,
    token             TEXT    NOT NULL,
    owner_jid         TEXT,
    profile_name      TEXT,
    connection_status TEXT    NOT NULL,
    integration       TEXT    NOT NULL,
    number            TEXT,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL
);

CREATE TABLE settings (
    instance_id       TEXT    PRIMARY KEY NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
    reject_call       BOOLEAN NOT NULL,
    msg_call          TEXT    NOT NULL,
    groups_ignore     BOOLEAN NOT NULL,
    always_online     BOOLEAN NOT NULL,
    read_messages     BOOLEAN NOT NULL,
    read_status       BOOLEAN NOT NULL,
    sync_full_history BOOLEAN NOT NULL,
    wavoip_token      TEXT    NOT NULL,
    updated_at        BIGINT NOT NULL
);

CREATE TABLE webhooks (
    instance_id TEXT    PRIMARY KEY NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
    id          TEXT    NOT NULL UNIQUE,
    url         TEXT    NOT NULL,
    enabled     BOOLEAN NOT NULL,
    events      TEXT    NOT NULL,
    by_events   BOOLEAN NOT NULL,
    base64      BOOLEAN NOT NULL,
    headers     TEXT    NOT NULL,
    secret      TEXT,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);

CREATE TABLE messages (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    instance_id  TEXT    NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
    key_id       TEXT    NOT NULL,
    remote_jid   TEXT    NOT NULL,
    from_me      BOOLEAN NOT NULL,
    participant  TEXT,
    push_name    TEXT,
    message      TEXT    NOT NULL,
    message_type TEXT    NOT NULL,
    timestamp    BIGINT NOT NULL,
    status       TEXT,
    UNIQUE (instance_id, key_id)
);
CREATE INDEX messages_by_chat ON messages (instance_id, remote_jid, timestamp);

CREATE TABLE contacts (
    instance_id     TEXT    NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
    remote_jid      TEXT    NOT NULL,
    push_name       TEXT,
    profile_pic_url TEXT,
    updated_at      BIGINT NOT NULL,
    PRIMARY KEY (instance_id, remote_jid)
);

CREATE TABLE chats (
    instance_id     TEXT    NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
    remote_jid      TEXT    NOT NULL,
    name            TEXT,
    unread_messages BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    PRIMARY KEY (instance_id, remote_jid)
);

-- Events waiting for delivery, one row per (event, target). Not tied to the instance by a foreign
-- key: an INSTANCE_DELETE event must outlive the instance it reports.
CREATE TABLE outbox (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    idempotency_id  TEXT    NOT NULL,
    instance_id     TEXT    NOT NULL,
    event           TEXT    NOT NULL,
    target_kind     TEXT    NOT NULL,
    url             TEXT    NOT NULL,
    headers         TEXT    NOT NULL,
    secret          TEXT,
    body            TEXT    NOT NULL,
    attempts        BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    lease_until     BIGINT,
    created_at      BIGINT NOT NULL,
    last_error      TEXT,
    last_status     BIGINT
);
CREATE INDEX outbox_due ON outbox (next_attempt_at);

-- Events given up on: a non-retryable status or the last attempt failed. Kept for inspection and
-- manual replay; the signing secret is not copied here.
CREATE TABLE dead_letter (
    id             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    idempotency_id TEXT    NOT NULL,
    instance_id    TEXT    NOT NULL,
    event          TEXT    NOT NULL,
    target_kind    TEXT    NOT NULL,
    url            TEXT    NOT NULL,
    headers        TEXT    NOT NULL,
    body           TEXT    NOT NULL,
    attempts       BIGINT NOT NULL,
    created_at     BIGINT NOT NULL,
    failed_at      BIGINT NOT NULL,
    last_error     TEXT,
    last_status    BIGINT,
    reason         TEXT    NOT NULL
);
