-- The receive inbox: a decrypted incoming message, sealed, written in the same transaction as the
-- ratchet step that decrypted it. It stays until the consumer (the gateway) has stored the
-- message and confirmed it, so a crash between the Signal commit and the consumer's own commit
-- loses nothing: the rows left here are surfaced again at the next start. `seq` orders them as
-- they arrived.
CREATE TABLE inbox (
    seq        BIGSERIAL PRIMARY KEY,
    owner      TEXT   NOT NULL REFERENCES devices (device_id) ON DELETE CASCADE,
    sender     TEXT   NOT NULL,
    msg_id     TEXT   NOT NULL,
    body_enc   BYTEA  NOT NULL,
    UNIQUE (owner, sender, msg_id)
);
