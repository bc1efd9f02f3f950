//! Enqueueing events in a transaction, and reading the outbox: the gateway's side of the event
//! bus. Routing and storage are `zapin_events`'; this reads the instance's webhook (a gateway
//! table) and hands the transaction's connection over.

use serde::Serialize;
use zapin_events::{DeadLetter, InstanceWebhook, OutboxEntry, TxConn};

use super::{Db, DbError, Tx, TxInner};

impl Tx {
    /// The transaction's connection, for the event bus's own tables.
    pub fn events_conn(&mut self) -> TxConn<'_> {
        match &mut self.inner {
            TxInner::Sqlite(t) => TxConn::Sqlite(t),
            TxInner::Postgres(t) => TxConn::Postgres(t),
        }
    }

    /// Routes `event` (a config key such as `MESSAGES_UPSERT`) for `instance_id` and writes one
    /// outbox row per target that wants it: the instance's webhook, the global webhook, and each
    /// enabled broker per instance and globally (see `zapin_events::enqueue`). Returns the
    /// event's idempotency id, or `None` when no target wants it.
    ///
    /// Usually called for you by the repository functions that report events; call it directly
    /// for events without a stored state change, in the transaction of whatever caused them.
    pub async fn enqueue_event(
        &mut self,
        instance_id: &str,
        event: &str,
        body: &(impl Serialize + ?Sized),
    ) -> Result<Option<String>, DbError> {
        let webhook = self
            .get_webhook(instance_id)
            .await?
            .map(|w| InstanceWebhook {
                enabled: w.enabled,
                url: w.url,
                by_events: w.by_events,
                events: w.events,
                headers: w.headers.to_string(),
                secret: w.secret,
            });
        // Serialised from the caller's type, not a `serde_json::Value` (whose map sorts keys), so
        // a struct such as compat-evolution's `WebhookEnvelope` keeps its wire key order.
        let body = serde_json::to_string(body).map_err(|_| DbError::Corrupt("event body"))?;
        let transports = std::sync::Arc::clone(&self.db.transports);
        let mut conn = self.events_conn();
        let done = zapin_events::enqueue(
            &mut conn,
            &transports,
            instance_id,
            event,
            &body,
            webhook.as_ref(),
        )
        .await?;
        self.enqueued += done.rows;
        Ok(done.id)
    }
}

impl Db {
    /// How many webhook rows wait in `outbox` and how many lie in `dead_letter` (the metrics
    /// gauges; broker rows are not counted there).
    pub async fn webhook_depths(&self) -> Result<(i64, i64), DbError> {
        Ok(self.outbox.depths(zapin_events::webhook::TRANSPORT).await?)
    }

    /// Every pending row, oldest first (inspection and tests).
    pub async fn outbox_entries(&self) -> Result<Vec<OutboxEntry>, DbError> {
        Ok(self.outbox.entries().await?)
    }

    /// Every dead letter, oldest first.
    pub async fn dead_letters(&self) -> Result<Vec<DeadLetter>, DbError> {
        Ok(self.outbox.dead_letters().await?)
    }
}
