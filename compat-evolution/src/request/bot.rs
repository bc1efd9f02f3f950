//! The chatbot routes' bodies (contract §3.7): `/{bot}/create` and `/{bot}/update/{botId}`,
//! `/{bot}/settings`, `/{bot}/changeStatus` and `/{bot}/ignoreJid`, for every bot product.
//!
//! Every product shares the common bot fields (`BaseChatbotDto`) and the common setting fields;
//! what differs is described by one [`BotProduct`] per product: its path segment, its name in
//! messages, its own fields, which of them are secrets, and its required lists.

use serde_json::{Map, Value};

use super::{get_bool, get_i64, get_str, get_strings, run_schema};
use crate::error::ErrorEnvelope;
use crate::schema::{Check, Rules, Ty};

/// One of the product's own fields on its bot rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProductField {
    /// The JSON name (`apiUrl`).
    pub name: &'static str,
    /// Its schema type; `None` for a field the code stores but the schema does not declare
    /// (n8n's `basicAuthPass`): accepted when it is a string, ignored otherwise.
    pub ty: Option<BotFieldType>,
    /// Stored sealed and never logged (`apiKey`, `basicAuthPass`).
    pub secret: bool,
    /// Echoed in bot rows (schema-only names such as n8n's `basicAuthPassword` are not).
    pub stored: bool,
}

/// The schema types the product fields use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BotFieldType {
    String,
    Boolean,
    Integer,
    StringArray,
    /// A string from a fixed list (`botType`).
    Enum(&'static [&'static str]),
}

/// A chatbot product as Evolution exposes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BotProduct {
    /// The route segment: `/{path}/create/{instance}`.
    pub path: &'static str,
    /// The integration's name in Evolution's messages (`EvolutionBot`, `N8n`, …).
    pub name: &'static str,
    /// The name zapin-bots knows the adapter by, stored in sessions as `type`.
    pub kind: &'static str,
    /// The settings row's fallback column (`botIdFallback`, `n8nIdFallback`, …).
    pub fallback_field: &'static str,
    /// The fallback name the settings schema declares (a string; the code reads `fallbackId`).
    pub schema_fallback_field: &'static str,
    /// The environment switch (`N8N_ENABLED`); `None`: always on (EvolutionBot).
    pub env_switch: Option<&'static str>,
    /// The product's own fields, in schema order.
    pub fields: &'static [ProductField],
    /// Required on create/update besides `enabled` and `triggerType`.
    pub required: &'static [&'static str],
    /// Two bots of the instance may not share all of these (`<Name> already exists`); empty:
    /// no such rule.
    pub unique_fields: &'static [&'static str],
    /// Required on `/{bot}/settings`.
    pub settings_required: &'static [&'static str],
    /// The settings row's own fields (OpenAI's `openaiCredsId`, `speechToText`).
    pub settings_fields: &'static [ProductField],
}

const fn field(name: &'static str, ty: BotFieldType) -> ProductField {
    ProductField {
        name,
        ty: Some(ty),
        secret: false,
        stored: true,
    }
}

const fn secret(name: &'static str) -> ProductField {
    ProductField {
        name,
        ty: Some(BotFieldType::String),
        secret: true,
        stored: true,
    }
}

/// Evolution Bot: a generic webhook answering `{message}`.
pub const EVOLUTION_BOT: BotProduct = BotProduct {
    path: "evolutionBot",
    name: "EvolutionBot",
    kind: "evolution",
    fallback_field: "botIdFallback",
    schema_fallback_field: "botIdFallback",
    env_switch: None,
    fields: &[field("apiUrl", BotFieldType::String), secret("apiKey")],
    required: &["apiUrl"],
    unique_fields: &[],
    settings_required: &SETTING_FIELDS,
    settings_fields: &[],
};

