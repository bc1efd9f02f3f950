//! The gateway's side of the chatbots (zapin-bots): the configuration rows the `/{bot}/…`
//! routes store, read back as zapin-bots' [`BotConfig`]s through a [`BotDirectory`] over the
//! database, and the session store over the shared pool.
//!
//! Secrets of a bot (`apiKey`, `basicAuthPass`) are kept as one JSON object sealed with the
//! gateway's [`SecretCipher`] under the owning instance's id, so they rotate with the other
//! secrets and a row copied to another instance does not open.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::{Map, Value};
use zapin_bots::store::SqlStore;
use zapin_bots::{
    BotConfig, BotDirectory, BotSettings, BoxFuture, InstanceBots, InstanceContext, KindSetup,
    SettingsRow, Trigger, TriggerOperator, TriggerType,
};
use zapin_compat_evolution::request::{BOT_PRODUCTS, BotProduct, BotSettingFields};

use crate::db::{BotRow, BotSettingsRow, Db, DbError};
use crate::webhook::{SecretCipher, SecretError};

/// Evolution's fan-out order of the integrations (`evolution` first, `flowise` last).
pub const KIND_ORDER: [&str; 7] = [
    "evolution",
    "typebot",
    "openai",
    "dify",
    "n8n",
    "evoai",
    "flowise",
];

/// The product whose adapter is named `kind`.
pub fn product_of_kind(kind: &str) -> Option<&'static BotProduct> {
    BOT_PRODUCTS.iter().find(|p| p.kind == kind)
}

/// A bot's product fields (secrets opened), by their JSON names.
pub fn open_params(cipher: &SecretCipher, row: &BotRow) -> Result<Map<String, Value>, SecretError> {
    let mut params: Map<String, Value> = serde_json::from_str(&row.params).unwrap_or_default();
    if let Some(stored) = &row.secret {
        let opened = cipher.open(&row.instance_id, stored)?;
        let secrets: Map<String, Value> = serde_json::from_str(&opened).unwrap_or_default();
        params.extend(secrets);
    }
    Ok(params)
}

/// The sealed form of `secrets` for `instance_id` (`None` when there are none).
pub fn seal_secrets(
    cipher: &SecretCipher,
    instance_id: &str,
    secrets: &Map<String, Value>,
) -> Result<Option<String>, SecretError> {
    if secrets.is_empty() {
        return Ok(None);
    }
    let text = zeroize::Zeroizing::new(Value::Object(secrets.clone()).to_string());
    cipher.seal(instance_id, &text).map(Some)
}

pub fn setting_fields(json: &str) -> BotSettingFields {
    serde_json::from_str::<Value>(json)
        .map(|v| BotSettingFields::from_json(&v))
        .unwrap_or_default()
}

fn non_negative(v: Option<i64>) -> Option<u64> {
    v.map(|n| u64::try_from(n).unwrap_or(0))
}

/// Evolution's setting fields as the engine reads them (negative numbers read as 0).
pub fn engine_settings(f: &BotSettingFields) -> BotSettings {
    BotSettings {
        expire: non_negative(f.expire),
        keyword_finish: f.keyword_finish.clone(),
        delay_message: non_negative(f.delay_message),
        unknown_message: f.unknown_message.clone(),
        listening_from_me: f.listening_from_me,
        stop_bot_from_me: f.stop_bot_from_me,
        keep_open: f.keep_open,
        debounce_time: non_negative(f.debounce_time),
        ignore_jids: f.ignore_jids.clone(),
        split_messages: f.split_messages,
        time_per_char: non_negative(f.time_per_char),
    }
}

/// `triggerType` / `triggerOperator` text as the engine's enums (unknown text: `None`).
pub fn trigger(kind: Option<&str>, operator: Option<&str>, value: Option<&str>) -> Option<Trigger> {
    let kind: TriggerType = serde_json::from_value(Value::from(kind?)).ok()?;
    let operator =
        operator.and_then(|o| serde_json::from_value::<TriggerOperator>(Value::from(o)).ok());
    Some(Trigger {
        kind,
        operator,
        value: value.map(str::to_owned),
    })
}

/// A stored bot as the engine's configuration (`None` when its trigger is unreadable).
pub fn bot_config(row: &BotRow, params: Map<String, Value>) -> Option<BotConfig> {
    Some(BotConfig {
        id: row.id.clone(),
        enabled: row.enabled,
        description: row.description.clone(),
        trigger: trigger(
            row.trigger_type.as_deref(),
            row.trigger_operator.as_deref(),
            row.trigger_value.as_deref(),
        )?,
        settings: engine_settings(&setting_fields(&row.settings)),
        params: Value::Object(params),
    })
}

fn settings_of(row: &BotSettingsRow) -> SettingsRow {
    SettingsRow {
        settings: engine_settings(&setting_fields(&row.settings)),
        fallback_id: row.fallback_id.clone(),
    }
}

