//! The outbox's rows and the fan-out: one event becomes one row per target that wants it (the
//! instance webhook, the global webhook, each broker in per-instance and global mode), each
//! with its own line, retries and dead letter.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use zapin_compat_evolution::{EventName, EventSubscription};

use crate::settings;
use crate::store::{StoreError, TxConn, insert, new_uuid};
use crate::transports::Transports;
use crate::webhook::{self, is_http_url, target_url};

/// A pending delivery. `secret` is the signing secret snapshot taken at enqueue time.
#[derive(Clone, PartialEq, Eq)]
pub struct OutboxEntry {
    pub id: i64,
    /// The event's id: the same in every row of one event, across retries and restarts.
    pub idempotency_id: String,
    pub instance_id: String,
    /// The config key (`MESSAGES_UPSERT`).
    pub event: String,
    /// The row's line: webhook `instance` / `global`, `rabbitmq` / `rabbitmq:global`, ….
    pub target_kind: String,
    /// Where it goes: the webhook URL, the AMQP exchange, the NATS subject.
    pub url: String,
    /// Transport parameters as a JSON object: webhook headers, AMQP queue and routing key.
    pub headers: String,
    pub secret: Option<String>,
    /// The exact body bytes that are sent (and signed).
    pub body: String,
    /// Attempts started so far, the current one included once claimed.
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub lease_until: Option<i64>,
    pub created_at: i64,
    pub last_error: Option<String>,
    pub last_status: Option<i64>,
    /// Which transport delivers it: `webhook`, `rabbitmq`, `nats`.
    pub transport: String,
}

impl std::fmt::Debug for OutboxEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboxEntry")
            .field("id", &self.id)
            .field("idempotency_id", &self.idempotency_id)
            .field("instance_id", &self.instance_id)
            .field("event", &self.event)
            .field("transport", &self.transport)
            .field("target_kind", &self.target_kind)
            .field("attempts", &self.attempts)
            .field("next_attempt_at", &self.next_attempt_at)
            .field("lease_until", &self.lease_until)
            .field("last_status", &self.last_status)
            .finish_non_exhaustive()
    }
}

/// A delivery given up on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    pub idempotency_id: String,
    pub instance_id: String,
    pub event: String,
    pub target_kind: String,
    pub url: String,
    pub body: String,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub last_status: Option<i64>,
    pub reason: String,
    pub transport: String,
}

pub(crate) type EntryRow = (
    i64,
    String,
    String,
    String,
    String,
    String,
    String,
    Option<String>,
    String,
    i64,
    i64,
    Option<i64>,
    i64,
    Option<String>,
    Option<i64>,
    String,
);

pub(crate) fn entry(r: EntryRow) -> OutboxEntry {
    let (
        id,
        idempotency_id,
        instance_id,
        event,
        target_kind,
        url,
        headers,
        secret,
        body,
        attempts,
        next_attempt_at,
        lease_until,
        created_at,
        last_error,
        last_status,
        transport,
    ) = r;
    OutboxEntry {
        id,
        idempotency_id,
        instance_id,
        event,
        target_kind,
        url,
        headers,
        secret,
        body,
        attempts,
        next_attempt_at,
        lease_until,
        created_at,
        last_error,
        last_status,
        transport,
    }
}

/// A row to write: one target of one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDelivery {
    pub transport: &'static str,
    pub target_kind: String,
    pub url: String,
    pub headers: String,
    pub secret: Option<String>,
    pub body: String,
}

/// The instance's own webhook as stored (the gateway owns that table and its routes).
#[derive(Debug, Clone, PartialEq)]
pub struct InstanceWebhook {
    pub enabled: bool,
    pub url: String,
    pub by_events: bool,
    /// Config keys; empty means every event.
    pub events: Vec<String>,
    /// JSON object of header name → value.
    pub headers: String,
    pub secret: Option<String>,
}

/// Whether a stored `events` list selects `event` (a config key). Empty means every event; the
/// `GROUP_UPDATE` / `GROUPS_UPDATE` alias follows compat-evolution's [`EventSubscription`].
pub fn subscribed(list: &[String], event: &str) -> bool {
    if list.is_empty() {
        return true;
    }
    match EventName::from_key(event) {
        Some(name) => EventSubscription::from_request(true, Some(list.to_vec())).includes(name),
        None => list.iter().any(|n| n == event),
    }
}

/// Whether an environment allow-list (`<TRANSPORT>_EVENTS_<KEY>=true`) selects `event`.
/// Evolution reads `*_EVENTS_GROUPS_UPDATE` into the key `GROUP_UPDATE` and then never matches
/// it; zapin delivers `GROUPS_UPDATE` when either key is on (contract §11 #7).
pub fn globally_selected(keys: &std::collections::BTreeSet<String>, event: &str) -> bool {
    keys.contains(event) || (event == "GROUPS_UPDATE" && keys.contains("GROUP_UPDATE"))
}

/// The envelope as the brokers and the socket send it: the webhook's fields without
/// `destination`, in Evolution's order (contract §5.2).
#[derive(Debug, Serialize, Deserialize)]
pub struct BrokerEnvelope<'a> {
    #[serde(borrow)]
    pub event: &'a RawValue,
    pub instance: String,
    #[serde(borrow)]
    pub data: &'a RawValue,
    #[serde(borrow)]
    pub server_url: &'a RawValue,
    #[serde(borrow)]
    pub date_time: &'a RawValue,
    #[serde(borrow, skip_serializing_if = "Option::is_none")]
    pub sender: Option<&'a RawValue>,
    #[serde(borrow)]
    pub apikey: &'a RawValue,
}

