-- Instance tokens are looked up by a keyed hash (HMAC-SHA256 under a key derived from the master
-- key) instead of being decrypted for every request; `token` keeps the AES-256-GCM ciphertext so
-- that Evolution's `hash` can be shown again. NULL until the gateway fills it on start (rows of
-- earlier versions) and for a row sealed under another master key, which then matches nothing.
ALTER TABLE instances ADD COLUMN token_hash TEXT;
CREATE INDEX instances_by_token_hash ON instances (token_hash);
