//! Re-sealing every sealed value of the store under the keyring's current key (key rotation),
//! and counting which key each value is under (start-up checks).
//!
//! Table-driven: [`SEALED_COLUMNS`] lists every sealed column with the columns that name its row
//! in the associated data (see [`crate::cipher`]). A new sealed column is one more entry; a test
//! fails while a `*_enc` column of the schema is missing from the list.
//!
//! The pass walks each table in primary-key order, in batches of `batch` rows. A value that
//! opens under the current key is left alone; one that opens under the previous key is sealed
//! again under the current key and written back only if the row still holds the value that was
//! read (compare-and-set), so a concurrent writer's newer value is never overwritten. Every
//! batch commits on its own: the pass holds no lock for long, can run against a live database
//! and can be interrupted and run again, since what it has done shows in the data itself.

use sqlx::Row as _;

use crate::cipher::{RowCipher, RowRef, seal_with};
use crate::error::StoreError;
use crate::key_check::PoolRef;
use crate::keyring::KeyUsed;

/// One column of a row-key: how the value enters the associated data.
#[derive(Debug, Clone, Copy)]
pub(crate) enum KeyPart {
    /// A TEXT column, as its UTF-8 bytes.
    Text(&'static str),
    /// A BIGINT column holding a `u32`, as 4 big-endian bytes.
    U32(&'static str),
    /// A constant.
    Label(&'static [u8]),
}

/// A sealed column and how its rows are named (see [`RowRef`]): the owning device's column, and
/// the row key. The table name is the AAD's table. Owner and key columns are unique per row (the
/// pass pages through the table by them and writes back by them).
#[derive(Debug, Clone, Copy)]
pub(crate) struct SealedColumn {
    pub table: &'static str,
    pub column: &'static str,
    pub owner: &'static str,
    pub key: &'static [KeyPart],
}

/// Every sealed column of the store. Must match the `*_ref` functions of `store.rs` (the
/// rotation tests seal through the store's API and open again through it after re-sealing).
pub(crate) const SEALED_COLUMNS: &[SealedColumn] = &[
    SealedColumn {
        table: "devices",
        column: "secrets_enc",
        owner: "device_id",
        key: &[KeyPart::Label(b"secrets")],
    },
    SealedColumn {
        table: "prekeys",
        column: "private_enc",
        owner: "owner",
        key: &[KeyPart::U32("id")],
    },
    SealedColumn {
        table: "signed_prekeys",
        column: "private_enc",
        owner: "owner",
        key: &[KeyPart::U32("id")],
    },
    SealedColumn {
        table: "sessions",
        column: "record_enc",
        owner: "owner",
        key: &[KeyPart::Text("name"), KeyPart::U32("device")],
    },
    SealedColumn {
        table: "sender_keys",
        column: "record_enc",
        owner: "owner",
        key: &[
            KeyPart::Text("group_id"),
            KeyPart::Text("sender_name"),
            KeyPart::U32("sender_dev"),
        ],
    },
    SealedColumn {
        table: "inbox",
        column: "body_enc",
        owner: "owner",
        key: &[KeyPart::Text("sender"), KeyPart::Text("msg_id")],
    },
];

/// Whether a pass only counts or also re-seals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResealMode {
    /// Count which key each value is under; write nothing.
    Check,
    /// Re-seal what is under the previous key.
    Reseal,
}

/// What a pass found, in values (not rows).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ResealReport {
    /// Values that open under the current key.
    pub current: u64,
    /// Values that open under the previous key only (left as they are by a check).
    pub previous: u64,
    /// Of those, how many were re-sealed under the current key.
    pub resealed: u64,
    /// Values a concurrent writer changed or removed between the read and the write back.
    pub raced: u64,
    /// Values that open under no key of the keyring.
    pub unreadable: u64,
}

impl ResealReport {
    pub fn add(&mut self, other: &ResealReport) {
        self.current += other.current;
        self.previous += other.previous;
        self.resealed += other.resealed;
        self.raced += other.raced;
        self.unreadable += other.unreadable;
    }

