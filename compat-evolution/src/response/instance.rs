//! Instance routes: create, connect, connectionState, fetchInstances, logout/delete.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::InstanceSettings;
use crate::request::Integration;

/// In-memory connection state (§4.1). `refused` only appears in `connection.update` events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConnectionState {
    Open,
    Connecting,
    Close,
    Refused,
}

/// `POST /instance/create` → 201.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CreateInstanceResponse {
    pub instance: CreatedInstance,
    /// The instance token.
    pub hash: String,
    pub webhook: CreateWebhookEcho,
    pub websocket: EnabledEcho,
    pub rabbitmq: EnabledEcho,
    pub nats: EnabledEcho,
    pub sqs: EnabledEcho,
    pub settings: InstanceSettings,
    /// Only when `qrcode: true` on a Baileys instance.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub qrcode: Option<QrCode>,
    /// Only for the Chatwoot variant.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chatwoot: Option<Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CreatedInstance {
    pub instance_name: String,
    pub instance_id: String,
    pub integration: Integration,
    /// `"<SERVER_URL>/webhook/meta"` for WHATSAPP-BUSINESS, else null.
    pub webhook_wa_business: Option<String>,
    /// `WA_BUSINESS_TOKEN_WEBHOOK` for WHATSAPP-BUSINESS, else `""`.
    pub access_token_wa_business: String,
    pub status: ConnectionState,
}

/// The create response's `webhook`: keys are omitted when not given.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateWebhookEcho {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook_headers: Option<Map<String, Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook_by_events: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook_base64: Option<bool>,
}

/// `websocket`/`rabbitmq`/`nats`/`sqs` of the create response: echoes the request's
/// `X.enabled`, so usually `{}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct EnabledEcho {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
}

/// The QR object (§4.2): `{pairingCode, code, base64, count}`, or just `{count}` before the first
/// QR exists (undefined fields are dropped by JSON serialisation).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QrCode {
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub image: Option<QrImage>,
    pub count: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct QrImage {
    /// The 8-character pairing code; null when no number was given.
    pub pairing_code: Option<String>,
    /// The raw QR payload `ref,noiseKey,identityKey,advSecret`.
    pub code: String,
    /// `data:image/png;base64,…`.
    pub base64: String,
}

impl QrCode {
    /// Before the first QR: `{"count":0}`.
    pub fn pending(count: u32) -> Self {
        Self { image: None, count }
    }
}

/// `{"instance":{"instanceName":"x","state":"open"}}` (connect when open; connectionState).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConnectionStateBody {
    pub instance: InstanceState,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceState {
    pub instance_name: String,
    /// Omitted when the instance is in the DB but not in memory.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<ConnectionState>,
}

impl ConnectionStateBody {
    pub fn new(instance_name: impl Into<String>, state: Option<ConnectionState>) -> Self {
        Self {
            instance: InstanceState {
                instance_name: instance_name.into(),
                state,
            },
        }
    }
}

/// `GET /instance/connect` 200 bodies (§4.2). Errors use [`crate::ConnectErrorBody`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum ConnectResponse {
    /// `connecting` or freshly started: the QR object without a wrapper.
    Qr(QrCode),
    /// `open`.
    State(ConnectionStateBody),
    /// Any other state: `{"instance":{"instanceName","status"},"qrcode":{…}}`.
    Other {
        instance: InstanceStatusView,
        qrcode: QrCode,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceStatusView {
    pub instance_name: String,
    pub status: ConnectionState,
}

/// One `GET /instance/fetchInstances` item (§3.1, §13.4): the Instance row with relations.
/// `Webhook`, `Kafka` and `Pusher` are not included.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FetchInstanceRow {
    pub id: String,
    pub name: String,
    /// The DB value (`open` | `close` | `connecting`), not the in-memory state.
    pub connection_status: ConnectionState,
    pub owner_jid: Option<String>,
    pub profile_name: Option<String>,
    pub profile_pic_url: Option<String>,
    pub integration: Integration,
    pub number: Option<String>,
    pub business_id: Option<String>,
    /// Always present (§11 #11).
    pub token: String,
    pub client_name: String,
    pub disconnection_reason_code: Option<i64>,
    /// A JSON *string*.
    pub disconnection_object: Option<String>,
    pub disconnection_at: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    #[serde(rename = "Chatwoot")]
    pub chatwoot: Option<Value>,
    #[serde(rename = "Proxy")]
    pub proxy: Option<Value>,
    #[serde(rename = "Rabbitmq")]
    pub rabbitmq: Option<Value>,
    #[serde(rename = "Nats")]
    pub nats: Option<Value>,
    #[serde(rename = "Sqs")]
    pub sqs: Option<Value>,
    #[serde(rename = "Websocket")]
    pub websocket: Option<Value>,
    #[serde(rename = "Setting")]
    pub setting: Option<FetchSettingRow>,
    #[serde(rename = "_count")]
    pub count: InstanceCounts,
}

/// `disconnectionObject` of a fetchInstances row: Baileys' `lastDisconnect` (`{error, date}`,
/// the error a `@hapi/boom` error) as Evolution stores it, through `JSON.stringify`. `message` is
/// the Boom's message (`Intentional Logout`, `Connection Failure`, …), `date` an ISO time.
pub fn disconnection_object(status_code: u16, message: &str, date: &str) -> String {
    #[derive(Serialize)]
    struct LastDisconnect<'a> {
        error: Boom<'a>,
        date: &'a str,
    }
    // Boom's own enumerable keys, in its order; `message` and `stack` are not enumerable.
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Boom<'a> {
        data: Option<()>,
        is_boom: bool,
        is_server: bool,
        output: Output<'a>,
    }
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Output<'a> {
        status_code: u16,
        payload: Payload<'a>,
        headers: Map<String, Value>,
    }
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Payload<'a> {
        status_code: u16,
        error: &'a str,
        message: &'a str,
    }
    let is_server = status_code >= 500;
    let value = LastDisconnect {
        error: Boom {
            data: None,
            is_boom: true,
            is_server,
            output: Output {
                status_code,
                payload: Payload {
                    status_code,
                    error: reason_phrase(status_code),
                    // Boom hides server-side messages from the payload.
                    message: if is_server {
                        "An internal server error occurred"
                    } else {
                        message
                    },
                },
                headers: Map::new(),
            },
        },
        date,
    };
    serde_json::to_string(&value).unwrap_or_default()
}

/// Node's `http.STATUS_CODES` text for the codes a WhatsApp disconnect carries (Boom's `error`).
fn reason_phrase(code: u16) -> &'static str {
    match code {
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        408 => "Request Timeout",
        409 => "Conflict",
        411 => "Length Required",
        428 => "Precondition Required",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

/// The `Setting` relation of a fetchInstances row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FetchSettingRow {
    pub id: String,
    #[serde(flatten)]
    pub settings: InstanceSettings,
    pub created_at: String,
    pub updated_at: String,
    pub instance_id: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct InstanceCounts {
    pub message: u64,
    pub contact: u64,
    pub chat: u64,
}

/// Logout/delete 200: `{"status":"SUCCESS","error":false,"response":{"message":…}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatusResponse {
    pub status: &'static str,
    pub error: bool,
    pub response: StatusResponseMessage,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatusResponseMessage {
    pub message: &'static str,
}

impl StatusResponse {
    fn success(message: &'static str) -> Self {
        Self {
            status: "SUCCESS",
            error: false,
            response: StatusResponseMessage { message },
        }
    }

    pub fn logged_out() -> Self {
        Self::success("Instance logged out")
    }

    pub fn deleted() -> Self {
        Self::success("Instance deleted")
    }
}
