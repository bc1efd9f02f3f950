//! A tenant's dashboard users and the dashboard's sign-in sessions.
//!
//! Passwords are stored as argon2id PHC strings (the `argon2` crate's defaults: 19 MiB, two
//! passes), hashed and verified on the blocking pool so that a sign-in never stalls the request
//! threads. An unknown e-mail address still costs one verification against a fixed hash, so the
//! answer time does not tell which addresses exist.
//!
//! A session is a random 256-bit token in the browser's cookie; the table keeps only its SHA-256,
//! so a leaked database does not sign anyone in. Each session carries its own CSRF token, which
//! every form and script request of the dashboard must echo.

use std::sync::OnceLock;

use argon2::Argon2;
use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
use serde::Serialize;
use sha2::{Digest as _, Sha256};

use crate::error::TenancyError;
use crate::sql::{SqlPool, new_uuid, now_ms, with_pool};

/// Shortest password accepted.
pub const MIN_PASSWORD_LEN: usize = 10;
/// Longest password accepted (argon2 takes any length; this bounds the work per attempt).
pub const MAX_PASSWORD_LEN: usize = 256;

/// A tenant's dashboard user (never carries the password hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub id: String,
    pub tenant_id: String,
    pub email: String,
    /// Unix milliseconds.
    pub created_at: i64,
}

/// Who a dashboard session belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionOwner {
    /// Signed in with the global key.
    Operator,
    User(User),
}

/// A live dashboard session.
#[derive(Debug, Clone)]
pub struct Session {
    pub owner: SessionOwner,
    /// Must be echoed by every state-changing request of this session.
    pub csrf: String,
    pub expires_at: i64,
}

/// A new session: the cookie value (the only copy) and the session.
#[derive(Debug)]
pub struct NewSession {
    pub token: String,
    pub session: Session,
}

/// The users and sessions tables. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Users {
    pool: SqlPool,
}

type UserRow = (String, String, String, i64);
type SessionRow = (
    bool,
    String,
    i64,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<i64>,
);

fn user(row: UserRow) -> User {
    User {
        id: row.0,
        tenant_id: row.1,
        email: row.2,
        created_at: row.3,
    }
}

fn random_hex(bytes: usize) -> Result<String, TenancyError> {
    let mut b = vec![0u8; bytes];
    getrandom::fill(&mut b).map_err(|_| TenancyError::Rng)?;
    Ok(hex::encode(b))
}

fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Lower-cases and checks an e-mail address (one `@`, something on both sides, a dot in the
/// domain, no spaces, at most 254 characters).
pub fn normalize_email(email: &str) -> Result<String, TenancyError> {
    let email = email.trim().to_lowercase();
    let valid = email.len() <= 254
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && !domain.contains('@')
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        });
    if valid {
        Ok(email)
    } else {
        Err(TenancyError::Invalid(
            "email must be an e-mail address".into(),
        ))
    }
}

/// Checks a new password's length.
pub fn check_password(password: &str) -> Result<(), TenancyError> {
    let n = password.chars().count();
    if n < MIN_PASSWORD_LEN {
        return Err(TenancyError::Invalid(format!(
            "password must have at least {MIN_PASSWORD_LEN} characters"
        )));
    }
    if password.len() > MAX_PASSWORD_LEN {
        return Err(TenancyError::Invalid(format!(
            "password must have at most {MAX_PASSWORD_LEN} bytes"
        )));
    }
    Ok(())
}

fn hash_password(password: &[u8]) -> Result<String, TenancyError> {
    Argon2::default()
        .hash_password(password)
        .map(|h| h.to_string())
        .map_err(|_| TenancyError::Rng)
}

/// A hash of a password nobody has, verified when the address is unknown.
fn decoy_hash() -> &'static str {
    static DECOY: OnceLock<String> = OnceLock::new();
    DECOY.get_or_init(|| hash_password(b"zapin decoy password").unwrap_or_default())
}

fn verify(password: &[u8], hash: &str) -> bool {
    Argon2::default().verify_password(password, hash).is_ok()
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, TenancyError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|_| TenancyError::Invalid("password hashing was interrupted".into()))
}

impl Users {
    pub fn new(pool: SqlPool) -> Self {
        Self { pool }
    }

