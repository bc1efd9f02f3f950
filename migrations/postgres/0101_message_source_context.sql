-- The device a message came from (Evolution's `source`: ios, android, web, desktop, unknown) and
-- the content's `contextInfo`, which Evolution keeps beside the message (the extendedText
-- rewrite to `conversation` drops it from the message itself).
ALTER TABLE messages ADD COLUMN source TEXT NOT NULL DEFAULT 'unknown';
ALTER TABLE messages ADD COLUMN context_info TEXT;
CREATE INDEX messages_by_time ON messages (instance_id, timestamp);
