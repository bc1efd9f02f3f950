//! The `master_key_check` row: which master key a database's sealed values are under.
//!
//! Without it a process started with the wrong key cannot tell until it fails to open a row, and
//! then it half-works: tokens answer 401 and paired devices need a new QR. With it, start-up
//! compares the [`KeyFingerprint`] of its key with the stored one before touching anything. The
//! row is shared by every crate that seals values in the database (the gateway uses it for its
//! own database too), so it lives here with the master key.

use sqlx::Row as _;

use crate::error::StoreError;
use crate::master_key::KeyFingerprint;

/// A connection pool of either backend: the functions of this module run on other crates'
/// databases too.
#[derive(Debug, Clone, Copy)]
pub enum PoolRef<'a> {
    Sqlite(&'a sqlx::SqlitePool),
    Postgres(&'a sqlx::PgPool),
}

/// What a database records about its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyCheck {
    /// The key every value is sealed under, or being re-sealed to.
    pub fingerprint: KeyFingerprint,
    /// Set while a rotation has not confirmed that no value is left under this older key.
    pub previous: Option<KeyFingerprint>,
}

const SELECT: &str = "SELECT fingerprint, previous_fingerprint FROM master_key_check WHERE id = 1";
const UPSERT: &str = "INSERT INTO master_key_check (id, fingerprint, previous_fingerprint, updated_at) \
     VALUES (1, $1, $2, $3) ON CONFLICT (id) DO UPDATE SET fingerprint = excluded.fingerprint, \
     previous_fingerprint = excluded.previous_fingerprint, updated_at = excluded.updated_at";

/// The database's record, `None` when it has none yet (fresh, or written by a version without
/// key checks).
pub async fn load(pool: PoolRef<'_>) -> Result<Option<KeyCheck>, StoreError> {
    let row: Option<(String, Option<String>)> = match pool {
        PoolRef::Sqlite(p) => sqlx::query(SELECT)
            .fetch_optional(p)
            .await?
            .map(|r| Ok::<_, sqlx::Error>((r.try_get(0)?, r.try_get(1)?)))
            .transpose()?,
        PoolRef::Postgres(p) => sqlx::query(SELECT)
            .fetch_optional(p)
            .await?
            .map(|r| Ok::<_, sqlx::Error>((r.try_get(0)?, r.try_get(1)?)))
            .transpose()?,
    };
    Ok(row.map(|(fingerprint, previous)| KeyCheck {
        fingerprint: KeyFingerprint::from_stored(fingerprint),
        previous: previous.map(KeyFingerprint::from_stored),
    }))
}

/// Records `check` (durable when it returns).
pub async fn save(pool: PoolRef<'_>, check: &KeyCheck) -> Result<(), StoreError> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    let fingerprint = check.fingerprint.as_str();
    let previous = check.previous.as_ref().map(KeyFingerprint::as_str);
    match pool {
        PoolRef::Sqlite(p) => {
            sqlx::query(UPSERT)
                .bind(fingerprint)
                .bind(previous)
                .bind(now)
                .execute(p)
                .await?;
        }
        PoolRef::Postgres(p) => {
            sqlx::query(UPSERT)
                .bind(fingerprint)
                .bind(previous)
                .bind(now)
                .execute(p)
                .await?;
        }
    }
    Ok(())
}