/// n8n: a Webhook node, optionally behind Basic auth.
pub const N8N: BotProduct = BotProduct {
    path: "n8n",
    name: "N8n",
    kind: "n8n",
    fallback_field: "n8nIdFallback",
    schema_fallback_field: "botIdFallback",
    env_switch: Some("N8N_ENABLED"),
    fields: &[
        field("webhookUrl", BotFieldType::String),
        field("basicAuthUser", BotFieldType::String),
        // The schema declares `basicAuthPassword`; the code stores `basicAuthPass`.
        ProductField {
            name: "basicAuthPassword",
            ty: Some(BotFieldType::String),
            secret: false,
            stored: false,
        },
        ProductField {
            name: "basicAuthPass",
            ty: None,
            secret: true,
            stored: true,
        },
    ],
    required: &["webhookUrl"],
    unique_fields: &["webhookUrl", "basicAuthUser", "basicAuthPass"],
    settings_required: &SETTING_FIELDS,
    settings_fields: &[],
};

/// OpenAI: chat completions or an assistant, with credentials from `/openai/creds`.
pub const OPENAI: BotProduct = BotProduct {
    path: "openai",
    name: "Openai",
    kind: "openai",
    fallback_field: "openaiIdFallback",
    schema_fallback_field: "openaiIdFallback",
    env_switch: Some("OPENAI_ENABLED"),
    fields: &[
        field("openaiCredsId", BotFieldType::String),
        field(
            "botType",
            BotFieldType::Enum(&["assistant", "chatCompletion"]),
        ),
        field("assistantId", BotFieldType::String),
        field("functionUrl", BotFieldType::String),
        field("model", BotFieldType::String),
        field("systemMessages", BotFieldType::StringArray),
        field("assistantMessages", BotFieldType::StringArray),
        field("userMessages", BotFieldType::StringArray),
        field("maxTokens", BotFieldType::Integer),
    ],
    required: &["openaiCredsId", "botType"],
    unique_fields: &[],
    settings_required: &[
        "openaiCredsId",
        "expire",
        "keywordFinish",
        "delayMessage",
        "unknownMessage",
        "listeningFromMe",
        "stopBotFromMe",
        "keepOpen",
        "debounceTime",
        "ignoreJids",
    ],
    settings_fields: &[
        field("openaiCredsId", BotFieldType::String),
        field("speechToText", BotFieldType::Boolean),
    ],
};

/// Dify: chat bot, text generator or agent apps (`workflow` is accepted but not run).
pub const DIFY: BotProduct = BotProduct {
    path: "dify",
    name: "Dify",
    kind: "dify",
    fallback_field: "difyIdFallback",
    schema_fallback_field: "difyIdFallback",
    env_switch: Some("DIFY_ENABLED"),
    fields: &[
        field(
            "botType",
            BotFieldType::Enum(&["chatBot", "textGenerator", "agent", "workflow"]),
        ),
        field("apiUrl", BotFieldType::String),
        secret("apiKey"),
    ],
    required: &["botType"],
    unique_fields: &["botType", "apiUrl", "apiKey"],
    settings_required: &SETTING_FIELDS,
    settings_fields: &[],
};

/// Flowise: a chatflow's prediction endpoint.
pub const FLOWISE: BotProduct = BotProduct {
    path: "flowise",
    name: "Flowise",
    kind: "flowise",
    fallback_field: "flowiseIdFallback",
    schema_fallback_field: "flowiseIdFallback",
    env_switch: Some("FLOWISE_ENABLED"),
    fields: &[field("apiUrl", BotFieldType::String), secret("apiKey")],
    required: &["apiUrl"],
    unique_fields: &["apiUrl", "apiKey"],
    settings_required: &[
        "expire",
        "keywordFinish",
        "delayMessage",
        "unknownMessage",
        "listeningFromMe",
        "stopBotFromMe",
        "keepOpen",
        "debounceTime",
        "ignoreJids",
    ],
    settings_fields: &[],
};

/// EvoAI: an A2A agent over JSON-RPC.
pub const EVOAI: BotProduct = BotProduct {
    path: "evoai",
    name: "Evoai",
    kind: "evoai",
    fallback_field: "evoaiIdFallback",
    schema_fallback_field: "botIdFallback",
    env_switch: Some("EVOAI_ENABLED"),
    fields: &[field("agentUrl", BotFieldType::String), secret("apiKey")],
    required: &["agentUrl"],
    unique_fields: &["agentUrl", "apiKey"],
    settings_required: &SETTING_FIELDS,
    settings_fields: &[],
};

