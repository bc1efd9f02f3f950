//! Sealing what earlier versions stored in plain text: instance tokens (and their lookup
//! hashes) and webhook signing secrets, in the `webhooks` table and in pending `outbox` rows.
//!
//! Runs on every open with a master key, in one transaction: either every row is converted or
//! none is. It is idempotent: rows already sealed (`enc1:`) with a lookup hash are left alone. A
//! token sealed under another master key cannot be opened, so it gets no lookup hash under this
//! one and requests carrying it are answered 401; it is reported, never decrypted or rewritten.

use super::{Db, DbError, with_conn};
use crate::http::TokenCipher;
use crate::webhook::SecretCipher;

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
