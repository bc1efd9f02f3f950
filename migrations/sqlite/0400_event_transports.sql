-- The event bus (zapin-events): every outbox and dead_letter row names the transport that
-- delivers it, and each transport's dispatcher drains only its own rows, so a broker that is
-- down never holds back the webhooks (or the other way round).
ALTER TABLE outbox ADD COLUMN transport TEXT NOT NULL DEFAULT 'webhook';
ALTER TABLE dead_letter ADD COLUMN transport TEXT NOT NULL DEFAULT 'webhook';
CREATE INDEX outbox_transport_due ON outbox (transport, next_attempt_at);

-- Per-instance settings of the broker and socket transports (Evolution's Rabbitmq, Nats, Sqs,
-- Kafka and Websocket tables, one row per instance and transport).
CREATE TABLE event_transports (
    instance_id TEXT    NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
    transport   TEXT    NOT NULL,
    id          TEXT    NOT NULL UNIQUE,
    enabled     INTEGER NOT NULL,
    events      TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (instance_id, transport)
) STRICT;
