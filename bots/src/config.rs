//! Bot configuration as the engine reads it: a bot (trigger, kind-specific parameters, its own
//! setting overrides), the integration's settings row per instance, and the effective settings
//! after Evolution's precedence (bot value, else settings row, else Evolution's default).
//!
//! The gateway owns these rows (the `/{bot}/create`, `/{bot}/settings` routes); the engine only
//! reads them through [`BotDirectory`].

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use serde::{Deserialize, Serialize};

use crate::BoxFuture;

/// `triggerType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TriggerType {
    All,
    Keyword,
    Advanced,
    /// Behaves exactly like `All` in Evolution.
    None,
}

/// `triggerOperator` (keyword triggers only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum TriggerOperator {
    Equals,
    Contains,
    StartsWith,
    EndsWith,
    Regex,
    /// Stored by Evolution's DTO enum but matched by none of its trigger steps.
    None,
}

/// A bot's trigger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trigger {
    pub kind: TriggerType,
    pub operator: Option<TriggerOperator>,
    pub value: Option<String>,
}

/// The setting fields a bot and a settings row share. `None` means "not set here".
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BotSettings {
    /// Minutes of silence after which the session ends. 0 disables expiry.
    pub expire: Option<u64>,
    pub keyword_finish: Option<String>,
    /// Milliseconds of typing simulation per send.
    pub delay_message: Option<u64>,
    pub unknown_message: Option<String>,
    pub listening_from_me: Option<bool>,
    pub stop_bot_from_me: Option<bool>,
    pub keep_open: Option<bool>,
    /// Seconds during which further messages are joined into one bot call.
    pub debounce_time: Option<u64>,
    pub ignore_jids: Option<Vec<String>>,
    pub split_messages: Option<bool>,
    pub time_per_char: Option<u64>,
}

/// One configured bot of one kind on one instance.
#[derive(Debug, Clone)]
pub struct BotConfig {
    pub id: String,
    pub enabled: bool,
    pub description: Option<String>,
    pub trigger: Trigger,
    /// The bot's own overrides of the integration's settings row.
    pub settings: BotSettings,
    /// Kind-specific fields (`apiUrl`, `webhookUrl`, `basicAuthUser`, …) as the create route
    /// received them; each adapter reads its own.
    pub params: serde_json::Value,
}

/// An integration's settings row for one instance (`<Bot>Setting` in Evolution).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SettingsRow {
    pub settings: BotSettings,
    /// The bot answering when no trigger matches (`botIdFallback`, `n8nIdFallback`, …).
    pub fallback_id: Option<String>,
}

/// Settings after precedence: what the engine applies to one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EffectiveSettings {
    pub expire: u64,
    pub keyword_finish: String,
    pub delay_message: u64,
    pub unknown_message: String,
    pub listening_from_me: bool,
    pub stop_bot_from_me: bool,
    pub keep_open: bool,
    pub debounce_time: u64,
    pub ignore_jids: Vec<String>,
    pub split_messages: bool,
    pub time_per_char: u64,
}

impl EffectiveSettings {
    /// Evolution's values when no settings row exists (`fetchSettings` defaults).
    pub fn evolution_defaults() -> Self {
        Self {
            expire: 300,
            keyword_finish: "bye".to_owned(),
            delay_message: 1000,
            unknown_message: "Sorry, I dont understand".to_owned(),
            listening_from_me: true,
            stop_bot_from_me: true,
            keep_open: false,
            debounce_time: 1,
            ignore_jids: Vec::new(),
            split_messages: false,
            time_per_char: 0,
        }
    }

    /// Bot value if set, else the settings row's, else Evolution's default.
    pub fn resolve(bot: Option<&BotSettings>, row: Option<&SettingsRow>) -> Self {
        let d = Self::evolution_defaults();
        let row = row.map(|r| &r.settings);
        macro_rules! pick {
            ($field:ident) => {
                bot.and_then(|b| b.$field.clone())
                    .or_else(|| row.and_then(|r| r.$field.clone()))
                    .unwrap_or(d.$field)
            };
        }
        Self {
            expire: pick!(expire),
            keyword_finish: pick!(keyword_finish),
            delay_message: pick!(delay_message),
            unknown_message: pick!(unknown_message),
            listening_from_me: pick!(listening_from_me),
            stop_bot_from_me: pick!(stop_bot_from_me),
            keep_open: pick!(keep_open),
            debounce_time: pick!(debounce_time),
            ignore_jids: pick!(ignore_jids),
            split_messages: pick!(split_messages),
            time_per_char: pick!(time_per_char),
        }
    }

