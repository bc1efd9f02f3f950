//! The chatbot routes' rows (contract §3.7, §6.3): a bot row, a settings row (with
//! `fallbackId`, and on `fetchSettings` the fallback bot), `fetchSettings`' defaults and an
//! `IntegrationSession` row. Fields come in the order of Evolution's Prisma models.

use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{Map, Value};

use crate::request::{BotProduct, BotSettingFields};

/// A JSON object that keeps its fields in the order they were added.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OrderedObject(pub Vec<(String, Value)>);

impl OrderedObject {
    fn push(&mut self, key: &str, value: impl Into<Value>) {
        self.0.push((key.to_owned(), value.into()));
    }
}

impl Serialize for OrderedObject {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

/// A stored bot, as the gateway read it (secrets opened).
#[derive(Debug, Clone, PartialEq)]
pub struct BotRecord {
    pub id: String,
    pub enabled: bool,
    pub description: Option<String>,
    pub trigger_type: Option<String>,
    pub trigger_operator: Option<String>,
    pub trigger_value: Option<String>,
    pub settings: BotSettingFields,
    /// The product's fields (secrets included), by their JSON names.
    pub params: Map<String, Value>,
    /// ISO 8601.
    pub created_at: String,
    pub updated_at: String,
    pub instance_id: String,
}

/// A bot row in the product's shape: its own fields are `null` when unset.
pub fn bot_row(product: &BotProduct, bot: &BotRecord) -> OrderedObject {
    let mut o = OrderedObject::default();
    o.push("id", bot.id.clone());
    o.push("enabled", bot.enabled);
    o.push("description", bot.description.clone());
    for f in product.fields.iter().filter(|f| f.stored) {
        o.push(
            f.name,
            bot.params.get(f.name).cloned().unwrap_or(Value::Null),
        );
    }
    o.0.extend(bot.settings.entries());
    o.push("triggerType", bot.trigger_type.clone());
    o.push("triggerOperator", bot.trigger_operator.clone());
    o.push("triggerValue", bot.trigger_value.clone());
    o.push("createdAt", bot.created_at.clone());
    o.push("updatedAt", bot.updated_at.clone());
    o.push("instanceId", bot.instance_id.clone());
    o
}

/// A stored settings row.
#[derive(Debug, Clone, PartialEq)]
pub struct BotSettingsRecord {
    pub id: String,
    pub settings: BotSettingFields,
    /// The product's own settings fields (OpenAI's `openaiCredsId`, `speechToText`).
    pub extra: Map<String, Value>,
    pub fallback_id: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub instance_id: String,
}

/// The settings row plus `fallbackId` (what `/{bot}/settings` answers). With `fallback`
/// (`fetchSettings`), also the fallback bot as `Fallback` (the relation Prisma includes) and
/// `fallback`.
pub fn settings_row(
    product: &BotProduct,
    row: &BotSettingsRecord,
    fallback: Option<Option<OrderedObject>>,
) -> OrderedObject {
    let mut o = OrderedObject::default();
    o.push("id", row.id.clone());
    o.0.extend(row.settings.entries());
    for f in product.settings_fields {
        o.push(
            f.name,
            row.extra.get(f.name).cloned().unwrap_or(Value::Null),
        );
    }
    o.push("createdAt", row.created_at.clone());
    o.push("updatedAt", row.updated_at.clone());
    o.push(product.fallback_field, row.fallback_id.clone());
    o.push("instanceId", row.instance_id.clone());
    if let Some(bot) = fallback {
        let bot = bot.map_or(Value::Null, |b| {
            serde_json::to_value(b).unwrap_or(Value::Null)
        });
        o.push("Fallback", bot.clone());
        o.push("fallbackId", row.fallback_id.clone());
        o.push("fallback", bot);
    } else {
        o.push("fallbackId", row.fallback_id.clone());
    }
    o
}

/// `fetchSettings` when the instance has no settings row for the product.
pub fn default_settings() -> OrderedObject {
    let mut o = OrderedObject::default();
    o.push("expire", 300);
    o.push("keywordFinish", "bye");
    o.push("delayMessage", 1000);
    o.push("unknownMessage", "Sorry, I dont understand");
    o.push("listeningFromMe", true);
    o.push("stopBotFromMe", true);
    o.push("keepOpen", false);
    o.push("debounceTime", 1);
    o.push("ignoreJids", Value::Array(Vec::new()));
    o.push("splitMessages", false);
    o.push("timePerChar", 0);
    o.push("fallbackId", "");
    o.push("fallback", Value::Null);
    o
}

/// An `IntegrationSession` row.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionRecord {
    pub id: String,
    pub session_id: String,
    pub remote_jid: String,
    pub push_name: Option<String>,
    pub status: String,
    pub await_user: bool,
    pub context: Value,
    /// The integration (`evolution`, `n8n`, …).
    pub kind: String,
    pub created_at: String,
    pub updated_at: String,
    pub instance_id: String,
    pub bot_id: Option<String>,
}

pub fn session_row(s: &SessionRecord) -> OrderedObject {
    let mut o = OrderedObject::default();
    o.push("id", s.id.clone());
    o.push("sessionId", s.session_id.clone());
    o.push("remoteJid", s.remote_jid.clone());
    o.push("pushName", s.push_name.clone());
    o.push("status", s.status.clone());
    o.push("awaitUser", s.await_user);
    o.push("context", s.context.clone());
    o.push("type", s.kind.clone());
    o.push("createdAt", s.created_at.clone());
    o.push("updatedAt", s.updated_at.clone());
    o.push("instanceId", s.instance_id.clone());
    o.push("parameters", Value::Null);
    o.push("botId", s.bot_id.clone());
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::N8N;
    use serde_json::json;

    #[test]
    fn rows_keep_evolutions_order_and_nulls() {
        let bot = BotRecord {
            id: "b1".into(),
            enabled: true,
            description: None,
            trigger_type: Some("all".into()),
            trigger_operator: None,
            trigger_value: None,
            settings: BotSettingFields::default(),
            params: json!({"webhookUrl": "http://x"})
                .as_object()
                .cloned()
                .unwrap_or_default(),
            created_at: "2026-01-01T00:00:00.000Z".into(),
            updated_at: "2026-01-01T00:00:00.000Z".into(),
            instance_id: "i1".into(),
        };
        let text = serde_json::to_string(&bot_row(&N8N, &bot)).unwrap();
        assert!(text.starts_with(
            r#"{"id":"b1","enabled":true,"description":null,"webhookUrl":"http://x","basicAuthUser":null,"basicAuthPass":null,"expire":null"#
        ), "{text}");
        assert!(text.ends_with(r#""instanceId":"i1"}"#));
        let d = serde_json::to_value(default_settings()).unwrap();
        assert_eq!(d["expire"], 300);
        assert_eq!(d["fallback"], Value::Null);
    }
}
