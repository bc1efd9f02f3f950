-- Sends the gateway answers for but the server has not acknowledged yet. A row is written with the
-- message row (status PENDING) BEFORE the engine encrypts or writes anything, and deleted in the
-- transaction that records the server's ack (or marks the message failed). A row left by a crash
-- is resent under the same id or marked failed on the next start (README, "Sending").
CREATE TABLE pending_sends (
    instance_id TEXT    NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
    key_id      TEXT    NOT NULL,
    -- The validated sendText body (JSON), enough to send the message again.
    request     TEXT    NOT NULL,
    -- Unix milliseconds of the reservation; the resend window counts from here.
    reserved_at INTEGER NOT NULL,
    -- Whether send.message was enqueued (the API answered for the message).
    answered    INTEGER NOT NULL,
    PRIMARY KEY (instance_id, key_id)
) STRICT;
CREATE INDEX pending_sends_by_age ON pending_sends (reserved_at);
