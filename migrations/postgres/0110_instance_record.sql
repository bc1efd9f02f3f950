-- What fetchInstances reports beyond the connection itself (Evolution's Instance row): the last
-- disconnect that closed the instance (disconnectionReasonCode, disconnectionObject as the JSON
-- text Evolution stores, disconnectionAt in Unix milliseconds), kept across reconnects as
-- Evolution does, and the businessId given at create.
ALTER TABLE instances ADD COLUMN disconnection_reason_code BIGINT;
ALTER TABLE instances ADD COLUMN disconnection_object TEXT;
ALTER TABLE instances ADD COLUMN disconnection_at BIGINT;
ALTER TABLE instances ADD COLUMN business_id TEXT;
