-- OpenAI credentials of an instance (Evolution's OpenaiCreds, `/openai/creds`). `secret` is the
-- API key, sealed like the other secrets (see the gateway's secret cipher).
CREATE TABLE bot_openai_creds (
    id          TEXT    PRIMARY KEY NOT NULL,
    instance_id TEXT    NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
    name        TEXT    NOT NULL,
    secret      TEXT    NOT NULL,
    created_at  BIGINT  NOT NULL,
    updated_at  BIGINT  NOT NULL,
    UNIQUE (instance_id, name)
);
