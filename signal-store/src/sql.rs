//! SQLite and PostgreSQL backends. The SQL is identical for both (`$n` placeholders, `ON
//! CONFLICT` upserts, `RETURNING`, BIGINT/INTEGER columns read as `i64`), so one macro expands
//! the same code for each sqlx driver; only the statement that opens a write transaction differs
//! (`BEGIN IMMEDIATE` on SQLite takes the write lock up front, so a read-then-write transaction
//! cannot fail with SQLITE_BUSY half way through).

use sqlx::Row as _;

use crate::error::StoreError;
use crate::rows::{DeviceRow, IdentityRow, InboxRow, PreKeyRow, RowOp, SignedPreKeyRow};

fn is_fk_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_foreign_key_violation())
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_unique_violation())
}

/// Maps a failed insert: a missing parent row means the device does not exist.
fn write_err(owner: &str, e: sqlx::Error) -> StoreError {
    if is_fk_violation(&e) {
        StoreError::UnknownDevice(owner.to_owned())
    } else {
        StoreError::Database(e)
    }
}

const SELECT_DEVICE: &str = "SELECT d.registration_id, d.noise_public, d.identity_public, \
     d.signed_prekey_id, d.secrets_enc, d.account_jid, d.device_jid, d.lid, \
     d.adv_signed_identity, d.push_name, d.platform, d.business_name, d.routing_info, \
     s.public_key, s.private_enc, s.signature, s.created_at \
     FROM devices d LEFT JOIN signed_prekeys s \
     ON s.owner = d.device_id AND s.id = d.signed_prekey_id WHERE d.device_id = $1";

const INSERT_DEVICE: &str = "INSERT INTO devices (device_id, registration_id, noise_public, \
     identity_public, signed_prekey_id, secrets_enc, account_jid, device_jid, lid, \
     adv_signed_identity, push_name, platform, business_name, routing_info) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)";

const UPDATE_DEVICE: &str = "UPDATE devices SET registration_id = $2, noise_public = $3, \
     identity_public = $4, signed_prekey_id = $5, secrets_enc = $6, account_jid = $7, \
     device_jid = $8, lid = $9, adv_signed_identity = $10, push_name = $11, platform = $12, \
     business_name = $13, routing_info = $14 WHERE device_id = $1";

const UPSERT_SIGNED_PREKEY: &str = "INSERT INTO signed_prekeys \
     (owner, id, public_key, private_enc, signature, created_at) VALUES ($1, $2, $3, $4, $5, $6) \
     ON CONFLICT (owner, id) DO UPDATE SET public_key = excluded.public_key, \
     private_enc = excluded.private_enc, signature = excluded.signature, \
     created_at = excluded.created_at";

const UPSERT_SESSION: &str = "INSERT INTO sessions (owner, name, device, record_enc) \
     VALUES ($1, $2, $3, $4) \
     ON CONFLICT (owner, name, device) DO UPDATE SET record_enc = excluded.record_enc";

const DELETE_SESSION: &str = "DELETE FROM sessions WHERE owner = $1 AND name = $2 AND device = $3";

const DELETE_PREKEY: &str = "DELETE FROM prekeys WHERE owner = $1 AND id = $2";

const UPSERT_SENDER_KEY: &str = "INSERT INTO sender_keys \
     (owner, group_id, sender_name, sender_dev, record_enc) VALUES ($1, $2, $3, $4, $5) \
     ON CONFLICT (owner, group_id, sender_name, sender_dev) \
     DO UPDATE SET record_enc = excluded.record_enc";

const UPSERT_IDENTITY: &str = "INSERT INTO identities (owner, name, device, identity_key, trust) \
     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (owner, name, device) \
     DO UPDATE SET identity_key = excluded.identity_key, trust = excluded.trust";

/// A redelivered message that was decrypted before keeps its first row.
const INSERT_INBOX: &str = "INSERT INTO inbox (owner, sender, msg_id, body_enc) \
     VALUES ($1, $2, $3, $4) ON CONFLICT (owner, sender, msg_id) DO NOTHING";

const SELECT_IDENTITY: &str = "SELECT identity_key, trust FROM identities \
     WHERE owner = $1 AND name = $2 AND device = $3";

