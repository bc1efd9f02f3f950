//! `POST /instance/create`, `GET /instance/connect?number=`, `POST /instance/setPresence`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{get_bool, get_str, run_schema};
use crate::error::ErrorEnvelope;
use crate::events::{EventSubscription, SUBSCRIBABLE};
use crate::response::InstanceSettings;
use crate::schema::{Check, Rules, Ty, digits_then_word};

/// The channel behind an instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Integration {
    #[serde(rename = "WHATSAPP-BAILEYS")]
    WhatsappBaileys,
    #[serde(rename = "WHATSAPP-BUSINESS")]
    WhatsappBusiness,
    #[serde(rename = "EVOLUTION")]
    Evolution,
}

impl Integration {
    pub const NAMES: [&'static str; 3] = ["WHATSAPP-BAILEYS", "WHATSAPP-BUSINESS", "EVOLUTION"];

    pub fn as_str(self) -> &'static str {
        match self {
            Integration::WhatsappBaileys => "WHATSAPP-BAILEYS",
            Integration::WhatsappBusiness => "WHATSAPP-BUSINESS",
            Integration::Evolution => "EVOLUTION",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "WHATSAPP-BAILEYS" => Some(Integration::WhatsappBaileys),
            "WHATSAPP-BUSINESS" => Some(Integration::WhatsappBusiness),
            "EVOLUTION" => Some(Integration::Evolution),
            _ => None,
        }
    }
}

/// A validated `/instance/create` body.
#[derive(Debug, Clone, PartialEq)]
pub struct CreateInstance {
    pub instance_name: String,
    pub integration: Integration,
    /// Becomes the instance apikey; absent → the gateway generates an upper-case UUIDv4.
    pub token: Option<String>,
    /// Baileys: the phone for a pairing code when `qrcode` is true.
    pub number: Option<String>,
    /// Start connecting now and include the QR object in the response.
    pub qrcode: bool,
    pub business_id: Option<String>,
    /// Settings fields, strict `=== true` for booleans and `""` for absent strings.
    pub settings: InstanceSettings,
    pub webhook: Option<CreateWebhook>,
}

/// The webhook given at create time; it is always stored with `enabled = true`.
#[derive(Debug, Clone, PartialEq)]
pub struct CreateWebhook {
    pub url: String,
    pub by_events: Option<bool>,
    pub base64: Option<bool>,
    pub headers: Option<Map<String, Value>>,
    pub events: EventSubscription,
}

const FLAT_WEBHOOK_EVENTS: [&str; 25] = [
    "APPLICATION_STARTUP",
    "QRCODE_UPDATED",
    "MESSAGES_SET",
    "MESSAGES_UPSERT",
    "MESSAGES_EDITED",
    "MESSAGES_UPDATE",
    "MESSAGES_DELETE",
    "SEND_MESSAGE",
    "CONTACTS_SET",
    "CONTACTS_UPSERT",
    "CONTACTS_UPDATE",
    "PRESENCE_UPDATE",
    "CHATS_SET",
    "CHATS_UPSERT",
    "CHATS_UPDATE",
    "CHATS_DELETE",
    "GROUPS_UPSERT",
    "GROUP_UPDATE",
    "GROUP_PARTICIPANTS_UPDATE",
    "CONNECTION_UPDATE",
    "LABELS_EDIT",
    "LABELS_ASSOCIATION",
    "CALL",
    "TYPEBOT_START",
    "TYPEBOT_CHANGE_STATUS",
];

/// `instanceSchema`, in its property order. It has no `required`, and its enum sits on a property
/// spelled `Integration`, so `integration` itself is only checked by the handler.
fn instance_schema(c: &mut Check<'_>) {
    c.prop("instanceName", Ty::String, Rules::NONE);
    c.prop("token", Ty::String, Rules::NONE);
    c.prop(
        "number",
        Ty::String,
        Rules {
            pattern: Some(("^\\d+[\\.@\\w-]+", digits_then_word)),
            ..Rules::NONE
        },
    );
    c.prop("qrcode", Ty::Boolean, Rules::NONE);
    c.prop(
        "Integration",
        Ty::String,
        Rules {
            enum_values: Some(&Integration::NAMES),
            ..Rules::NONE
        },
    );
    let events_rules = Rules {
        min_items: Some(0),
        ..Rules::NONE
    };
    let event_item = Rules {
        enum_values: Some(&FLAT_WEBHOOK_EVENTS),
        ..Rules::NONE
    };
    for (key, ty) in [
        ("rejectCall", Ty::Boolean),
        ("msgCall", Ty::String),
        ("groupsIgnore", Ty::Boolean),
        ("alwaysOnline", Ty::Boolean),
        ("readMessages", Ty::Boolean),
        ("readStatus", Ty::Boolean),
        ("syncFullHistory", Ty::Boolean),
        ("proxyHost", Ty::String),
        ("proxyPort", Ty::String),
        ("proxyProtocol", Ty::String),
        ("proxyUsername", Ty::String),
        ("proxyPassword", Ty::String),
        ("webhookUrl", Ty::String),
        ("webhookByEvents", Ty::Boolean),
        ("webhookBase64", Ty::Boolean),
    ] {
        c.prop(key, ty, Rules::NONE);
    }
    c.string_array("webhookEvents", events_rules, event_item);
    c.prop("rabbitmqEnabled", Ty::Boolean, Rules::NONE);
    c.string_array("rabbitmqEvents", events_rules, event_item);
    c.prop("sqsEnabled", Ty::Boolean, Rules::NONE);
    c.string_array("sqsEvents", events_rules, event_item);
    for (key, ty) in [
        ("chatwootAccountId", Ty::String),
        ("chatwootToken", Ty::String),
        ("chatwootUrl", Ty::String),
        ("chatwootSignMsg", Ty::Boolean),
        ("chatwootReopenConversation", Ty::Boolean),
        ("chatwootConversationPending", Ty::Boolean),
        ("chatwootImportContacts", Ty::Boolean),
        ("chatwootNameInbox", Ty::String),
        ("chatwootMergeBrazilContacts", Ty::Boolean),
        ("chatwootImportMessages", Ty::Boolean),
        ("chatwootDaysLimitImportMessages", Ty::Number),
        ("typebotUrl", Ty::String),
        ("typebot", Ty::Boolean),
        ("typebotExpire", Ty::Number),
        ("typebotKeywordFinish", Ty::String),
        ("typebotDelayMessage", Ty::Number),
        ("typebotUnknownMessage", Ty::String),
        ("typebotListeningFromMe", Ty::Boolean),
    ] {
        c.prop(key, ty, Rules::NONE);
    }
    c.not_empty(&["instanceName"]);
}

