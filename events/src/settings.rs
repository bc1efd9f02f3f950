//! Per-instance settings of the broker and socket transports: the `event_transports` table,
//! one row per instance and transport (`rabbitmq`, `nats`, …), as `/{transport}/set` stores it
//! and the fan-out reads it.

use crate::store::{StoreError, TxConn, new_uuid, now_ms, with_conn};

/// One instance's settings for one transport (Evolution's `Rabbitmq`/`Nats`/… row).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransportSettings {
    pub id: String,
    pub instance_id: String,
    pub transport: String,
    pub enabled: bool,
    /// Config keys, as stored after Evolution's rules: `[]` when disabled, every subscribable
    /// key when enabled with none listed.
    pub events: Vec<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

type Row = (String, String, String, bool, String, i64, i64);

fn settings(r: Row) -> Result<TransportSettings, StoreError> {
    let (id, instance_id, transport, enabled, events, created_at, updated_at) = r;
    Ok(TransportSettings {
        id,
        instance_id,
        transport,
        enabled,
        events: serde_json::from_str(&events)
            .map_err(|_| StoreError::Corrupt("event_transports.events"))?,
        created_at,
        updated_at,
    })
}

const COLUMNS: &str = "id, instance_id, transport, enabled, events, created_at, updated_at";

/// The instance's row for `transport`, if it was ever set.
pub async fn get(
    conn: &mut TxConn<'_>,
    instance_id: &str,
    transport: &str,
) -> Result<Option<TransportSettings>, StoreError> {
    let sql =
        format!("SELECT {COLUMNS} FROM event_transports WHERE instance_id = $1 AND transport = $2");
    let row: Option<Row> = with_conn!(tx conn, |c| {
        sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(instance_id)
            .bind(transport)
            .fetch_optional(c)
            .await?
    });
    row.map(settings).transpose()
}

/// Every transport row of the instance (the fan-out reads them once per event).
pub async fn all_for_instance(
    conn: &mut TxConn<'_>,
    instance_id: &str,
) -> Result<Vec<TransportSettings>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM event_transports WHERE instance_id = $1");
    let rows: Vec<Row> = with_conn!(tx conn, |c| {
        sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(instance_id)
            .fetch_all(c)
            .await?
    });
    rows.into_iter().map(settings).collect()
}

/// Creates or replaces the instance's row for `transport` and returns it.
pub async fn set(
    conn: &mut TxConn<'_>,
    instance_id: &str,
    transport: &str,
    enabled: bool,
    events: &[String],
) -> Result<TransportSettings, StoreError> {
    let events_json =
        serde_json::to_string(events).map_err(|_| StoreError::Corrupt("event list"))?;
    let now = now_ms();
    let sql = format!(
        "INSERT INTO event_transports (id, instance_id, transport, enabled, events, created_at, \
         updated_at) VALUES ($1, $2, $3, $4, $5, $6, $6) ON CONFLICT (instance_id, transport) \
         DO UPDATE SET enabled = excluded.enabled, events = excluded.events, \
         updated_at = excluded.updated_at RETURNING {COLUMNS}"
    );
    let row: Row = with_conn!(tx conn, |c| {
        sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(new_uuid())
            .bind(instance_id)
            .bind(transport)
            .bind(enabled)
            .bind(&events_json)
            .bind(now)
            .fetch_one(c)
            .await?
    });
    settings(row)
}
