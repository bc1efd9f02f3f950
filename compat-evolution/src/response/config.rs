//! Webhook and settings rows, and the small acknowledgement bodies.

use serde::Serialize;
use serde_json::{Map, Value};

use super::InstanceSettings;
use crate::events::EventSubscription;

/// The `Webhook` row: `/webhook/set` 201 and `/webhook/find` 200 (§5.3).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookRow {
    pub id: String,
    pub url: String,
    pub headers: Option<Map<String, Value>>,
    pub enabled: bool,
    pub events: EventSubscription,
    pub webhook_by_events: bool,
    pub webhook_base64: bool,
    pub created_at: String,
    pub updated_at: String,
    pub instance_id: String,
}

/// The row of a broker or socket transport (`Rabbitmq`, `Nats`, `Sqs`, `Kafka`, `Websocket`):
/// `/<name>/set` 201 and `/<name>/find` 200 (contract rows 83–92).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TransportRow {
    pub id: String,
    pub enabled: bool,
    pub events: EventSubscription,
    pub created_at: String,
    pub updated_at: String,
    pub instance_id: String,
}

/// `/settings/find` 200: the eight fields (or JSON `null` when no row exists).
pub type SettingsRow = InstanceSettings;

/// `/settings/set` 201: `{"settings":{"instanceName":…,"settings":<body as sent>}}`.
///
/// Evolution also merges the query parameters into the outer object; zapin does not, because
/// query values must not shadow the path parameter (§1.5, §11 #6).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SettingsSetResponse {
    pub settings: SettingsSetEcho,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SettingsSetEcho {
    pub instance_name: String,
    pub settings: Value,
}

/// `setPresence` / `sendPresence`: `{presence}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PresenceResponse {
    pub presence: crate::request::Presence,
}

/// `markMessageAsRead` 201: `{"message":"Read messages","read":"success"}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct MarkAsReadResponse {
    pub message: &'static str,
    pub read: &'static str,
}

impl Default for MarkAsReadResponse {
    fn default() -> Self {
        Self {
            message: "Read messages",
            read: "success",
        }
    }
}
