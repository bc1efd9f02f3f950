//! The gateway's sealed values: instance tokens (and their lookup hashes), webhook signing
//! secrets (in the `webhooks` table and in pending `outbox` rows), proxy credentials (the
//! `proxies` table) and chatbot credentials (`bot_configs.secret`, `bot_openai_creds.secret`).
//!
//! [`Db::seal_at_rest`] seals what earlier versions stored in plain text. [`Db::reseal`] re-seals
//! what a key rotation left under the previous key (see [`crate::keys`]).
//!
//! ## Sealing plain text
//!
//! Runs on every open with a master key, in one transaction: either every row is converted or
//! none is. It is idempotent: rows already sealed (`enc1:`) with a lookup hash are left alone. A
//! token sealed under another master key cannot be opened, so it gets no lookup hash under this
//! one and requests carrying it are answered 401; it is reported, never decrypted or rewritten.

use zapin_signal_store::{KeyUsed, ResealMode, ResealReport, SharedKeyring};

use super::{Db, DbError, with_conn};
use crate::http::TokenCipher;
use crate::webhook::SecretCipher;

/// A column of sealed webhook secrets: its table and the column the rows are paged by. The
/// secret is bound to the row's `instance_id` (see [`SecretCipher`]).
struct SealedSecrets {
    table: &'static str,
    /// The primary key: TEXT, or INTEGER when `int_key`.
    key: &'static str,
    int_key: bool,
}

/// Every column of sealed secrets besides `instances.token` (which carries a lookup hash and
/// is handled on its own). `dead_letter` keeps no secret.
const SEALED_SECRETS: &[SealedSecrets] = &[
    SealedSecrets {
        table: "webhooks",
        key: "instance_id",
        int_key: false,
    },
    SealedSecrets {
        table: "outbox",
        key: "id",
        int_key: true,
    },
    SealedSecrets {
        table: "proxies",
        key: "instance_id",
        int_key: false,
    },
    // Chatbot credentials (`apiKey`, `basicAuthPass`, …), one sealed JSON object per bot.
    SealedSecrets {
        table: "bot_configs",
        key: "id",
        int_key: false,
    },
    // OpenAI API keys (`/openai/creds`).
    SealedSecrets {
        table: "bot_openai_creds",
        key: "id",
        int_key: false,
    },
];

/// A page cursor: the last primary key seen.
#[derive(Debug, Clone)]
enum Key {
    Text(String),
    Int(i64),
}

/// What [`Db::seal_at_rest`] changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SealReport {
    /// Instance rows whose token was sealed or given its lookup hash.
    pub tokens: usize,
    /// Instance tokens that do not open under this key (sealed under another one).
    pub unreadable_tokens: usize,
    /// Webhook and outbox secrets sealed.
    pub secrets: usize,
}