/// The checks zapin adds to the nested `webhook` object of create, which Evolution does not
/// validate at all: the same wording as `/webhook/set` (`webhook.url is not of a type(s) string`,
/// unknown event names rejected with the 31-name enum).
pub(crate) fn webhook_object_schema(w: &mut Check<'_>) {
    w.prop("enabled", Ty::Boolean, Rules::NONE);
    w.prop("url", Ty::String, Rules::NONE);
    w.prop("headers", Ty::Object, Rules::NONE);
    w.prop("byEvents", Ty::Boolean, Rules::NONE);
    w.prop("base64", Ty::Boolean, Rules::NONE);
    w.string_array(
        "events",
        Rules {
            min_items: Some(0),
            ..Rules::NONE
        },
        Rules {
            enum_values: Some(&SUBSCRIBABLE),
            ..Rules::NONE
        },
    );
}

/// Validates a create body.
///
/// Order: `instanceSchema` (nested-array 400), then zapin's additions (`instanceName` required,
/// checks on the nested `webhook`), then the handler's `Invalid integration` (flat 400).
pub fn validate_create_instance(body: &Value) -> Result<CreateInstance, ErrorEnvelope> {
    run_schema(body, |c| {
        instance_schema(c);
        // Evolution lets a missing name through and then misbehaves; zapin rejects it.
        c.required(&["instanceName"]);
        c.object("webhook", Rules::NONE, webhook_object_schema);
    })?;
    let integration = get_str(body, "integration")
        .as_deref()
        .and_then(Integration::parse)
        .ok_or_else(|| ErrorEnvelope::bad_request(["Invalid integration"]))?;
    let flag = |key: &str| get_bool(body, key) == Some(true);
    let settings = InstanceSettings {
        reject_call: flag("rejectCall"),
        msg_call: get_str(body, "msgCall").unwrap_or_default(),
        groups_ignore: flag("groupsIgnore"),
        always_online: flag("alwaysOnline"),
        read_messages: flag("readMessages"),
        read_status: flag("readStatus"),
        sync_full_history: flag("syncFullHistory"),
        wavoip_token: get_str(body, "wavoipToken").unwrap_or_default(),
    };
    Ok(CreateInstance {
        instance_name: get_str(body, "instanceName").unwrap_or_default(),
        integration,
        token: get_str(body, "token").filter(|t| !t.is_empty()),
        number: get_str(body, "number").filter(|n| !n.is_empty()),
        qrcode: flag("qrcode"),
        business_id: get_str(body, "businessId"),
        settings,
        webhook: crate::client_tolerance::create_webhook(body),
    })
}

/// `GET /instance/connect/{instance}?number=`: the phone for a pairing code.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConnectQuery {
    pub number: Option<String>,
}

/// Evolution does not validate `?number=`; an empty value means "no pairing code".
pub fn validate_connect_query(number: Option<&str>) -> ConnectQuery {
    ConnectQuery {
        number: number.filter(|n| !n.is_empty()).map(str::to_owned),
    }
}

/// Presence values of `setPresence` and `chat/sendPresence`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Presence {
    Unavailable,
    Available,
    Composing,
    Recording,
    Paused,
}

impl Presence {
    pub const NAMES: [&'static str; 5] = [
        "unavailable",
        "available",
        "composing",
        "recording",
        "paused",
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Presence::Unavailable => "unavailable",
            Presence::Available => "available",
            Presence::Composing => "composing",
            Presence::Recording => "recording",
            Presence::Paused => "paused",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "unavailable" => Some(Presence::Unavailable),
            "available" => Some(Presence::Available),
            "composing" => Some(Presence::Composing),
            "recording" => Some(Presence::Recording),
            "paused" => Some(Presence::Paused),
            _ => None,
        }
    }
}

/// `POST /instance/setPresence/{instance}` (presenceOnlySchema).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SetPresence {
    pub presence: Presence,
}

pub fn validate_set_presence(body: &Value) -> Result<SetPresence, ErrorEnvelope> {
    run_schema(body, |c| {
        c.prop(
            "presence",
            Ty::String,
            Rules {
                enum_values: Some(&Presence::NAMES),
                ..Rules::NONE
            },
        );
        c.required(&["presence"]);
    })?;
    let presence = get_str(body, "presence")
        .as_deref()
        .and_then(Presence::parse)
        .ok_or_else(|| ErrorEnvelope::validation(vec!["presence is invalid".to_owned()]))?;
    Ok(SetPresence { presence })
}