/// Typebot: a published flow, through Typebot's v1 chat API.
pub const TYPEBOT: BotProduct = BotProduct {
    path: "typebot",
    name: "Typebot",
    kind: "typebot",
    fallback_field: "typebotIdFallback",
    schema_fallback_field: "typebotIdFallback",
    env_switch: Some("TYPEBOT_ENABLED"),
    fields: &[
        field("url", BotFieldType::String),
        field("typebot", BotFieldType::String),
    ],
    required: &["url", "typebot"],
    unique_fields: &["url", "typebot"],
    settings_required: &[
        "expire",
        "keywordFinish",
        "delayMessage",
        "unknownMessage",
        "listeningFromMe",
        "stopBotFromMe",
    ],
    settings_fields: &[],
};

/// The rules Evolution's controllers add to a product's schema (plain errors there): the
/// message for a body that breaks one.
pub fn product_rule_error(product: &BotProduct, body: &BotBody) -> Option<&'static str> {
    if product.kind != "openai" {
        return None;
    }
    let has = |k: &str| {
        body.params
            .get(k)
            .is_some_and(|v| !v.is_null() && v != "" && v != 0)
    };
    match body.params.get("botType").and_then(Value::as_str) {
        Some("assistant") if !has("assistantId") => Some("Assistant ID is required"),
        Some("chatCompletion") if !has("model") => Some("Model is required"),
        Some("chatCompletion") if !has("maxTokens") => Some("Max tokens is required"),
        Some(_) => None,
        None => Some("Bot type is required"),
    }
}

/// The products whose routes zapin serves.
pub const BOT_PRODUCTS: [BotProduct; 7] =
    [EVOLUTION_BOT, N8N, OPENAI, DIFY, FLOWISE, EVOAI, TYPEBOT];

/// The common setting fields (a bot's own overrides, or a settings row). `None`: not given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BotSettingFields {
    pub expire: Option<i64>,
    pub keyword_finish: Option<String>,
    pub delay_message: Option<i64>,
    pub unknown_message: Option<String>,
    pub listening_from_me: Option<bool>,
    pub stop_bot_from_me: Option<bool>,
    pub keep_open: Option<bool>,
    pub debounce_time: Option<i64>,
    pub ignore_jids: Option<Vec<String>>,
    pub split_messages: Option<bool>,
    pub time_per_char: Option<i64>,
}

impl BotSettingFields {
    fn read(body: &Value) -> Self {
        Self {
            expire: get_i64(body, "expire"),
            keyword_finish: get_str(body, "keywordFinish"),
            delay_message: get_i64(body, "delayMessage"),
            unknown_message: get_str(body, "unknownMessage"),
            listening_from_me: get_bool(body, "listeningFromMe"),
            stop_bot_from_me: get_bool(body, "stopBotFromMe"),
            keep_open: get_bool(body, "keepOpen"),
            debounce_time: get_i64(body, "debounceTime"),
            ignore_jids: get_strings(body, "ignoreJids"),
            split_messages: get_bool(body, "splitMessages"),
            time_per_char: get_i64(body, "timePerChar"),
        }
    }

    /// Fills every field still unset from `other` (Evolution's create: bot value, else the
    /// settings row's).
    pub fn or(self, other: &Self) -> Self {
        Self {
            expire: self.expire.or(other.expire),
            keyword_finish: self.keyword_finish.or_else(|| other.keyword_finish.clone()),
            delay_message: self.delay_message.or(other.delay_message),
            unknown_message: self
                .unknown_message
                .or_else(|| other.unknown_message.clone()),
            listening_from_me: self.listening_from_me.or(other.listening_from_me),
            stop_bot_from_me: self.stop_bot_from_me.or(other.stop_bot_from_me),
            keep_open: self.keep_open.or(other.keep_open),
            debounce_time: self.debounce_time.or(other.debounce_time),
            ignore_jids: self.ignore_jids.or_else(|| other.ignore_jids.clone()),
            split_messages: self.split_messages.or(other.split_messages),
            time_per_char: self.time_per_char.or(other.time_per_char),
        }
    }

