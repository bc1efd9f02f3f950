-- Webhook deliveries keep their order per instance and target: the dispatcher only takes the
-- oldest row of each (instance_id, target_kind), so this index answers "is there an older one?".
CREATE INDEX outbox_order ON outbox (instance_id, target_kind, id);
-- Which process holds a row's lease (a random id per process), so that on SQLite a restarted
-- process can free the leases of the one that died without touching its own.
ALTER TABLE outbox ADD COLUMN lease_owner TEXT;
