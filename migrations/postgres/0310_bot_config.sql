-- The chatbot configuration the gateway keeps for zapin-bots (Evolution's EvolutionBot, N8n,
-- Typebot, OpenaiBot, Dify, Flowise, Evoai tables and their <Bot>Setting rows), one table for
-- every kind. Times are Unix milliseconds; JSON documents are text.

-- One configured bot. `settings` holds the common setting fields the bot overrides (a JSON
-- object, absent or null = not set), `params` the kind's own non-secret fields (`apiUrl`,
-- `webhookUrl`, …), `secret` the kind's secret fields (`apiKey`, `basicAuthPass`) as one JSON
-- object, sealed like the other secrets (see the gateway's secret cipher), or NULL.
CREATE TABLE bot_configs (
    id               TEXT    PRIMARY KEY NOT NULL,
    instance_id      TEXT    NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
    kind             TEXT    NOT NULL,
    enabled          BIGINT  NOT NULL,
    description      TEXT,
    trigger_type     TEXT,
    trigger_operator TEXT,
    trigger_value    TEXT,
    settings         TEXT    NOT NULL,
    params           TEXT    NOT NULL,
    secret           TEXT,
    created_at       BIGINT  NOT NULL,
    updated_at       BIGINT  NOT NULL
);

CREATE INDEX bot_configs_instance ON bot_configs (instance_id, kind, created_at);

-- The settings row of one kind on one instance (`/{bot}/settings`): the common setting fields,
-- the fallback bot, and the kind's extra fields (`extra`, e.g. OpenAI's openaiCredsId).
CREATE TABLE bot_kind_settings (
    instance_id TEXT    NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
    kind        TEXT    NOT NULL,
    id          TEXT    NOT NULL UNIQUE,
    settings    TEXT    NOT NULL,
    fallback_id TEXT,
    extra       TEXT    NOT NULL,
    created_at  BIGINT  NOT NULL,
    updated_at  BIGINT  NOT NULL,
    PRIMARY KEY (instance_id, kind)
);