    /// Values sealed at all.
    pub fn sealed(&self) -> u64 {
        self.current + self.previous + self.unreadable
    }
}

/// A row-key column's value.
#[derive(Debug, Clone, PartialEq, Eq)]
enum KeyValue {
    Text(String),
    Int(i64),
}

/// One sealed value read from the table: the row's owner and key columns, and the value.
#[derive(Debug)]
struct Sealed {
    owner: String,
    key: Vec<KeyValue>,
    value: Vec<u8>,
}

impl SealedColumn {
    fn key_columns(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.key.iter().filter_map(|part| match *part {
            KeyPart::Text(c) | KeyPart::U32(c) => Some(c),
            KeyPart::Label(_) => None,
        })
    }

    /// `owner, k1, k2, …`: the primary key, in order.
    fn pk_list(&self) -> String {
        std::iter::once(self.owner)
            .chain(self.key_columns())
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn select_sql(&self, after: bool, batch: usize) -> String {
        let pk = self.pk_list();
        let filter = if after {
            let params = (1..=1 + self.key_columns().count())
                .map(|i| format!("${i}"))
                .collect::<Vec<_>>()
                .join(", ");
            format!(" WHERE ({pk}) > ({params})")
        } else {
            String::new()
        };
        format!(
            "SELECT {pk}, {col} FROM {table}{filter} ORDER BY {pk} LIMIT {batch}",
            col = self.column,
            table = self.table,
        )
    }

    /// `UPDATE … SET col = $1 WHERE owner = $2 AND k… AND col = $n`.
    fn update_sql(&self) -> String {
        let mut n = 2;
        let mut conditions = Vec::new();
        for c in std::iter::once(self.owner).chain(self.key_columns()) {
            conditions.push(format!("{c} = ${n}"));
            n += 1;
        }
        conditions.push(format!("{} = ${n}", self.column));
        format!(
            "UPDATE {table} SET {col} = $1 WHERE {cond}",
            table = self.table,
            col = self.column,
            cond = conditions.join(" AND ")
        )
    }

    /// The AAD name of a row read from this column.
    fn row_ref<'a>(&self, row: &'a Sealed) -> Result<RowRef<'a>, StoreError> {
        let mut values = row.key.iter();
        let mut key = Vec::with_capacity(self.key.len());
        for part in self.key {
            key.push(match (*part, values.next()) {
                (KeyPart::Label(bytes), _) => bytes.to_vec(),
                (KeyPart::Text(_), Some(KeyValue::Text(s))) => s.as_bytes().to_vec(),
                (KeyPart::U32(_), Some(KeyValue::Int(v))) => u32::try_from(*v)
                    .map_err(|_| StoreError::Corrupt(self.table))?
                    .to_be_bytes()
                    .to_vec(),
                _ => return Err(StoreError::Corrupt(self.table)),
            });
        }
        Ok(RowRef {
            owner: &row.owner,
            table: self.table,
            key,
        })
    }
}

/// One batch of `column` after the cursor, as [`Sealed`] rows.
macro_rules! fetch {
    ($pool:expr, $column:expr, $after:expr, $batch:expr) => {{
        let sql = $column.select_sql($after.is_some(), $batch);
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        if let Some((owner, key)) = $after {
            query = query.bind(owner.clone());
            for v in key {
                query = match v {
                    KeyValue::Text(s) => query.bind(s.clone()),
                    KeyValue::Int(i) => query.bind(*i),
                };
            }
        }
        let mut out = Vec::new();
        for r in query.fetch_all($pool).await? {
            let mut key = Vec::new();
            let mut i = 1;
            for part in $column.key {
                match part {
                    KeyPart::Text(_) => key.push(KeyValue::Text(r.try_get(i)?)),
                    KeyPart::U32(_) => key.push(KeyValue::Int(r.try_get(i)?)),
                    KeyPart::Label(_) => continue,
                }
                i += 1;
            }
            out.push(Sealed {
                owner: r.try_get(0)?,
                key,
                value: r.try_get(i)?,
            });
        }
        out
    }};
}

/// Writes re-sealed values back in one transaction, each only where the row still holds the
/// value that was read; how many were written.
macro_rules! write_back {
    ($tx:expr, $column:expr, $writes:expr) => {{
        let mut tx = $tx;
        let sql = $column.update_sql();
        let mut written = 0u64;
        for (row, sealed) in $writes {
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
                .bind(sealed.as_slice())
                .bind(row.owner.as_str());
            for v in &row.key {
                query = match v {
                    KeyValue::Text(s) => query.bind(s.as_str()),
                    KeyValue::Int(i) => query.bind(*i),
                };
            }
            written += query
                .bind(row.value.as_slice())
                .execute(&mut *tx)
                .await?
                .rows_affected();
        }
        tx.commit().await?;
        written
    }};
}