    /// The column defaults of Evolution's tables for a field left unset on insert
    /// (`expire 0`, the four booleans `false`, `timePerChar 0` as its create code sets).
    pub fn with_column_defaults(self) -> Self {
        Self {
            expire: self.expire.or(Some(0)),
            listening_from_me: self.listening_from_me.or(Some(false)),
            stop_bot_from_me: self.stop_bot_from_me.or(Some(false)),
            keep_open: self.keep_open.or(Some(false)),
            split_messages: self.split_messages.or(Some(false)),
            time_per_char: self.time_per_char.or(Some(0)),
            ..self
        }
    }

    /// The fields as Evolution names them, in its column order (`null` for unset ones).
    pub fn entries(&self) -> Vec<(String, Value)> {
        vec![
            ("expire".into(), self.expire.into()),
            ("keywordFinish".into(), self.keyword_finish.clone().into()),
            ("delayMessage".into(), self.delay_message.into()),
            ("unknownMessage".into(), self.unknown_message.clone().into()),
            ("listeningFromMe".into(), self.listening_from_me.into()),
            ("stopBotFromMe".into(), self.stop_bot_from_me.into()),
            ("keepOpen".into(), self.keep_open.into()),
            ("debounceTime".into(), self.debounce_time.into()),
            ("ignoreJids".into(), self.ignore_jids.clone().into()),
            ("splitMessages".into(), self.split_messages.into()),
            ("timePerChar".into(), self.time_per_char.into()),
        ]
    }

    /// [`BotSettingFields::entries`] as a JSON object.
    pub fn to_json(&self) -> Map<String, Value> {
        self.entries().into_iter().collect()
    }

    /// Reads what [`BotSettingFields::to_json`] wrote (unreadable fields read as unset).
    pub fn from_json(v: &Value) -> Self {
        Self::read(v)
    }
}

/// A validated create/update body.
#[derive(Debug, Clone, PartialEq)]
pub struct BotBody {
    pub enabled: bool,
    pub description: Option<String>,
    /// `all`, `keyword`, `none` or `advanced`.
    pub trigger_type: String,
    /// `equals`, `contains`, `startsWith`, `endsWith` or `regex`.
    pub trigger_operator: Option<String>,
    pub trigger_value: Option<String>,
    pub settings: BotSettingFields,
    /// The product's stored non-secret fields that were given.
    pub params: Map<String, Value>,
    /// The product's secret fields that were given.
    pub secrets: Map<String, Value>,
}

pub const TRIGGER_TYPES: [&str; 4] = ["all", "keyword", "none", "advanced"];
pub const TRIGGER_OPERATORS: [&str; 5] = ["equals", "contains", "startsWith", "endsWith", "regex"];

fn common_setting_props(c: &mut Check<'_>) {
    c.prop("expire", Ty::Integer, Rules::NONE);
    c.prop("keywordFinish", Ty::String, Rules::NONE);
    c.prop("delayMessage", Ty::Integer, Rules::NONE);
    c.prop("unknownMessage", Ty::String, Rules::NONE);
    c.prop("listeningFromMe", Ty::Boolean, Rules::NONE);
    c.prop("stopBotFromMe", Ty::Boolean, Rules::NONE);
    c.prop("keepOpen", Ty::Boolean, Rules::NONE);
    c.prop("debounceTime", Ty::Integer, Rules::NONE);
    c.string_array("ignoreJids", Rules::NONE, Rules::NONE);
}

