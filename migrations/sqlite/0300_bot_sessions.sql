-- zapin-bots: chatbot sessions (Evolution's IntegrationSession). One row per conversation of a
-- contact with a bot; `instance` is the key the gateway gives the engine. Times are Unix
-- milliseconds, `context` is adapter-private JSON text, `await_user` is 0/1.
CREATE TABLE bot_sessions (
    id          TEXT    PRIMARY KEY NOT NULL,
    instance    TEXT    NOT NULL,
    remote_jid  TEXT    NOT NULL,
    kind        TEXT    NOT NULL,
    bot_id      TEXT,
    session_id  TEXT    NOT NULL,
    push_name   TEXT,
    status      TEXT    NOT NULL,
    await_user  INTEGER NOT NULL,
    context     TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
) STRICT;

-- "The newest session of this contact" on every inbound message.
CREATE INDEX bot_sessions_contact ON bot_sessions (instance, remote_jid, updated_at);
-- fetchSessions by bot.
CREATE INDEX bot_sessions_bot ON bot_sessions (instance, bot_id);
