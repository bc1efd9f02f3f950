-- Dashboard sign-in (zapin-tenancy): a tenant's users (e-mail and an argon2id password hash in
-- PHC form) and the dashboard's sessions. A session is stored only as the SHA-256 (hex) of its
-- cookie value; an operator session (signed in with the global key) has no user.

CREATE TABLE tenant_users (
    id            TEXT    PRIMARY KEY NOT NULL,
    tenant_id     TEXT    NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    -- lower-cased
    email         TEXT    NOT NULL UNIQUE,
    password_hash TEXT    NOT NULL,
    created_at    BIGINT  NOT NULL,
    updated_at    BIGINT  NOT NULL
);
CREATE INDEX tenant_users_by_tenant ON tenant_users (tenant_id);

CREATE TABLE dashboard_sessions (
    token_hash TEXT    PRIMARY KEY NOT NULL,
    user_id    TEXT    REFERENCES tenant_users (id) ON DELETE CASCADE,
    operator   BOOLEAN NOT NULL,
    csrf       TEXT    NOT NULL,
    created_at BIGINT  NOT NULL,
    expires_at BIGINT  NOT NULL
);
CREATE INDEX dashboard_sessions_by_expiry ON dashboard_sessions (expires_at);