impl<'a> BrokerEnvelope<'a> {
    /// Reads the webhook body the event was enqueued with; `None` if it is not an envelope.
    pub fn from_webhook_body(body: &'a str) -> Option<Self> {
        serde_json::from_str(body).ok()
    }

    pub fn to_body(&self) -> Option<String> {
        serde_json::to_string(self).ok()
    }
}

/// What [`enqueue`] wrote.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Enqueued {
    /// The event's id, `None` when no target wanted it.
    pub id: Option<String>,
    /// Rows written (one per target).
    pub rows: usize,
}

/// Routes `event` (a config key such as `MESSAGES_UPSERT`) for `instance_id` and writes one
/// outbox row per target, in the caller's transaction:
///
/// * the instance's webhook (enabled, listening to the event — an empty list means all — and
///   with an http(s) URL) and the global webhook (`WEBHOOK_EVENTS_<KEY>`), with `body` as given;
/// * each broker enabled in the environment: per instance when the instance's row for it is
///   enabled and lists the event, globally when the broker's `*_EVENTS_<KEY>` is on; with the
///   body without `destination`.
///
/// `body` is the webhook envelope as serialised by the caller (compat-evolution's
/// `WebhookEnvelope`, whose key order is the wire order).
pub async fn enqueue(
    conn: &mut TxConn<'_>,
    transports: &Transports,
    instance_id: &str,
    event: &str,
    body: &str,
    instance_webhook: Option<&InstanceWebhook>,
) -> Result<Enqueued, StoreError> {
    let mut rows = Vec::new();
    if let Some(w) = instance_webhook
        && w.enabled
        && subscribed(&w.events, event)
        && is_http_url(&w.url)
    {
        rows.push(NewDelivery {
            transport: webhook::TRANSPORT,
            target_kind: webhook::TargetKind::Instance.as_str().to_owned(),
            url: target_url(&w.url, w.by_events, event),
            headers: w.headers.clone(),
            secret: w.secret.clone(),
            body: body.to_owned(),
        });
    }
    let routing = &transports.webhook;
    if let Some(global) = &routing.global_url
        && (routing.global_events.contains(event)
            || (event == "GROUPS_UPDATE" && routing.global_events.contains("GROUP_UPDATE")))
    {
        rows.push(NewDelivery {
            transport: webhook::TRANSPORT,
            target_kind: webhook::TargetKind::Global.as_str().to_owned(),
            url: target_url(global, routing.global_by_events, event),
            headers: "{}".to_owned(),
            secret: None,
            body: body.to_owned(),
        });
    }
    if transports.any_broker() {
        match BrokerEnvelope::from_webhook_body(body) {
            Some(envelope) => {
                let stored = settings::all_for_instance(conn, instance_id).await?;
                transports.broker_rows(&envelope, event, &stored, &mut rows);
            }
            None => tracing::warn!(event, "event body is not an envelope: not sent to brokers"),
        }
    }
    if rows.is_empty() {
        return Ok(Enqueued::default());
    }
    let id = new_uuid();
    let n = insert(conn, &id, instance_id, event, &rows).await?;
    Ok(Enqueued {
        id: Some(id),
        rows: n,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscription_matching() {
        let list = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert!(subscribed(&[], "MESSAGES_UPSERT"));
        assert!(subscribed(&list(&["MESSAGES_UPSERT"]), "MESSAGES_UPSERT"));
        assert!(!subscribed(&list(&["MESSAGES_UPDATE"]), "MESSAGES_UPSERT"));
        assert!(subscribed(&list(&["GROUP_UPDATE"]), "GROUPS_UPDATE"));
        assert!(subscribed(&list(&["X_CUSTOM"]), "X_CUSTOM"));
        assert!(!subscribed(&list(&["X_CUSTOM"]), "Y_CUSTOM"));
    }

    #[test]
    fn broker_envelope_drops_destination_and_keeps_the_order() {
        let body = r#"{"event":"messages.upsert","instance":"a","data":{"z":1,"a":[2]},"destination":"http://x","date_time":"2026-01-01T00:00:00.000Z","sender":"1@s.whatsapp.net","server_url":"http://s","apikey":null}"#;
        let env = BrokerEnvelope::from_webhook_body(body).unwrap();
        assert_eq!(
            env.to_body().unwrap(),
            r#"{"event":"messages.upsert","instance":"a","data":{"z":1,"a":[2]},"server_url":"http://s","date_time":"2026-01-01T00:00:00.000Z","sender":"1@s.whatsapp.net","apikey":null}"#
        );
        let no_sender = r#"{"event":"e","instance":"a","data":null,"destination":"","date_time":"t","server_url":"","apikey":"k"}"#;
        let env = BrokerEnvelope::from_webhook_body(no_sender).unwrap();
        assert!(!env.to_body().unwrap().contains("sender"));
        assert!(BrokerEnvelope::from_webhook_body("{\"x\":1}").is_none());
    }
}
