-- zapin-gateway schema (SQLite): the Evolution data model trimmed to the first slice, plus the
-- webhook outbox. Times are Unix milliseconds (INTEGER) and JSON documents are TEXT, so that the
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
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL
) STRICT;

CREATE TABLE settings (
    instance_id       TEXT    PRIMARY KEY NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
    reject_call       INTEGER NOT NULL,
    msg_call          TEXT    NOT NULL,
    groups_ignore     INTEGER NOT NULL,
    always_online     INTEGER NOT NULL,
    read_messages     INTEGER NOT NULL,
    read_status       INTEGER NOT NULL,
    sync_full_history INTEGER NOT NULL,
    wavoip_token      TEXT    NOT NULL,
    updated_at        INTEGER NOT NULL
) STRICT;

CREATE TABLE webhooks (
    instance_id TEXT    PRIMARY KEY NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
    id          TEXT    NOT NULL UNIQUE,
    url         TEXT    NOT NULL,
    enabled     INTEGER NOT NULL,
    events      TEXT    NOT NULL,
    by_events   INTEGER NOT NULL,
    base64      INTEGER NOT NULL,
    headers     TEXT    NOT NULL,
    secret      TEXT,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
) STRICT;

CREATE TABLE messages (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    instance_id  TEXT    NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
    key_id       TEXT    NOT NULL,
    remote_jid   TEXT    NOT NULL,
    from_me      INTEGER NOT NULL,
    participant  TEXT,
    push_name    TEXT,
    message      TEXT    NOT NULL,
    message_type TEXT    NOT NULL,
    timestamp    INTEGER NOT NULL,
    status       TEXT,
    UNIQUE (instance_id, key_id)
) STRICT;
CREATE INDEX messages_by_chat ON messages (instance_id, remote_jid, timestamp);

CREATE TABLE contacts (
    instance_id     TEXT    NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
    remote_jid      TEXT    NOT NULL,
    push_name       TEXT,
    profile_pic_url TEXT,
    updated_at      INTEGER NOT NULL,
    PRIMARY KEY (instance_id, remote_jid)
) STRICT;

CREATE TABLE chats (
    instance_id     TEXT    NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
    remote_jid      TEXT    NOT NULL,
    name            TEXT,
    unread_messages INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    PRIMARY KEY (instance_id, remote_jid)
) STRICT;

-- Events waiting for delivery, one row per (event, target). Not tied to the instance by a foreign
-- key: an INSTANCE_DELETE event must outlive the instance it reports.
CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    idempotency_id  TEXT    NOT NULL,
    instance_id     TEXT    NOT NULL,
    event           TEXT    NOT NULL,
    target_kind     TEXT    NOT NULL,
    url             TEXT    NOT NULL,
    headers         TEXT    NOT NULL,
    secret          TEXT,
    body            TEXT    NOT NULL,
    attempts        INTEGER NOT NULL,
    next_attempt_at INTEGER NOT NULL,
    lease_until     INTEGER,
    created_at      INTEGER NOT NULL,
    last_error      TEXT,
    last_status     INTEGER
) STRICT;
CREATE INDEX outbox_due ON outbox (next_attempt_at);

-- Events given up on: a non-retryable status or the last attempt failed. Kept for inspection and
-- manual replay; the signing secret is not copied here.
CREATE TABLE dead_letter (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    idempotency_id TEXT    NOT NULL,
    instance_id    TEXT    NOT NULL,
    event          TEXT    NOT NULL,
    target_kind    TEXT    NOT NULL,
    url            TEXT    NOT NULL,
    headers        TEXT    NOT NULL,
    body           TEXT    NOT NULL,
    attempts       INTEGER NOT NULL,
    created_at     INTEGER NOT NULL,
    failed_at      INTEGER NOT NULL,
    last_error     TEXT,
    last_status    INTEGER,
    reason         TEXT    NOT NULL
) STRICT;