impl Db {
    /// Seals the plain-text tokens and secrets left by earlier versions (see the module doc).
    /// Without a key in `tokens` there is nothing to seal with and nothing changes.
    pub async fn seal_at_rest(
        &self,
        tokens: &TokenCipher,
        secrets: &SecretCipher,
    ) -> Result<SealReport, DbError> {
        let mut report = SealReport::default();
        if !tokens.encrypts() {
            return Ok(report);
        }
        let mut tx = self.begin().await?;
        let rows: Vec<(String, String, String, Option<String>)> = with_conn!(tx &mut tx.inner, |c| {
            sqlx::query_as("SELECT id, name, token, token_hash FROM instances")
                .fetch_all(c)
                .await?
        });
        for (id, name, stored, hash) in rows {
            let sealed = stored.starts_with("enc1:");
            if sealed && hash.is_some() {
                continue;
            }
            let Ok(token) = tokens.open(&stored) else {
                report.unreadable_tokens += 1;
                tracing::warn!(
                    instance = %name,
                    "the stored token of this instance does not decrypt with the current master key (was ZAPIN_MASTER_KEY changed?): requests with it are refused"
                );
                continue;
            };
            let new_stored = if sealed {
                stored
            } else {
                tokens.seal(&token).map_err(|_| DbError::Seal)?
            };
            let new_hash = tokens.lookup(token.as_bytes());
            with_conn!(tx &mut tx.inner, |c| {
                sqlx::query("UPDATE instances SET token = $1, token_hash = $2 WHERE id = $3")
                    .bind(&new_stored)
                    .bind(&new_hash)
                    .bind(&id)
                    .execute(c)
                    .await?;
            });
            report.tokens += 1;
        }

        let hooks: Vec<(String, String)> = with_conn!(tx &mut tx.inner, |c| {
            sqlx::query_as("SELECT instance_id, secret FROM webhooks WHERE secret IS NOT NULL")
                .fetch_all(c)
                .await?
        });
        for (instance_id, secret) in hooks {
            if SecretCipher::is_sealed(&secret) {
                continue;
            }
            let sealed = secrets
                .seal(&instance_id, &secret)
                .map_err(|_| DbError::Seal)?;
            with_conn!(tx &mut tx.inner, |c| {
                sqlx::query("UPDATE webhooks SET secret = $1 WHERE instance_id = $2")
                    .bind(&sealed)
                    .bind(&instance_id)
                    .execute(c)
                    .await?;
            });
            report.secrets += 1;
        }

        let proxies: Vec<(String, String)> = with_conn!(tx &mut tx.inner, |c| {
            sqlx::query_as("SELECT instance_id, secret FROM proxies WHERE secret IS NOT NULL")
                .fetch_all(c)
                .await?
        });
        for (instance_id, secret) in proxies {
            if SecretCipher::is_sealed(&secret) {
                continue;
            }
            let sealed = secrets
                .seal(&instance_id, &secret)
                .map_err(|_| DbError::Seal)?;
            with_conn!(tx &mut tx.inner, |c| {
                sqlx::query("UPDATE proxies SET secret = $1 WHERE instance_id = $2")
                    .bind(&sealed)
                    .bind(&instance_id)
                    .execute(c)
                    .await?;
            });
            report.secrets += 1;
        }

        for table in ["bot_configs", "bot_openai_creds"] {
            let rows: Vec<(String, String, String)> = with_conn!(tx &mut tx.inner, |c| {
                sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    "SELECT id, instance_id, secret FROM {table} WHERE secret IS NOT NULL"
                )))
                .fetch_all(c)
                .await?
            });
            for (id, instance_id, secret) in rows {
                if SecretCipher::is_sealed(&secret) {
                    continue;
                }
                let sealed = secrets
                    .seal(&instance_id, &secret)
                    .map_err(|_| DbError::Seal)?;
                with_conn!(tx &mut tx.inner, |c| {
                    sqlx::query(sqlx::AssertSqlSafe(format!(
                        "UPDATE {table} SET secret = $1 WHERE id = $2"
                    )))
                    .bind(&sealed)
                    .bind(&id)
                    .execute(c)
                    .await?;
                });
                report.secrets += 1;
            }
        }

        let pending: Vec<(i64, String, String)> = with_conn!(tx &mut tx.inner, |c| {
            sqlx::query_as("SELECT id, instance_id, secret FROM outbox WHERE secret IS NOT NULL")
                .fetch_all(c)
                .await?
        });
        for (id, instance_id, secret) in pending {
            if SecretCipher::is_sealed(&secret) {
                continue;
            }
            let sealed = secrets
                .seal(&instance_id, &secret)
                .map_err(|_| DbError::Seal)?;
            with_conn!(tx &mut tx.inner, |c| {
                sqlx::query("UPDATE outbox SET secret = $1 WHERE id = $2")
                    .bind(&sealed)
                    .bind(id)
                    .execute(c)
                    .await?;
            });
            report.secrets += 1;
        }
        tx.commit().await?;
        if report != SealReport::default() {
            tracing::info!(
                tokens = report.tokens,
                secrets = report.secrets,
                unreadable_tokens = report.unreadable_tokens,
                "sealed instance tokens and webhook secrets at rest"
            );
        }
        Ok(report)
    }
}

impl Db {
    /// Re-seals every instance token and webhook secret that opens only under the keyring's
    /// previous key under its current key (or, with [`ResealMode::Check`], only counts which key
    /// each is under). Batches of `batch` rows, each in its own transaction, each row written
    /// back only if it still holds what was read, so it runs safely while the gateway serves and
    /// can be run again after an interruption. Plain-text rows are left to
    /// [`Db::seal_at_rest`].
    pub async fn reseal(
        &self,
        keys: &SharedKeyring,
        mode: ResealMode,
        batch: usize,
    ) -> Result<ResealReport, DbError> {
        let batch = batch.max(1);
        let mut report = ResealReport::default();
        self.reseal_tokens(keys, mode, batch, &mut report).await?;
        for column in SEALED_SECRETS {
            self.reseal_secrets(column, keys, mode, batch, &mut report)
                .await?;
        }
        Ok(report)
    }