/// The chatbot state the HTTP handlers and the message path share.
#[derive(Debug, Clone)]
pub struct Bots {
    /// Sessions (zapin-bots' `bot_sessions` table in the gateway's database).
    pub store: Arc<SqlStore>,
    /// Bot configuration as the engine reads it.
    pub directory: Arc<DbDirectory>,
}

impl Bots {
    pub fn new(
        db: &Db,
        cipher: SecretCipher,
        tokens: crate::http::TokenCipher,
        config: &crate::Config,
    ) -> Self {
        let store = match (db.sqlite_pool(), db.postgres_pool()) {
            (Some(p), _) => SqlStore::sqlite_migrated(p.clone()),
            (None, Some(p)) => SqlStore::postgres_migrated(p.clone()),
            // Unreachable: a Db holds one of the two pools.
            (None, None) => unreachable_pool(db),
        };
        Self {
            store: Arc::new(store),
            directory: Arc::new(DbDirectory {
                db: db.clone(),
                cipher,
                tokens,
                server_url: config.server_url.clone().unwrap_or_default(),
                enabled: enabled_kinds(config),
                cache: Mutex::default(),
            }),
        }
    }
}

#[allow(clippy::panic)]
fn unreachable_pool(db: &Db) -> SqlStore {
    panic!("database handle without a pool ({})", db.backend_name())
}

/// The kinds whose integration is switched on (Evolution Bot always).
fn enabled_kinds(config: &crate::Config) -> Vec<&'static str> {
    BOT_PRODUCTS
        .iter()
        .filter(|p| p.env_switch.is_none_or(|v| config.bots_enabled.contains(v)))
        .map(|p| p.kind)
        .collect()
}

/// [`BotDirectory`] over the gateway's tables, cached per instance until a route changes the
/// instance's bots (see [`DbDirectory::invalidate`]).
pub struct DbDirectory {
    db: Db,
    cipher: SecretCipher,
    tokens: crate::http::TokenCipher,
    server_url: String,
    enabled: Vec<&'static str>,
    cache: Mutex<HashMap<String, Option<Arc<InstanceBots>>>>,
}

impl std::fmt::Debug for DbDirectory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DbDirectory")
            .field("enabled", &self.enabled)
            .finish_non_exhaustive()
    }
}

impl DbDirectory {
    /// Whether the integration `kind` is switched on.
    pub fn kind_enabled(&self, kind: &str) -> bool {
        self.enabled.contains(&kind)
    }

    /// Forgets what is cached for the instance (after any change to its bots or settings, and
    /// when it is deleted).
    pub fn invalidate(&self, instance_id: &str) {
        self.cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(instance_id);
    }

    async fn load(&self, instance_id: &str) -> Result<Option<Arc<InstanceBots>>, DbError> {
        let mut tx = self.db.begin().await?;
        let Some(instance) = tx.get_instance(instance_id).await? else {
            tx.rollback().await?;
            return Ok(None);
        };
        let bots = tx.list_bots(instance_id, None).await?;
        let settings = tx.list_bot_settings(instance_id).await?;
        tx.rollback().await?;
        let mut kinds = Vec::new();
        for kind in KIND_ORDER {
            if !self.kind_enabled(kind) {
                continue;
            }
            let mut configs = Vec::new();
            for row in bots.iter().filter(|b| b.kind == kind) {
                let params = match open_params(&self.cipher, row) {
                    Ok(p) => p,
                    Err(e) => {
                        tracing::warn!(bot = %row.id, error = %e, "bots: a bot's credentials do not open; the bot is skipped");
                        continue;
                    }
                };
                if let Some(config) = bot_config(row, params) {
                    configs.push(config);
                }
            }
            let row = settings.iter().find(|s| s.kind == kind).map(settings_of);
            if configs.is_empty() && row.is_none() {
                continue;
            }
            kinds.push(KindSetup {
                kind: kind.to_owned(),
                settings: row,
                bots: configs,
            });
        }
        if kinds.is_empty() {
            return Ok(None);
        }
        let api_key = self
            .tokens
            .open(&instance.token)
            .map(|t| t.to_string())
            .unwrap_or_default();
        Ok(Some(Arc::new(InstanceBots {
            context: InstanceContext {
                instance_name: instance.name,
                server_url: self.server_url.clone(),
                api_key,
            },
            kinds,
        })))
    }
}

impl BotDirectory for DbDirectory {
    fn instance(&self, instance: &str) -> BoxFuture<'_, Option<Arc<InstanceBots>>> {
        let instance = instance.to_owned();
        Box::pin(async move {
            if let Some(cached) = self
                .cache
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(&instance)
            {
                return cached.clone();
            }
            match self.load(&instance).await {
                Ok(found) => {
                    self.cache
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(instance, found.clone());
                    found
                }
                Err(e) => {
                    tracing::warn!(error = %e, "bots: reading the instance's bots failed");
                    None
                }
            }
        })
    }
}