    /// Adds a user to `tenant_id`. 409 when the address is taken, 404 for an unknown tenant.
    pub async fn add(
        &self,
        tenant_id: &str,
        email: &str,
        password: &str,
    ) -> Result<User, TenancyError> {
        let email = normalize_email(email)?;
        check_password(password)?;
        let password = password.as_bytes().to_vec();
        let hash = blocking(move || hash_password(&password)).await??;
        let now = now_ms();
        let new = User {
            id: new_uuid()?,
            tenant_id: tenant_id.to_owned(),
            email,
            created_at: now,
        };
        let result = with_pool!(&self.pool, |c| {
            sqlx::query(
                "INSERT INTO tenant_users (id, tenant_id, email, password_hash, created_at, \
                 updated_at) VALUES ($1, $2, $3, $4, $5, $5)",
            )
            .bind(&new.id)
            .bind(tenant_id)
            .bind(&new.email)
            .bind(&hash)
            .bind(now)
            .execute(c)
            .await
            .map(|_| ())
        });
        match result {
            Ok(()) => Ok(new),
            Err(e)
                if e.as_database_error()
                    .is_some_and(|d| d.is_unique_violation()) =>
            {
                Err(TenancyError::Conflict(format!(
                    "a user with e-mail {:?} exists",
                    new.email
                )))
            }
            Err(e)
                if e.as_database_error()
                    .is_some_and(|d| d.is_foreign_key_violation()) =>
            {
                Err(TenancyError::NotFound(format!("no tenant {tenant_id:?}")))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// A tenant's users, by e-mail.
    pub async fn list(&self, tenant_id: &str) -> Result<Vec<User>, TenancyError> {
        let rows: Vec<UserRow> = with_pool!(&self.pool, |c| {
            sqlx::query_as(
                "SELECT id, tenant_id, email, created_at FROM tenant_users \
                 WHERE tenant_id = $1 ORDER BY email",
            )
            .bind(tenant_id)
            .fetch_all(c)
            .await?
        });
        Ok(rows.into_iter().map(user).collect())
    }

    /// The user with this e-mail and password, or `None` (unknown address or wrong password:
    /// the caller must not tell which).
    pub async fn verify(&self, email: &str, password: &str) -> Result<Option<User>, TenancyError> {
        let Ok(email) = normalize_email(email) else {
            return Ok(None);
        };
        let row: Option<(String, String, String, i64, String)> = with_pool!(&self.pool, |c| {
            sqlx::query_as(
                "SELECT id, tenant_id, email, created_at, password_hash FROM tenant_users \
                 WHERE email = $1",
            )
            .bind(&email)
            .fetch_optional(c)
            .await?
        });
        let password = password.as_bytes().to_vec();
        if password.len() > MAX_PASSWORD_LEN {
            return Ok(None);
        }
        match row {
            Some((id, tenant_id, email, created_at, hash)) => {
                let ok = blocking(move || verify(&password, &hash)).await?;
                Ok(ok.then_some(User {
                    id,
                    tenant_id,
                    email,
                    created_at,
                }))
            }
            None => {
                blocking(move || verify(&password, decoy_hash())).await?;
                Ok(None)
            }
        }
    }

    /// Opens a session for `owner`, valid for `ttl_ms`.
    pub async fn open_session(
        &self,
        owner: SessionOwner,
        ttl_ms: i64,
    ) -> Result<NewSession, TenancyError> {
        let token = random_hex(32)?;
        let csrf = random_hex(32)?;
        let now = now_ms();
        let expires_at = now.saturating_add(ttl_ms);
        let (operator, user_id) = match &owner {
            SessionOwner::Operator => (true, None),
            SessionOwner::User(u) => (false, Some(u.id.clone())),
        };
        with_pool!(&self.pool, |c| {
            // Expired sessions go as new ones come: the table holds only live ones (and those
            // of the last sign-in's moment).
            sqlx::query("DELETE FROM dashboard_sessions WHERE expires_at < $1")
                .bind(now)
                .execute(c)
                .await?;
            sqlx::query(
                "INSERT INTO dashboard_sessions (token_hash, user_id, operator, csrf, \
                 created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(token_hash(&token))
            .bind(user_id)
            .bind(operator)
            .bind(&csrf)
            .bind(now)
            .bind(expires_at)
            .execute(c)
            .await?;
        });
        Ok(NewSession {
            token,
            session: Session {
                owner,
                csrf,
                expires_at,
            },
        })
    }

    /// The live session of a cookie value, if any.
    pub async fn session(&self, token: &str) -> Result<Option<Session>, TenancyError> {
        if token.len() != 64 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(None);
        }
        let row: Option<SessionRow> = with_pool!(&self.pool, |c| {
            sqlx::query_as(
                "SELECT s.operator, s.csrf, s.expires_at, u.id, u.tenant_id, u.email, \
                 u.created_at FROM dashboard_sessions s LEFT JOIN tenant_users u \
                 ON u.id = s.user_id WHERE s.token_hash = $1 AND s.expires_at > $2",
            )
            .bind(token_hash(token))
            .bind(now_ms())
            .fetch_optional(c)
            .await?
        });
        let Some((operator, csrf, expires_at, id, tenant_id, email, created_at)) = row else {
            return Ok(None);
        };
        let owner = if operator {
            SessionOwner::Operator
        } else {
            match (id, tenant_id, email, created_at) {
                (Some(id), Some(tenant_id), Some(email), Some(created_at)) => {
                    SessionOwner::User(User {
                        id,
                        tenant_id,
                        email,
                        created_at,
                    })
                }
                // The user was deleted (the cascade removes the row; a race may not have).
                _ => return Ok(None),
            }
        };
        Ok(Some(Session {
            owner,
            csrf,
            expires_at,
        }))
    }

    /// Ends a session (sign-out). Unknown tokens are ignored.
    pub async fn close_session(&self, token: &str) -> Result<(), TenancyError> {
        with_pool!(&self.pool, |c| {
            sqlx::query("DELETE FROM dashboard_sessions WHERE token_hash = $1")
                .bind(token_hash(token))
                .execute(c)
                .await?;
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn emails_are_lower_cased_and_checked() {
        assert_eq!(
            normalize_email(" Ana@Example.COM ").unwrap(),
            "ana@example.com"
        );
        for bad in [
            "",
            "ana",
            "@example.com",
            "ana@",
            "ana@example",
            "a b@c.d",
            "a@b@c.d",
        ] {
            assert!(normalize_email(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn passwords_have_a_minimum_length() {
        assert!(check_password("short").is_err());
        assert!(check_password("long enough pass").is_ok());
        assert!(check_password(&"x".repeat(300)).is_err());
    }

    #[test]
    fn hashes_are_argon2id_and_verify() {
        let hash = hash_password(b"correct horse").unwrap();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(verify(b"correct horse", &hash));
        assert!(!verify(b"wrong horse", &hash));
    }
}