fn product_prop(c: &mut Check<'_>, f: &ProductField) {
    match f.ty {
        Some(BotFieldType::String) => {
            c.prop(f.name, Ty::String, Rules::NONE);
        }
        Some(BotFieldType::Boolean) => {
            c.prop(f.name, Ty::Boolean, Rules::NONE);
        }
        Some(BotFieldType::Integer) => {
            c.prop(f.name, Ty::Integer, Rules::NONE);
        }
        Some(BotFieldType::StringArray) => {
            c.string_array(f.name, Rules::NONE, Rules::NONE);
        }
        Some(BotFieldType::Enum(values)) => {
            c.prop(
                f.name,
                Ty::String,
                Rules {
                    enum_values: Some(values),
                    ..Rules::NONE
                },
            );
        }
        None => {}
    }
}

/// Validates `/{bot}/create` and `/{bot}/update/{botId}` bodies with the product's schema.
pub fn validate_bot(product: &BotProduct, body: &Value) -> Result<BotBody, ErrorEnvelope> {
    let mut required = vec!["enabled"];
    required.extend_from_slice(product.required);
    required.push("triggerType");
    run_schema(body, |c| {
        c.prop("enabled", Ty::Boolean, Rules::NONE);
        c.prop("description", Ty::String, Rules::NONE);
        for f in product.fields {
            product_prop(c, f);
        }
        c.prop(
            "triggerType",
            Ty::String,
            Rules {
                enum_values: Some(&TRIGGER_TYPES),
                ..Rules::NONE
            },
        );
        c.prop(
            "triggerOperator",
            Ty::String,
            Rules {
                enum_values: Some(&TRIGGER_OPERATORS),
                ..Rules::NONE
            },
        );
        c.prop("triggerValue", Ty::String, Rules::NONE);
        common_setting_props(c);
        c.prop("splitMessages", Ty::Boolean, Rules::NONE);
        c.prop("timePerChar", Ty::Integer, Rules::NONE);
        c.required(&required);
        c.not_empty(&required);
    })?;
    let mut params = Map::new();
    let mut secrets = Map::new();
    for f in product.fields.iter().filter(|f| f.stored) {
        let Some(v) = body.get(f.name) else { continue };
        // A field the schema does not type (n8n's basicAuthPass) is kept only as a string.
        if f.ty.is_none() && !v.is_string() {
            continue;
        }
        if v.is_null() {
            continue;
        }
        if f.secret {
            secrets.insert(f.name.to_owned(), v.clone());
        } else {
            params.insert(f.name.to_owned(), v.clone());
        }
    }
    Ok(BotBody {
        enabled: get_bool(body, "enabled").unwrap_or(false),
        description: get_str(body, "description"),
        trigger_type: get_str(body, "triggerType").unwrap_or_default(),
        trigger_operator: get_str(body, "triggerOperator"),
        trigger_value: get_str(body, "triggerValue"),
        settings: BotSettingFields::read(body),
        params,
        secrets,
    })
}

/// A validated `/{bot}/settings` body.
#[derive(Debug, Clone, PartialEq)]
pub struct BotSettingsBody {
    pub settings: BotSettingFields,
    /// `fallbackId`: `None` absent (keep), `Some(None)` null or `""` (clear), `Some(Some(id))`.
    pub fallback_id: Option<Option<String>>,
    /// The product's own settings fields that were given.
    pub extra: Map<String, Value>,
}

const SETTING_FIELDS: [&str; 11] = [
    "expire",
    "keywordFinish",
    "delayMessage",
    "unknownMessage",
    "listeningFromMe",
    "stopBotFromMe",
    "keepOpen",
    "debounceTime",
    "ignoreJids",
    "splitMessages",
    "timePerChar",
];