/// Re-seals (or, in [`ResealMode::Check`], counts) every value of [`SEALED_COLUMNS`] in `pool`.
pub(crate) async fn reseal(
    pool: PoolRef<'_>,
    cipher: &RowCipher,
    mode: ResealMode,
    batch: usize,
) -> Result<ResealReport, StoreError> {
    let batch = batch.max(1);
    let mut report = ResealReport::default();
    for column in SEALED_COLUMNS {
        let mut after: Option<(String, Vec<KeyValue>)> = None;
        loop {
            let rows = match pool {
                PoolRef::Sqlite(p) => fetch!(p, column, after.as_ref(), batch),
                PoolRef::Postgres(p) => fetch!(p, column, after.as_ref(), batch),
            };
            let full = rows.len() == batch;
            let mut writes = Vec::new();
            let keyring = cipher.keys().get();
            for row in &rows {
                let name = column.row_ref(row)?;
                let opened = keyring.open_with(|key| {
                    crate::cipher::open_with(key, &name, &row.value).map(zeroize::Zeroizing::new)
                });
                match opened {
                    Ok((_, KeyUsed::Current)) => report.current += 1,
                    Ok((plain, KeyUsed::Previous)) => {
                        report.previous += 1;
                        if mode == ResealMode::Reseal {
                            writes.push((row, seal_with(keyring.current(), &name, &plain)?));
                        }
                    }
                    Err(_) => report.unreadable += 1,
                }
            }
            if !writes.is_empty() {
                let written = match pool {
                    PoolRef::Sqlite(p) => {
                        write_back!(p.begin_with("BEGIN IMMEDIATE").await?, column, &writes)
                    }
                    PoolRef::Postgres(p) => write_back!(p.begin().await?, column, &writes),
                };
                report.resealed += written;
                report.raced += writes.len() as u64 - written;
            }
            if !full {
                break;
            }
            after = rows.last().map(|r| (r.owner.clone(), r.key.clone()));
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_follow_the_primary_key() {
        let sessions = SEALED_COLUMNS
            .iter()
            .find(|c| c.table == "sessions")
            .unwrap();
        assert_eq!(
            sessions.select_sql(false, 10),
            "SELECT owner, name, device, record_enc FROM sessions ORDER BY owner, name, device LIMIT 10"
        );
        assert_eq!(
            sessions.select_sql(true, 10),
            "SELECT owner, name, device, record_enc FROM sessions WHERE (owner, name, device) > ($1, $2, $3) ORDER BY owner, name, device LIMIT 10"
        );
        assert_eq!(
            sessions.update_sql(),
            "UPDATE sessions SET record_enc = $1 WHERE owner = $2 AND name = $3 AND device = $4 AND record_enc = $5"
        );
        let devices = SEALED_COLUMNS
            .iter()
            .find(|c| c.table == "devices")
            .unwrap();
        assert_eq!(
            devices.update_sql(),
            "UPDATE devices SET secrets_enc = $1 WHERE device_id = $2 AND secrets_enc = $3"
        );
    }

    /// Every `*_enc` column of the schema (all migrations, other crates' included) is in
    /// [`SEALED_COLUMNS`], so a rotation cannot skip a sealed table added later.
    #[tokio::test]
    async fn every_enc_column_of_the_schema_is_listed() {
        let pool = sqlx::SqlitePool::connect("sqlite::memory:").await.unwrap();
        zapin_migrations::sqlite().run(&pool).await.unwrap();
        let columns: Vec<(String, String)> = sqlx::query_as(
            "SELECT m.name, p.name FROM sqlite_master m, pragma_table_info(m.name) p \
             WHERE m.type = 'table' AND p.name LIKE '%\\_enc' ESCAPE '\\'",
        )
        .fetch_all(&pool)
        .await
        .unwrap();
        assert!(columns.len() >= SEALED_COLUMNS.len(), "{columns:?}");
        for (table, column) in columns {
            assert!(
                SEALED_COLUMNS
                    .iter()
                    .any(|c| c.table == table && c.column == column),
                "{table}.{column} is sealed but not in SEALED_COLUMNS: a key rotation would skip it"
            );
        }
    }
}
