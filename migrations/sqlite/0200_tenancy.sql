-- zapin-tenancy schema (SQLite): plans, tenants, their API keys and instances, quota counters,
-- the usage and message logs, and the send-pacing queue. Times are Unix milliseconds except
-- quota window starts (Unix seconds, 0 for `total`); documents are JSON text.

CREATE TABLE plans (
    name       TEXT    PRIMARY KEY NOT NULL,
    -- quotas, price_cents, overage_cents, pacing (JSON)
    document   TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
) STRICT;

CREATE TABLE tenants (
    id         TEXT    PRIMARY KEY NOT NULL,
    name       TEXT    NOT NULL UNIQUE,
    plan       TEXT    NOT NULL REFERENCES plans (name),
    suspended  INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
) STRICT;

-- A key is stored only as its HMAC-SHA256 (hex) under a key derived from the master key.
CREATE TABLE api_keys (
    id           TEXT    PRIMARY KEY NOT NULL,
    tenant_id    TEXT    NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    prefix       TEXT    NOT NULL,
    hash         TEXT    NOT NULL UNIQUE,
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER,
    expires_at   INTEGER
) STRICT;
CREATE INDEX api_keys_by_tenant ON api_keys (tenant_id);

-- Which tenant owns an instance (by name, as requests address it; `instance_id` tells a
-- recreated instance of the same name apart). Instances without a row belong to the operator.
CREATE TABLE tenant_instances (
    instance_name TEXT    PRIMARY KEY NOT NULL,
    instance_id   TEXT    NOT NULL,
    tenant_id     TEXT    NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    -- per-instance pacing override (JSON), NULL: the plan's
    pacing        TEXT,
    created_at    INTEGER NOT NULL
) STRICT;
CREATE INDEX tenant_instances_by_tenant ON tenant_instances (tenant_id);

-- Quota counters: the SQL backend's state, and the flushed state of the in-process backend.
CREATE TABLE quota_counters (
    tenant_id TEXT    NOT NULL,
    quota     TEXT    NOT NULL,
    period    TEXT    NOT NULL,
    start     INTEGER NOT NULL,
    used      INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, quota, period, start)
) STRICT;

-- The in-process backend's flush high-water marks: journal records up to `seq` of this node's
-- shard are already in quota_counters.
CREATE TABLE quota_flush (
    node_id TEXT    NOT NULL,
    shard   INTEGER NOT NULL,
    seq     INTEGER NOT NULL,
    PRIMARY KEY (node_id, shard)
) STRICT;

CREATE TABLE usage_log (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    at         INTEGER NOT NULL,
    tenant_id  TEXT,
    instance   TEXT,
    method     TEXT    NOT NULL,
    route      TEXT    NOT NULL,
    quota      TEXT,
    weight     INTEGER NOT NULL,
    status     INTEGER NOT NULL,
    latency_us INTEGER NOT NULL
) STRICT;
CREATE INDEX usage_log_by_tenant ON usage_log (tenant_id, at);
CREATE INDEX usage_log_by_instance ON usage_log (instance, at);

-- A message's life: sent, server_ack, delivered, read, failed, received.
CREATE TABLE message_log (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    at         INTEGER NOT NULL,
    tenant_id  TEXT,
    instance   TEXT    NOT NULL,
    message_id TEXT    NOT NULL,
    event      TEXT    NOT NULL
) STRICT;
CREATE INDEX message_log_by_tenant ON message_log (tenant_id, at);
CREATE INDEX message_log_by_instance ON message_log (instance, at);

-- Sends accepted as PENDING beyond an instance's pace, sent later in order (id) per chat.
CREATE TABLE send_queue (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    instance    TEXT    NOT NULL,
    chat        TEXT    NOT NULL,
    message_id  TEXT    NOT NULL,
    payload     TEXT    NOT NULL,
    enqueued_at INTEGER NOT NULL,
    attempts    INTEGER NOT NULL,
    last_error  TEXT,
    UNIQUE (instance, message_id)
) STRICT;
CREATE INDEX send_queue_by_instance ON send_queue (instance, id);