/// Validates a `/{bot}/settings` body (all eleven setting fields are required for the
/// products served here). `fallbackId`, which the schema does not declare but the code reads,
/// must be a string or null when present.
pub fn validate_bot_settings(
    product: &BotProduct,
    body: &Value,
) -> Result<BotSettingsBody, ErrorEnvelope> {
    run_schema(body, |c| {
        for f in product.settings_fields {
            product_prop(c, f);
        }
        common_setting_props(c);
        c.prop(product.schema_fallback_field, Ty::String, Rules::NONE);
        c.prop("splitMessages", Ty::Boolean, Rules::NONE);
        c.prop("timePerChar", Ty::Integer, Rules::NONE);
        c.required(product.settings_required);
        c.not_empty(product.settings_required);
        if let Some(v) = c.get("fallbackId")
            && !v.is_string()
            && !v.is_null()
        {
            c.error_at("fallbackId", "is not of a type(s) string");
        }
    })?;
    let fallback_id = body
        .get("fallbackId")
        .map(|v| v.as_str().filter(|s| !s.is_empty()).map(str::to_owned));
    let extra = product
        .settings_fields
        .iter()
        .filter_map(|f| {
            body.get(f.name)
                .filter(|v| !v.is_null())
                .map(|v| (f.name.to_owned(), v.clone()))
        })
        .collect();
    Ok(BotSettingsBody {
        settings: BotSettingFields::read(body),
        fallback_id,
        extra,
    })
}

/// A validated `POST /openai/creds` body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenaiCredsBody {
    pub name: String,
    pub api_key: String,
}

pub fn validate_openai_creds(body: &Value) -> Result<OpenaiCredsBody, ErrorEnvelope> {
    run_schema(body, |c| {
        c.prop("name", Ty::String, Rules::NONE);
        c.prop("apiKey", Ty::String, Rules::NONE);
        c.required(&["name", "apiKey"]);
        c.not_empty(&["name", "apiKey"]);
    })?;
    let name = get_str(body, "name").unwrap_or_default();
    let api_key = get_str(body, "apiKey").unwrap_or_default();
    if api_key.is_empty() {
        return Err(ErrorEnvelope::bad_request(["API Key is required"]));
    }
    if name.is_empty() {
        return Err(ErrorEnvelope::bad_request(["Name is required"]));
    }
    Ok(OpenaiCredsBody { name, api_key })
}

/// A validated `/{bot}/changeStatus` body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BotStatusBody {
    pub remote_jid: String,
    /// `opened`, `closed`, `paused` or `delete`.
    pub status: String,
}

pub const SESSION_STATUSES: [&str; 4] = ["opened", "closed", "paused", "delete"];

pub fn validate_bot_status(body: &Value) -> Result<BotStatusBody, ErrorEnvelope> {
    run_schema(body, |c| {
        c.prop("remoteJid", Ty::String, Rules::NONE);
        c.prop(
            "status",
            Ty::String,
            Rules {
                enum_values: Some(&SESSION_STATUSES),
                ..Rules::NONE
            },
        );
        c.required(&["remoteJid", "status"]);
        c.not_empty(&["remoteJid", "status"]);
    })?;
    Ok(BotStatusBody {
        remote_jid: get_str(body, "remoteJid").unwrap_or_default(),
        status: get_str(body, "status").unwrap_or_default(),
    })
}

/// A validated `/{bot}/ignoreJid` body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BotIgnoreJidBody {
    pub remote_jid: String,
    /// `true` for `add`, `false` for `remove`.
    pub add: bool,
}

