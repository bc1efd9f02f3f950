-- zapin-tenancy schema (PostgreSQL): plans, tenants, their API keys and instances, quota counters,
-- the usage and message logs, and the send-pacing queue. Times are Unix milliseconds except
-- quota window starts (Unix seconds, 0 for `total`); documents are JSON text.

CREATE TABLE plans (
    name       TEXT    PRIMARY KEY NOT NULL,
    -- quotas, price_cents, overage_cents, pacing (JSON)
    document   TEXT    NOT NULL,
    created_at BIGINT  NOT NULL,
    updated_at BIGINT  NOT NULL
);

CREATE TABLE tenants (
    id         TEXT    PRIMARY KEY NOT NULL,
    name       TEXT    NOT NULL UNIQUE,
    plan       TEXT    NOT NULL REFERENCES plans (name),
    suspended  BOOLEAN NOT NULL,
    created_at BIGINT  NOT NULL,
    updated_at BIGINT  NOT NULL
);

-- A key is stored only as its HMAC-SHA256 (hex) under a key derived from the master key.
CREATE TABLE api_keys (
    id           TEXT    PRIMARY KEY NOT NULL,
    tenant_id    TEXT    NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    prefix       TEXT    NOT NULL,
    hash         TEXT    NOT NULL UNIQUE,
    created_at   BIGINT  NOT NULL,
    last_used_at BIGINT,
    expires_at   BIGINT
);
CREATE INDEX api_keys_by_tenant ON api_keys (tenant_id);

-- Which tenant owns an instance (by name, as requests address it; `instance_id` tells a
-- recreated instance of the same name apart). Instances without a row belong to the operator.
CREATE TABLE tenant_instances (
    instance_name TEXT    PRIMARY KEY NOT NULL,
    instance_id   TEXT    NOT NULL,
    tenant_id     TEXT    NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    -- per-instance pacing override (JSON), NULL: the plan's
    pacing        TEXT,
    created_at    BIGINT  NOT NULL
);
CREATE INDEX tenant_instances_by_tenant ON tenant_instances (tenant_id);

-- Quota counters: the SQL backend's state, and the flushed state of the in-process backend.
CREATE TABLE quota_counters (
    tenant_id TEXT    NOT NULL,
    quota     TEXT    NOT NULL,
    period    TEXT    NOT NULL,
    start     BIGINT  NOT NULL,
    used      BIGINT  NOT NULL,
    PRIMARY KEY (tenant_id, quota, period, start)
);

-- The in-process backend's flush high-water marks: journal records up to `seq` of this node's
-- shard are already in quota_counters.
CREATE TABLE quota_flush (
    node_id TEXT    NOT NULL,
    shard   BIGINT  NOT NULL,
    seq     BIGINT  NOT NULL,
    PRIMARY KEY (node_id, shard)
);

CREATE TABLE usage_log (
    id         BIGSERIAL PRIMARY KEY,
    at         BIGINT  NOT NULL,
    tenant_id  TEXT,
    instance   TEXT,
    method     TEXT    NOT NULL,
    route      TEXT    NOT NULL,
    quota      TEXT,
    weight     BIGINT  NOT NULL,
    status     BIGINT  NOT NULL,
    latency_us BIGINT  NOT NULL
);
CREATE INDEX usage_log_by_tenant ON usage_log (tenant_id, at);
CREATE INDEX usage_log_by_instance ON usage_log (instance, at);

-- A message's life: sent, server_ack, delivered, read, failed, received.
CREATE TABLE message_log (
    id         BIGSERIAL PRIMARY KEY,
    at         BIGINT  NOT NULL,
    tenant_id  TEXT,
    instance   TEXT    NOT NULL,
    message_id TEXT    NOT NULL,
    event      TEXT    NOT NULL
);
CREATE INDEX message_log_by_tenant ON message_log (tenant_id, at);
CREATE INDEX message_log_by_instance ON message_log (instance, at);

-- Sends accepted as PENDING beyond an instance's pace, sent later in order (id) per chat.
CREATE TABLE send_queue (
    id          BIGSERIAL PRIMARY KEY,
    instance    TEXT    NOT NULL,
    chat        TEXT    NOT NULL,
    message_id  TEXT    NOT NULL,
    payload     TEXT    NOT NULL,
    enqueued_at BIGINT  NOT NULL,
    attempts    BIGINT  NOT NULL,
    last_error  TEXT,
    UNIQUE (instance, message_id)
);
CREATE INDEX send_queue_by_instance ON send_queue (instance, id);