/// Binds `$1..$14` of [`INSERT_DEVICE`] and [`UPDATE_DEVICE`], which share their column order,
/// so the two statements cannot drift apart. A macro because the query type differs per driver.
macro_rules! bind_device {
    ($query:expr, $owner:expr, $d:expr) => {
        $query
            .bind($owner)
            .bind($d.registration_id)
            .bind($d.noise_public.as_slice())
            .bind($d.identity_public.as_slice())
            .bind($d.signed_prekey_id)
            .bind($d.secrets_enc.as_slice())
            .bind($d.account_jid.as_deref())
            .bind($d.device_jid.as_deref())
            .bind($d.lid.as_deref())
            .bind($d.adv_signed_identity.as_deref())
            .bind($d.push_name.as_deref())
            .bind($d.platform.as_deref())
            .bind($d.business_name.as_deref())
            .bind($d.routing_info.as_deref())
    };
}

macro_rules! sql_backend {
    ($name:ident, $db:ty, $pool:ty, $begin_write:literal) => {
        #[derive(Debug, Clone)]
        pub(crate) struct $name {
            pub pool: $pool,
        }

        impl $name {
            async fn begin_write(&self) -> Result<sqlx::Transaction<'static, $db>, StoreError> {
                Ok(self.pool.begin_with($begin_write).await?)
            }

            async fn exec_op(
                conn: &mut <$db as sqlx::Database>::Connection,
                owner: &str,
                op: &RowOp,
            ) -> Result<u64, sqlx::Error> {
                let done = match op {
                    RowOp::PutSession {
                        name,
                        device,
                        record_enc,
                    } => {
                        sqlx::query(UPSERT_SESSION)
                            .bind(owner)
                            .bind(name.as_str())
                            .bind(*device)
                            .bind(record_enc.as_slice())
                            .execute(&mut *conn)
                            .await?
                    }
                    RowOp::DeleteSession { name, device } => {
                        sqlx::query(DELETE_SESSION)
                            .bind(owner)
                            .bind(name.as_str())
                            .bind(*device)
                            .execute(&mut *conn)
                            .await?
                    }
                    RowOp::RemovePreKey { id } => {
                        sqlx::query(DELETE_PREKEY)
                            .bind(owner)
                            .bind(*id)
                            .execute(&mut *conn)
                            .await?
                    }
                    RowOp::PutSenderKey {
                        group,
                        name,
                        device,
                        record_enc,
                    } => {
                        sqlx::query(UPSERT_SENDER_KEY)
                            .bind(owner)
                            .bind(group.as_str())
                            .bind(name.as_str())
                            .bind(*device)
                            .bind(record_enc.as_slice())
                            .execute(&mut *conn)
                            .await?
                    }
                    RowOp::PutIdentity { name, device, row } => {
                        sqlx::query(UPSERT_IDENTITY)
                            .bind(owner)
                            .bind(name.as_str())
                            .bind(*device)
                            .bind(row.identity_key.as_slice())
                            .bind(row.trust)
                            .execute(&mut *conn)
                            .await?
                    }
                    RowOp::PutInbox(row) => {
                        sqlx::query(INSERT_INBOX)
                            .bind(owner)
                            .bind(row.sender.as_str())
                            .bind(row.msg_id.as_str())
                            .bind(row.body_enc.as_slice())
                            .execute(&mut *conn)
                            .await?
                    }
                };
                Ok(done.rows_affected())
            }

            async fn upsert_signed_prekey(
                conn: &mut <$db as sqlx::Database>::Connection,
                owner: &str,
                spk: &SignedPreKeyRow,
            ) -> Result<(), sqlx::Error> {
                sqlx::query(UPSERT_SIGNED_PREKEY)
                    .bind(owner)
                    .bind(spk.id)
                    .bind(spk.public_key.as_slice())
                    .bind(spk.private_enc.as_slice())
                    .bind(spk.signature.as_slice())
                    .bind(spk.created_at)
                    .execute(&mut *conn)
                    .await?;
                Ok(())
            }

            pub async fn insert_device(
                &self,
                owner: &str,
                d: &DeviceRow,
                spk: &SignedPreKeyRow,
            ) -> Result<(), StoreError> {
                let mut tx = self.begin_write().await?;
                let inserted = bind_device!(sqlx::query(INSERT_DEVICE), owner, d)
                    .execute(&mut *tx)
                    .await;
                match inserted {
                    Ok(_) => {}
                    Err(e) if is_unique_violation(&e) => {
                        return Err(StoreError::DeviceExists(owner.to_owned()));
                    }
                    Err(e) => return Err(e.into()),
                }
                Self::upsert_signed_prekey(&mut tx, owner, spk).await?;
                tx.commit().await?;
                Ok(())
            }

            pub async fn update_device(
                &self,
                owner: &str,
                d: &DeviceRow,
                spk: &SignedPreKeyRow,
            ) -> Result<(), StoreError> {
                let mut tx = self.begin_write().await?;
                let updated = bind_device!(sqlx::query(UPDATE_DEVICE), owner, d)
                    .execute(&mut *tx)
                    .await?;
                if updated.rows_affected() == 0 {
                    return Err(StoreError::UnknownDevice(owner.to_owned()));
                }
                Self::upsert_signed_prekey(&mut tx, owner, spk).await?;
                tx.commit().await?;
                Ok(())
            }

            pub async fn load_device(
                &self,
                owner: &str,
            ) -> Result<Option<(DeviceRow, SignedPreKeyRow)>, StoreError> {
                let Some(r) = sqlx::query(SELECT_DEVICE)
                    .bind(owner)
                    .fetch_optional(&self.pool)
                    .await?
                else {
                    return Ok(None);
                };
                let device = DeviceRow {
                    registration_id: r.try_get(0)?,
                    noise_public: r.try_get(1)?,
                    identity_public: r.try_get(2)?,
                    signed_prekey_id: r.try_get(3)?,
                    secrets_enc: r.try_get(4)?,
                    account_jid: r.try_get(5)?,
                    device_jid: r.try_get(6)?,
                    lid: r.try_get(7)?,
                    adv_signed_identity: r.try_get(8)?,
                    push_name: r.try_get(9)?,
                    platform: r.try_get(10)?,
                    business_name: r.try_get(11)?,
                    routing_info: r.try_get(12)?,
                };
                let public_key: Option<Vec<u8>> = r.try_get(13)?;
                let private_enc: Option<Vec<u8>> = r.try_get(14)?;
                let signature: Option<Vec<u8>> = r.try_get(15)?;
                let created_at: Option<i64> = r.try_get(16)?;
                let (Some(public_key), Some(private_enc), Some(signature), Some(created_at)) =
                    (public_key, private_enc, signature, created_at)
                else {
                    return Err(StoreError::Corrupt("current signed prekey missing"));
                };
                let spk = SignedPreKeyRow {
                    id: device.signed_prekey_id,
                    public_key,
                    private_enc,
                    signature,
                    created_at,
                };
                Ok(Some((device, spk)))
            }

            pub async fn delete_device(&self, owner: &str) -> Result<bool, StoreError> {
                let done = sqlx::query("DELETE FROM devices WHERE device_id = $1")
                    .bind(owner)
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected() > 0)
            }

            pub async fn list_devices(&self) -> Result<Vec<String>, StoreError> {
                let rows = sqlx::query("SELECT device_id FROM devices ORDER BY device_id")
                    .fetch_all(&self.pool)
                    .await?;
                rows.iter()
                    .map(|r| r.try_get(0).map_err(StoreError::from))
                    .collect()
            }

            pub async fn save_identity(
                &self,
                owner: &str,
                name: &str,
                device: i64,
                row: &IdentityRow,
            ) -> Result<Option<IdentityRow>, StoreError> {
                let mut tx = self.begin_write().await?;
                let previous = sqlx::query(SELECT_IDENTITY)
                    .bind(owner)
                    .bind(name)
                    .bind(device)
                    .fetch_optional(&mut *tx)
                    .await?
                    .map(|r| -> Result<IdentityRow, sqlx::Error> {
                        Ok(IdentityRow {
                            identity_key: r.try_get(0)?,
                            trust: r.try_get(1)?,
                        })
                    })
                    .transpose()?;
                let op = RowOp::PutIdentity {
                    name: name.to_owned(),
                    device,
                    row: row.clone(),
                };
                Self::exec_op(&mut tx, owner, &op)
                    .await
                    .map_err(|e| write_err(owner, e))?;
                tx.commit().await?;
                Ok(previous)
            }

            pub async fn load_identity(
                &self,
                owner: &str,
                name: &str,
                device: i64,
            ) -> Result<Option<IdentityRow>, StoreError> {
                let row = sqlx::query(SELECT_IDENTITY)
                    .bind(owner)
                    .bind(name)
                    .bind(device)
                    .fetch_optional(&self.pool)
                    .await?;
                match row {
                    Some(r) => Ok(Some(IdentityRow {
                        identity_key: r.try_get(0)?,
                        trust: r.try_get(1)?,
                    })),
                    None => Ok(None),
                }
            }

            pub async fn delete_identity(
                &self,
                owner: &str,
                name: &str,
                device: i64,
            ) -> Result<bool, StoreError> {
                let done = sqlx::query(
                    "DELETE FROM identities WHERE owner = $1 AND name = $2 AND device = $3",
                )
                .bind(owner)
                .bind(name)
                .bind(device)
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected() > 0)
            }

            pub async fn insert_prekeys(
                &self,
                owner: &str,
                rows: &[PreKeyRow],
            ) -> Result<(), StoreError> {
                let Some(max) = rows.iter().map(|r| r.id).max() else {
                    return Ok(());
                };
                let mut tx = self.begin_write().await?;
                for row in rows {
                    let inserted = sqlx::query(
                        "INSERT INTO prekeys (owner, id, public_key, private_enc) \
                         VALUES ($1, $2, $3, $4)",
                    )
                    .bind(owner)
                    .bind(row.id)
                    .bind(row.public_key.as_slice())
                    .bind(row.private_enc.as_slice())
                    .execute(&mut *tx)
                    .await;
                    match inserted {
                        Ok(_) => {}
                        Err(e) if is_unique_violation(&e) => {
                            return Err(StoreError::DuplicatePreKey {
                                id: u32::try_from(row.id).unwrap_or(u32::MAX),
                            });
                        }
                        Err(e) => return Err(write_err(owner, e)),
                    }
                }
                sqlx::query(
                    "UPDATE devices SET max_prekey_id = CASE \
                     WHEN max_prekey_id IS NULL OR max_prekey_id < $2 THEN $2 \
                     ELSE max_prekey_id END WHERE device_id = $1",
                )
                .bind(owner)
                .bind(max)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(())
            }

            pub async fn load_prekey(
                &self,
                owner: &str,
                id: i64,
            ) -> Result<Option<PreKeyRow>, StoreError> {
                let row = sqlx::query(
                    "SELECT public_key, private_enc FROM prekeys WHERE owner = $1 AND id = $2",
                )
                .bind(owner)
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
                match row {
                    Some(r) => Ok(Some(PreKeyRow {
                        id,
                        public_key: r.try_get(0)?,
                        private_enc: r.try_get(1)?,
                    })),
                    None => Ok(None),
                }
            }

            pub async fn take_prekey(
                &self,
                owner: &str,
                id: i64,
            ) -> Result<Option<PreKeyRow>, StoreError> {
                let row = sqlx::query(
                    "DELETE FROM prekeys WHERE owner = $1 AND id = $2 \
                     RETURNING public_key, private_enc",
                )
                .bind(owner)
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
                match row {
                    Some(r) => Ok(Some(PreKeyRow {
                        id,
                        public_key: r.try_get(0)?,
                        private_enc: r.try_get(1)?,
                    })),
                    None => Ok(None),
                }
            }

            pub async fn remove_prekey(&self, owner: &str, id: i64) -> Result<bool, StoreError> {
                let mut conn = self.pool.acquire().await?;
                let n = Self::exec_op(&mut conn, owner, &RowOp::RemovePreKey { id }).await?;
                Ok(n > 0)
            }

            pub async fn count_prekeys(&self, owner: &str) -> Result<u64, StoreError> {
                let n: i64 = sqlx::query("SELECT COUNT(*) FROM prekeys WHERE owner = $1")
                    .bind(owner)
                    .fetch_one(&self.pool)
                    .await?
                    .try_get(0)?;
                u64::try_from(n).map_err(|_| StoreError::Corrupt("prekey count"))
            }

            pub async fn max_prekey_id(&self, owner: &str) -> Result<Option<i64>, StoreError> {
                let row = sqlx::query("SELECT max_prekey_id FROM devices WHERE device_id = $1")
                    .bind(owner)
                    .fetch_optional(&self.pool)
                    .await?;
                match row {
                    Some(r) => Ok(r.try_get(0)?),
                    None => Ok(None),
                }
            }

            pub async fn store_signed_prekey(
                &self,
                owner: &str,
                row: &SignedPreKeyRow,
            ) -> Result<(), StoreError> {
                let mut conn = self.pool.acquire().await?;
                Self::upsert_signed_prekey(&mut conn, owner, row)
                    .await
                    .map_err(|e| write_err(owner, e))
            }

            pub async fn load_signed_prekey(
                &self,
                owner: &str,
                id: i64,
            ) -> Result<Option<SignedPreKeyRow>, StoreError> {
                let row = sqlx::query(
                    "SELECT public_key, private_enc, signature, created_at \
                     FROM signed_prekeys WHERE owner = $1 AND id = $2",
                )
                .bind(owner)
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
                match row {
                    Some(r) => Ok(Some(SignedPreKeyRow {
                        id,
                        public_key: r.try_get(0)?,
                        private_enc: r.try_get(1)?,
                        signature: r.try_get(2)?,
                        created_at: r.try_get(3)?,
                    })),
                    None => Ok(None),
                }
            }

            pub async fn remove_signed_prekey(
                &self,
                owner: &str,
                id: i64,
            ) -> Result<bool, StoreError> {
                let done = sqlx::query(
                    "DELETE FROM signed_prekeys WHERE owner = $1 AND id = $2 AND NOT EXISTS \
                     (SELECT 1 FROM devices WHERE device_id = $1 AND signed_prekey_id = $2)",
                )
                .bind(owner)
                .bind(id)
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected() > 0)
            }

            pub async fn signed_prekey_ids(&self, owner: &str) -> Result<Vec<i64>, StoreError> {
                let rows = sqlx::query("SELECT id FROM signed_prekeys WHERE owner = $1 ORDER BY id")
                    .bind(owner)
                    .fetch_all(&self.pool)
                    .await?;
                rows.iter()
                    .map(|r| r.try_get(0).map_err(StoreError::from))
                    .collect()
            }

            pub async fn load_session(
                &self,
                owner: &str,
                name: &str,
                device: i64,
            ) -> Result<Option<Vec<u8>>, StoreError> {
                let row = sqlx::query(
                    "SELECT record_enc FROM sessions WHERE owner = $1 AND name = $2 AND device = $3",
                )
                .bind(owner)
                .bind(name)
                .bind(device)
                .fetch_optional(&self.pool)
                .await?;
                match row {
                    Some(r) => Ok(Some(r.try_get(0)?)),
                    None => Ok(None),
                }
            }

            pub async fn delete_session(
                &self,
                owner: &str,
                name: &str,
                device: i64,
            ) -> Result<bool, StoreError> {
                let mut conn = self.pool.acquire().await?;
                let op = RowOp::DeleteSession {
                    name: name.to_owned(),
                    device,
                };
                Ok(Self::exec_op(&mut conn, owner, &op).await? > 0)
            }

            pub async fn delete_sessions_of(&self, owner: &str, name: &str) -> Result<u64, StoreError> {
                let done = sqlx::query("DELETE FROM sessions WHERE owner = $1 AND name = $2")
                    .bind(owner)
                    .bind(name)
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected())
            }

            pub async fn session_devices(&self, owner: &str, name: &str) -> Result<Vec<i64>, StoreError> {
                let rows = sqlx::query(
                    "SELECT device FROM sessions WHERE owner = $1 AND name = $2 ORDER BY device",
                )
                .bind(owner)
                .bind(name)
                .fetch_all(&self.pool)
                .await?;
                rows.iter()
                    .map(|r| r.try_get(0).map_err(StoreError::from))
                    .collect()
            }

            pub async fn load_sender_key(
                &self,
                owner: &str,
                group: &str,
                name: &str,
                device: i64,
            ) -> Result<Option<Vec<u8>>, StoreError> {
                let row = sqlx::query(
                    "SELECT record_enc FROM sender_keys WHERE owner = $1 AND group_id = $2 \
                     AND sender_name = $3 AND sender_dev = $4",
                )
                .bind(owner)
                .bind(group)
                .bind(name)
                .bind(device)
                .fetch_optional(&self.pool)
                .await?;
                match row {
                    Some(r) => Ok(Some(r.try_get(0)?)),
                    None => Ok(None),
                }
            }

            pub async fn delete_sender_key(
                &self,
                owner: &str,
                group: &str,
                name: &str,
                device: i64,
            ) -> Result<bool, StoreError> {
                let done = sqlx::query(
                    "DELETE FROM sender_keys WHERE owner = $1 AND group_id = $2 \
                     AND sender_name = $3 AND sender_dev = $4",
                )
                .bind(owner)
                .bind(group)
                .bind(name)
                .bind(device)
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected() > 0)
            }

            pub async fn load_inbox(&self, owner: &str) -> Result<Vec<InboxRow>, StoreError> {
                let rows = sqlx::query(
                    "SELECT sender, msg_id, body_enc FROM inbox WHERE owner = $1 ORDER BY seq",
                )
                .bind(owner)
                .fetch_all(&self.pool)
                .await?;
                rows.into_iter()
                    .map(|r| {
                        Ok(InboxRow {
                            sender: r.try_get(0)?,
                            msg_id: r.try_get(1)?,
                            body_enc: r.try_get(2)?,
                        })
                    })
                    .collect()
            }

            pub async fn delete_inbox(
                &self,
                owner: &str,
                names: &[(String, String)],
            ) -> Result<u64, StoreError> {
                let mut tx = self.begin_write().await?;
                let mut removed = 0;
                for (sender, id) in names {
                    removed += sqlx::query(
                        "DELETE FROM inbox WHERE owner = $1 AND sender = $2 AND msg_id = $3",
                    )
                    .bind(owner)
                    .bind(sender.as_str())
                    .bind(id.as_str())
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                }
                tx.commit().await?;
                Ok(removed)
            }

            pub async fn count_inbox(&self, owner: &str) -> Result<u64, StoreError> {
                let n: i64 = sqlx::query("SELECT COUNT(*) FROM inbox WHERE owner = $1")
                    .bind(owner)
                    .fetch_one(&self.pool)
                    .await?
                    .try_get(0)?;
                Ok(u64::try_from(n).unwrap_or(0))
            }

            /// One write as a single autocommit statement (one round trip); an insert for a
            /// missing device fails on the foreign key.
            pub async fn apply_one(&self, owner: &str, op: &RowOp) -> Result<(), StoreError> {
                let mut conn = self.pool.acquire().await?;
                Self::exec_op(&mut conn, owner, op)
                    .await
                    .map_err(|e| write_err(owner, e))?;
                Ok(())
            }

            /// All ops in one transaction; the device must exist.
            pub async fn apply(&self, owner: &str, ops: &[RowOp]) -> Result<(), StoreError> {
                let mut tx = self.begin_write().await?;
                Self::apply_ops(&mut tx, owner, ops).await?;
                tx.commit().await?;
                Ok(())
            }

            /// Several devices' batches in one transaction, each inside its own savepoint: a
            /// failing batch is undone alone and reported in its slot, the others commit. `Err`
            /// when the transaction itself failed (nothing committed). Used by SQLite's group
            /// commit; PostgreSQL shares WAL flushes among concurrent transactions without it.
            #[allow(dead_code)]
            pub async fn apply_group(
                &self,
                batches: &[(&str, &[RowOp])],
            ) -> Result<Vec<Result<(), StoreError>>, StoreError> {
                let mut tx = self.begin_write().await?;
                let mut results = Vec::with_capacity(batches.len());
                for (owner, ops) in batches {
                    sqlx::query("SAVEPOINT batch").execute(&mut *tx).await?;
                    let result = Self::apply_ops(&mut tx, owner, ops).await;
                    if result.is_err() {
                        sqlx::query("ROLLBACK TO SAVEPOINT batch")
                            .execute(&mut *tx)
                            .await?;
                    }
                    sqlx::query("RELEASE SAVEPOINT batch").execute(&mut *tx).await?;
                    results.push(result);
                }
                tx.commit().await?;
                Ok(results)
            }

            async fn apply_ops(
                conn: &mut <$db as sqlx::Database>::Connection,
                owner: &str,
                ops: &[RowOp],
            ) -> Result<(), StoreError> {
                let exists = sqlx::query("SELECT 1 FROM devices WHERE device_id = $1")
                    .bind(owner)
                    .fetch_optional(&mut *conn)
                    .await?
                    .is_some();
                if !exists {
                    return Err(StoreError::UnknownDevice(owner.to_owned()));
                }
                for op in ops {
                    Self::exec_op(&mut *conn, owner, op)
                        .await
                        .map_err(|e| write_err(owner, e))?;
                }
                Ok(())
            }
        }
    };
}

sql_backend!(
    SqliteBackend,
    sqlx::Sqlite,
    sqlx::SqlitePool,
    "BEGIN IMMEDIATE"
);
sql_backend!(PostgresBackend, sqlx::Postgres, sqlx::PgPool, "BEGIN");