    async fn reseal_tokens(
        &self,
        keys: &SharedKeyring,
        mode: ResealMode,
        batch: usize,
        report: &mut ResealReport,
    ) -> Result<(), DbError> {
        let tokens = TokenCipher::with_keyring(Some(keys.clone()));
        let limit = i64::try_from(batch).unwrap_or(i64::MAX);
        let mut after = String::new();
        loop {
            let rows: Vec<(String, String, Option<String>)> = with_conn!(pool & self.pool, |c| {
                sqlx::query_as(
                    "SELECT id, token, token_hash FROM instances WHERE id > $1 ORDER BY id LIMIT $2",
                )
                .bind(&after)
                .bind(limit)
                .fetch_all(c)
                .await?
            });
            let mut writes = Vec::new();
            for (id, stored, hash) in &rows {
                match tokens.open_which(stored) {
                    // Plain text: sealed by `seal_at_rest`, not here.
                    Ok((_, None)) => {}
                    Ok((token, Some(used))) => {
                        let current_hash = tokens.lookup(token.as_bytes());
                        if used == KeyUsed::Current && *hash == current_hash {
                            report.current += 1;
                            continue;
                        }
                        report.previous += 1;
                        if mode == ResealMode::Reseal {
                            let sealed = tokens.seal(&token).map_err(|_| DbError::Seal)?;
                            writes.push((id, stored, sealed, current_hash));
                        }
                    }
                    Err(_) => report.unreadable += 1,
                }
            }
            if !writes.is_empty() {
                let mut tx = self.begin().await?;
                for (id, old, sealed, hash) in &writes {
                    let done = with_conn!(tx & mut tx.inner, |c| {
                        sqlx::query(
                            "UPDATE instances SET token = $1, token_hash = $2 \
                             WHERE id = $3 AND token = $4",
                        )
                        .bind(sealed)
                        .bind(hash)
                        .bind(id)
                        .bind(old)
                        .execute(c)
                        .await?
                        .rows_affected()
                    });
                    report.resealed += done;
                    report.raced += 1 - done.min(1);
                }
                tx.commit().await?;
            }
            match rows.last() {
                Some((id, _, _)) if rows.len() == batch => after.clone_from(id),
                _ => return Ok(()),
            }
        }
    }

    async fn reseal_secrets(
        &self,
        column: &SealedSecrets,
        keys: &SharedKeyring,
        mode: ResealMode,
        batch: usize,
        report: &mut ResealReport,
    ) -> Result<(), DbError> {
        let secrets = SecretCipher::with_keyring(Some(keys.clone()));
        let limit = i64::try_from(batch).unwrap_or(i64::MAX);
        let select = format!(
            "SELECT {key}, instance_id, secret FROM {table} \
             WHERE secret IS NOT NULL AND {key} > $1 ORDER BY {key} LIMIT $2",
            key = column.key,
            table = column.table
        );
        let update = format!(
            "UPDATE {table} SET secret = $1 WHERE {key} = $2 AND secret = $3",
            key = column.key,
            table = column.table
        );
        let mut after = if column.int_key {
            Key::Int(i64::MIN)
        } else {
            Key::Text(String::new())
        };
        loop {
            let rows: Vec<(Key, String, String)> = match &after {
                Key::Text(after) => {
                    let rows: Vec<(String, String, String)> = with_conn!(pool & self.pool, |c| {
                        sqlx::query_as(sqlx::AssertSqlSafe(select.clone()))
                            .bind(after)
                            .bind(limit)
                            .fetch_all(c)
                            .await?
                    });
                    rows.into_iter()
                        .map(|(k, i, s)| (Key::Text(k), i, s))
                        .collect()
                }
                Key::Int(after) => {
                    let rows: Vec<(i64, String, String)> = with_conn!(pool & self.pool, |c| {
                        sqlx::query_as(sqlx::AssertSqlSafe(select.clone()))
                            .bind(after)
                            .bind(limit)
                            .fetch_all(c)
                            .await?
                    });
                    rows.into_iter()
                        .map(|(k, i, s)| (Key::Int(k), i, s))
                        .collect()
                }
            };
            let full = rows.len() == batch;
            let mut writes = Vec::new();
            for (key, instance_id, stored) in &rows {
                match secrets.open_which(instance_id, stored) {
                    Ok((_, None)) => {}
                    Ok((_, Some(KeyUsed::Current))) => report.current += 1,
                    Ok((secret, Some(KeyUsed::Previous))) => {
                        report.previous += 1;
                        if mode == ResealMode::Reseal {
                            let sealed = secrets
                                .seal(instance_id, &secret)
                                .map_err(|_| DbError::Seal)?;
                            writes.push((key, stored, sealed));
                        }
                    }
                    Err(_) => report.unreadable += 1,
                }
            }
            if !writes.is_empty() {
                let mut tx = self.begin().await?;
                for (key, old, sealed) in &writes {
                    let done = with_conn!(tx & mut tx.inner, |c| {
                        let query = sqlx::query(sqlx::AssertSqlSafe(update.clone())).bind(sealed);
                        let query = match key {
                            Key::Text(k) => query.bind(k.as_str()),
                            Key::Int(k) => query.bind(*k),
                        };
                        query.bind(old.as_str()).execute(c).await?.rows_affected()
                    });
                    report.resealed += done;
                    report.raced += 1 - done.min(1);
                }
                tx.commit().await?;
            }
            match rows.into_iter().last() {
                Some((key, _, _)) if full => after = key,
                _ => return Ok(()),
            }
        }
    }
}