    /// `ignoreJids`: `@g.us` ignores every group, `@s.whatsapp.net` every direct chat, any other
    /// entry one exact JID.
    pub fn ignores(&self, remote_jid: &str) -> bool {
        self.ignore_jids.iter().any(|entry| match entry.as_str() {
            "@g.us" => remote_jid.ends_with("@g.us"),
            "@s.whatsapp.net" => remote_jid.ends_with("@s.whatsapp.net"),
            exact => exact == remote_jid,
        })
    }
}

/// What a bot call may tell the bot about the instance (Evolution's common variables).
#[derive(Clone, Default)]
pub struct InstanceContext {
    pub instance_name: String,
    /// `SERVER_URL`.
    pub server_url: String,
    /// The instance token (Evolution sends it as `apiKey` so the bot can call back).
    pub api_key: String,
}

impl std::fmt::Debug for InstanceContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InstanceContext")
            .field("instance_name", &self.instance_name)
            .field("server_url", &self.server_url)
            .field("api_key", &"<redacted>")
            .finish()
    }
}

/// One integration (bot kind) on one instance: its settings row and its bots.
#[derive(Debug, Clone)]
pub struct KindSetup {
    /// The adapter name ([`crate::BotKind::name`]): `evolution`, `n8n`, …
    pub kind: String,
    pub settings: Option<SettingsRow>,
    pub bots: Vec<BotConfig>,
}

/// Everything the engine needs to know about one instance's bots.
#[derive(Debug, Clone, Default)]
pub struct InstanceBots {
    pub context: InstanceContext,
    /// Integrations in Evolution's fan-out order (evolution, typebot, openai, dify, n8n, evoai,
    /// flowise); only those with configuration need be present.
    pub kinds: Vec<KindSetup>,
}

/// Where the engine reads bot configuration; the gateway implements it over its tables (and
/// may cache). `None` means the instance has no bots.
pub trait BotDirectory: Send + Sync + 'static {
    fn instance(&self, instance: &str) -> BoxFuture<'_, Option<Arc<InstanceBots>>>;
}

/// An in-memory [`BotDirectory`], for tests and embedders that push configuration.
#[derive(Debug, Default)]
pub struct StaticDirectory {
    instances: RwLock<HashMap<String, Arc<InstanceBots>>>,
}

impl StaticDirectory {
    pub fn set(&self, instance: &str, bots: InstanceBots) {
        if let Ok(mut map) = self.instances.write() {
            map.insert(instance.to_owned(), Arc::new(bots));
        }
    }
}

impl BotDirectory for StaticDirectory {
    fn instance(&self, instance: &str) -> BoxFuture<'_, Option<Arc<InstanceBots>>> {
        let found = self
            .instances
            .read()
            .ok()
            .and_then(|map| map.get(instance).cloned());
        Box::pin(std::future::ready(found))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precedence_is_bot_then_row_then_default() {
        let bot = BotSettings {
            expire: Some(5),
            ..Default::default()
        };
        let row = SettingsRow {
            settings: BotSettings {
                expire: Some(10),
                keep_open: Some(true),
                ..Default::default()
            },
            fallback_id: None,
        };
        let s = EffectiveSettings::resolve(Some(&bot), Some(&row));
        assert_eq!(s.expire, 5);
        assert!(s.keep_open);
        assert_eq!(s.debounce_time, 1);
        let none = EffectiveSettings::resolve(None, None);
        assert_eq!(none, EffectiveSettings::evolution_defaults());
        assert_eq!(none.expire, 300);
        assert!(none.listening_from_me && none.stop_bot_from_me && !none.keep_open);
    }

    #[test]
    fn ignore_jids_wildcards() {
        let mut s = EffectiveSettings::evolution_defaults();
        s.ignore_jids = vec!["@g.us".into(), "5511@s.whatsapp.net".into()];
        assert!(s.ignores("123-456@g.us"));
        assert!(s.ignores("5511@s.whatsapp.net"));
        assert!(!s.ignores("5522@s.whatsapp.net"));
        s.ignore_jids = vec!["@s.whatsapp.net".into()];
        assert!(s.ignores("5522@s.whatsapp.net"));
        assert!(!s.ignores("1@g.us"));
    }
}
