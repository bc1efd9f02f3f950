-- Webhook deliveries keep their order per instance and target: the dispatcher only takes the
-- oldest row of each (instance_id, target_kind), so this index answers "is there an older one?".
CREATE INDEX outbox_order ON outbox (instance_id, target_kind, id);