pub fn validate_bot_ignore_jid(body: &Value) -> Result<BotIgnoreJidBody, ErrorEnvelope> {
    run_schema(body, |c| {
        c.prop("remoteJid", Ty::String, Rules::NONE);
        c.prop(
            "action",
            Ty::String,
            Rules {
                enum_values: Some(&["add", "remove"]),
                ..Rules::NONE
            },
        );
        c.required(&["remoteJid", "action"]);
        c.not_empty(&["remoteJid", "action"]);
    })?;
    Ok(BotIgnoreJidBody {
        remote_jid: get_str(body, "remoteJid").unwrap_or_default(),
        add: get_str(body, "action").as_deref() == Some("add"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn messages(e: ErrorEnvelope) -> Value {
        serde_json::to_value(e).unwrap()["response"]["message"].clone()
    }

    #[test]
    fn create_requires_the_products_fields() {
        let e = validate_bot(&EVOLUTION_BOT, &json!({"enabled": true})).unwrap_err();
        assert_eq!(e.status, 400);
        assert_eq!(
            messages(e),
            json!([[
                "instance requires property \"apiUrl\"",
                "instance requires property \"triggerType\""
            ]])
        );
        let e = validate_bot(
            &N8N,
            &json!({"enabled": true, "webhookUrl": "http://x", "triggerType": "sometimes"}),
        )
        .unwrap_err();
        assert_eq!(
            messages(e),
            json!([["triggerType is not one of enum values: all,keyword,none,advanced"]])
        );
        let e = validate_bot(
            &EVOLUTION_BOT,
            &json!({"enabled": true, "apiUrl": "http://x", "triggerType": "all", "expire": "5"}),
        )
        .unwrap_err();
        assert_eq!(messages(e), json!([["expire is not of a type(s) integer"]]));
    }

    #[test]
    fn create_splits_params_and_secrets() {
        let b = validate_bot(
            &N8N,
            &json!({"enabled": true, "webhookUrl": "http://x", "triggerType": "keyword",
                    "triggerOperator": "equals", "triggerValue": "hi", "basicAuthUser": "u",
                    "basicAuthPass": "p", "basicAuthPassword": "ignored", "keepOpen": true,
                    "ignoreJids": ["a@g.us"]}),
        )
        .unwrap();
        assert_eq!(b.trigger_operator.as_deref(), Some("equals"));
        assert_eq!(b.params.get("webhookUrl"), Some(&json!("http://x")));
        assert_eq!(b.params.get("basicAuthUser"), Some(&json!("u")));
        assert!(!b.params.contains_key("basicAuthPassword"));
        assert_eq!(b.secrets.get("basicAuthPass"), Some(&json!("p")));
        assert_eq!(b.settings.keep_open, Some(true));
        assert_eq!(b.settings.ignore_jids, Some(vec!["a@g.us".to_owned()]));
        assert_eq!(b.settings.expire, None);
    }

    #[test]
    fn settings_status_and_ignore_jid() {
        let full = json!({"expire": 10, "keywordFinish": "#sair", "delayMessage": 500,
            "unknownMessage": "?", "listeningFromMe": false, "stopBotFromMe": true,
            "keepOpen": false, "debounceTime": 0, "ignoreJids": [], "splitMessages": true,
            "timePerChar": 20, "fallbackId": "abc"});
        let s = validate_bot_settings(&EVOLUTION_BOT, &full).unwrap();
        assert_eq!(s.settings.expire, Some(10));
        assert_eq!(s.fallback_id, Some(Some("abc".to_owned())));
        let mut cleared = full.clone();
        cleared["fallbackId"] = json!("");
        assert_eq!(
            validate_bot_settings(&EVOLUTION_BOT, &cleared)
                .unwrap()
                .fallback_id,
            Some(None)
        );
        let mut bad = full.clone();
        bad["fallbackId"] = json!(5);
        assert!(validate_bot_settings(&EVOLUTION_BOT, &bad).is_err());
        let e = validate_bot_settings(&N8N, &json!({"expire": 1})).unwrap_err();
        assert_eq!(e.status, 400);
        assert!(validate_bot_status(&json!({"remoteJid": "x", "status": "gone"})).is_err());
        assert_eq!(
            validate_bot_status(&json!({"remoteJid": "x", "status": "delete"}))
                .unwrap()
                .status,
            "delete"
        );
        assert!(
            validate_bot_ignore_jid(&json!({"remoteJid": "x", "action": "add"}))
                .unwrap()
                .add
        );
        assert!(validate_bot_ignore_jid(&json!({"remoteJid": "x"})).is_err());
    }

    #[test]
    fn column_defaults_and_precedence() {
        let row = BotSettingFields {
            expire: Some(7),
            keep_open: Some(true),
            ..Default::default()
        };
        let bot = BotSettingFields {
            expire: Some(1),
            ..Default::default()
        }
        .or(&row)
        .with_column_defaults();
        assert_eq!(bot.expire, Some(1));
        assert_eq!(bot.keep_open, Some(true));
        assert_eq!(bot.listening_from_me, Some(false));
        assert_eq!(bot.keyword_finish, None);
        assert_eq!(
            BotSettingFields::from_json(&Value::from(bot.to_json())),
            bot
        );
    }
}
